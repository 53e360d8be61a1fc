// Package tui is mailtap's terminal user interface: a list of decoded
// sessions, the selected session's records, and a summary of one of its
// messages.
//
// Decoding runs on its own goroutine and feeds a Model through its Emit
// method (a decode.Sink). The Model is bounded (MaxSessions sessions, the
// oldest dropped first, and MaxLines rendered lines per session) and safe
// for concurrent use. Everything that touches the tcell.Screen runs on the
// UI goroutine (Run); the decoder only wakes it with coalesced interrupts.
package tui

import (
	"bytes"
	"fmt"
	"strings"
	"sync"

	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/sink"
)

// Defaults for NewModel.
const (
	DefaultMaxSessions = 10000
	DefaultMaxLines    = 2000
	// maxMessages bounds the messages kept per session.
	maxMessages = 1000
)

// Session is what the UI knows about one TCP connection. Snapshot returns
// copies; the Model's own sessions are never handed out.
type Session struct {
	ID     uint64
	Proto  decode.Proto
	Client string
	Server string
	// State is the session record's state, or "open" until it arrives
	// (decoders emit the session record when the connection ends).
	State string
	// Transactions counts mails / messages: the session record's count
	// once it arrived, the records seen so far before.
	Transactions int
	User         string
	Closed       bool
	// Lines is the text rendering of the session's records (decode/sink
	// Text), at most MaxLines; DroppedLines counts the ones cut.
	Lines           []string
	DroppedLines    int
	Messages        []Message
	DroppedMessages int

	search string // lower-case text the filter matches
}

// Message is one message of a session, with the context it travelled in.
type Message struct {
	// Title says where it came from: "MAIL #1 accepted", "RETR 2", ...
	Title string
	// Envelope holds SMTP's MAIL FROM and RCPT TO (empty otherwise).
	MailFrom string
	RcptTo   []string
	*decode.Message
}

// Row is one line of the session list.
func (s *Session) Row() string {
	tx := fmt.Sprintf("%dtx", s.Transactions)
	r := fmt.Sprintf("%-4s %s -> %s %s %s", s.Proto, s.Client, s.Server, s.State, tx)
	if s.User != "" {
		r += " " + s.User
	}
	return r
}

// sessionKey tells sessions apart. IDs are unique within one run; the
// addresses keep two runs fed into one model (tests, several files) apart.
type sessionKey struct {
	id             uint64
	client, server string
}

// Model holds the decoded sessions in arrival order.
type Model struct {
	maxSessions int
	maxLines    int

	mu       sync.Mutex
	sessions []*Session // oldest first
	byKey    map[sessionKey]*Session
	dropped  int // sessions dropped to stay within maxSessions
	records  int
	gen      uint64 // bumped by every change
	done     bool
	err      error
	progress string

	buf  bytes.Buffer
	text *sink.Text

	// changed holds one token when something changed since the UI last
	// looked (see Changed).
	changed chan struct{}
}

// NewModel returns an empty model keeping at most maxSessions sessions and
// maxLines lines per session (zero or less: the defaults).
func NewModel(maxSessions, maxLines int) *Model {
	if maxSessions <= 0 {
		maxSessions = DefaultMaxSessions
	}
	if maxLines <= 0 {
		maxLines = DefaultMaxLines
	}
	m := &Model{maxSessions: maxSessions, maxLines: maxLines, byKey: map[sessionKey]*Session{}, changed: make(chan struct{}, 1)}
	m.text = sink.NewText(&m.buf)
	return m
}

var _ decode.Sink = (*Model)(nil)

// Emit adds one record. It implements decode.Sink.
func (m *Model) Emit(r decode.Record) {
	h := r.Head()
	defer m.signal()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.records++
	m.gen++
	key := sessionKey{h.Session, h.Client, h.Server}
	s := m.byKey[key]
	if s == nil {
		s = &Session{ID: h.Session, Proto: h.Proto, Client: h.Client, Server: h.Server, State: "open"}
		s.search = strings.ToLower(fmt.Sprintf("#%d %s %s %s", h.Session, h.Proto, h.Client, h.Server))
		m.byKey[key] = s
		m.sessions = append(m.sessions, s)
		if len(m.sessions) > m.maxSessions {
			old := m.sessions[0]
			m.sessions[0] = nil
			m.sessions = m.sessions[1:]
			delete(m.byKey, sessionKey{old.ID, old.Client, old.Server})
			m.dropped++
		}
	}
	m.render(s, r)
	switch r := r.(type) {
	case *decode.SessionRecord:
		s.Closed = true
		s.State = r.State
		s.Transactions = r.Transactions
		if r.Auth != nil && r.Auth.User != "" {
			s.User = r.Auth.User
		}
		s.addSearch(r.State, s.User, r.Helo)
	case *decode.SMTPMail:
		msg := Message{Title: fmt.Sprintf("MAIL #%d %s", r.Seq, r.Status), MailFrom: r.MailFrom, Message: r.Message}
		for _, rc := range r.RcptTo {
			msg.RcptTo = append(msg.RcptTo, rc.Addr)
		}
		m.addMessage(s, msg)
		s.addSearch(r.MailFrom)
		for _, a := range msg.RcptTo {
			s.addSearch(a)
		}
	case *decode.POP3Message:
		what := "RETR"
		if r.TopLines != nil {
			what = "TOP"
		}
		m.addMessage(s, Message{Title: fmt.Sprintf("%s %d", what, r.Msgno), Message: r.Message})
	case *decode.IMAPMessage:
		t := strings.ToUpper(r.Direction) + " " + r.Section
		if r.UID != 0 {
			t += fmt.Sprintf(" uid %d", r.UID)
		}
		m.addMessage(s, Message{Title: strings.TrimSpace(t + " " + r.Mailbox), Message: r.Message})
	}
}

func (m *Model) addMessage(s *Session, msg Message) {
	if !s.Closed {
		s.Transactions++
	}
	if msg.Message != nil {
		s.addSearch(msg.From, msg.Subject)
	}
	if len(s.Messages) >= maxMessages {
		s.DroppedMessages++
		return
	}
	s.Messages = append(s.Messages, msg)
}

func (s *Session) addSearch(terms ...string) {
	for _, t := range terms {
		if t != "" && len(s.search) < 4096 {
			s.search += " " + strings.ToLower(t)
		}
	}
}

// render appends r's text rendering to s.Lines, keeping the last maxLines.
func (m *Model) render(s *Session, r decode.Record) {
	m.buf.Reset()
	m.text.Emit(r)
	if err := m.text.Flush(); err != nil {
		return // a bytes.Buffer does not fail
	}
	for _, l := range strings.Split(strings.TrimRight(m.buf.String(), "\n"), "\n") {
		s.Lines = append(s.Lines, strings.TrimRight(l, " "))
	}
	if over := len(s.Lines) - m.maxLines; over > 0 {
		s.Lines = append(s.Lines[:0:0], s.Lines[over:]...)
		s.DroppedLines += over
	}
}

// Finish records the end of decoding (err nil: the input was read whole).
func (m *Model) Finish(err error) {
	defer m.signal()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.done, m.err = true, err
	m.gen++
}

// SetProgress sets a short progress note shown on the status line.
func (m *Model) SetProgress(s string) {
	defer m.signal()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.progress = s
	m.gen++
}

// signal leaves a token in changed without ever blocking: many changes
// between two looks coalesce into one.
func (m *Model) signal() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// Changed returns a channel that receives when the model changed since the
// last receive.
func (m *Model) Changed() <-chan struct{} { return m.changed }

// Snapshot is a consistent copy of what the UI draws.
type Snapshot struct {
	// Sessions match the filter, oldest first. Only Selected carries its
	// Lines and Messages; the others are rows.
	Sessions []Session
	Total    int // sessions kept, filtered or not
	Dropped  int
	Records  int
	Done     bool
	Err      error
	Progress string
	Gen      uint64
	// Selected indexes Sessions (-1 when empty).
	Selected int
}

// Snapshot returns the sessions matching filter (case-insensitive
// substring of the row, the addresses, the users and the mail addresses
// and subjects), with the full content of the one whose ID is selID, or of
// the one at index selIdx (clamped) when selID is no longer there.
func (m *Model) Snapshot(filter string, selID uint64, selIdx int) Snapshot {
	filter = strings.ToLower(strings.TrimSpace(filter))
	m.mu.Lock()
	defer m.mu.Unlock()
	sn := Snapshot{Total: len(m.sessions), Dropped: m.dropped, Records: m.records,
		Done: m.done, Err: m.err, Progress: m.progress, Gen: m.gen, Selected: -1}
	var full []*Session
	for _, s := range m.sessions {
		if filter != "" && !strings.Contains(s.search, filter) && !strings.Contains(s.State, filter) {
			continue
		}
		row := *s
		row.Lines, row.Messages = nil, nil
		if s.ID == selID {
			sn.Selected = len(sn.Sessions)
		}
		sn.Sessions = append(sn.Sessions, row)
		full = append(full, s)
	}
	if sn.Selected < 0 && len(sn.Sessions) > 0 {
		sn.Selected = max(0, min(selIdx, len(sn.Sessions)-1))
	}
	if sn.Selected >= 0 {
		s := full[sn.Selected]
		sel := &sn.Sessions[sn.Selected]
		sel.Lines = append([]string(nil), s.Lines...)
		sel.Messages = append([]Message(nil), s.Messages...)
	}
	return sn
}

// Len returns the number of sessions kept.
func (m *Model) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}
