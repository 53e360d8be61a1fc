// Package tui is mailtap's terminal user interface: a table of decoded
// sessions, and per session its transcript as a ladder and its messages
// (headers, MIME tree, decoded text, saving); a credentials view and an
// anomalies view for the whole capture.
//
// Decoding runs on its own goroutine(s) and feeds a Model through its Emit
// method (a decode.Sink). The Model is bounded: MaxSessions sessions (the
// oldest dropped first), a bounded transcript and message list per
// session, and message bodies kept outside memory in a bounded spill file
// (Spill, a decode.MessageStore) from which they are re-read on demand.
// Everything that touches the tcell.Screen runs on the UI goroutine (Run);
// the decoders only wake it with coalesced interrupts.
package tui

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mailtap/mailtap/decode"
)

// Defaults for NewModel.
const (
	DefaultMaxSessions = 10000
	DefaultMaxSteps    = 2000
	// maxMessages bounds the messages kept per session.
	maxMessages = 1000
	// maxAnomalies bounds the anomalies kept per session.
	maxAnomalies = 200
	// maxWhat bounds the "what happened" column text, in bytes.
	maxWhat = 240
	// maxSearch bounds the lower-case text free filter words match.
	maxSearch = 4096
)

// Session is what the UI knows about one TCP connection: a summary (the
// row of the session list) and, for the selected session, its details.
type Session struct {
	ID     uint64
	Proto  decode.Proto
	Client string
	Server string
	Start  time.Time
	// State is the session record's state, or "open" until it arrives
	// (decoders emit the session record when the connection ends).
	State  string
	Closed bool
	// User is the user of the last authentication; AuthOK its result
	// (nil: no authentication or no answer seen).
	User   string
	AuthOK *bool
	// AuthFailed is set when any authentication of the session failed.
	AuthFailed bool
	Helo       string
	// What is a short account of what happened: SMTP "from → rcpt (+n)",
	// POP3 "retr 3 dele 3", IMAP "SELECT INBOX, FETCH 12".
	What    string
	Subject string // of the first message
	// Rejected is set when a mail or a recipient was refused.
	Rejected      bool
	HasAttachment bool
	NAnomalies    int
	NMessages     int

	// Details, filled in snapshots for the selected session only.
	Steps        []Step
	DroppedSteps int
	Messages     []Message
	Auths        []decode.Auth
	Anomalies    []string

	search   string // lower-case text free words match
	from, to string // lower-case envelope and header addresses
	users    string // lower-case users of every authentication
	newFolds int    // folds added since the last command step
	// SMTP envelope seen in commands before the first mail record.
	pendFrom, pendRcpt string
	pendN              int
	what               whatBuilder
	anomSet            map[string]bool
}

// Step is one line of the transcript ladder: a client command and the
// server's answer, or a server-only line (greeting), or a folded message.
type Step struct {
	TS     time.Time
	Client string // the client's line (command and arguments)
	Server string // the server's answer ("250 2.0.0 Ok")
	// OK: 1 success, -1 failure, 0 unknown / no answer.
	OK        int
	Pipelined bool
	LatencyMS *float64
	// Msg, when >= 0, folds the message with that index in the
	// session's Messages: one line that opens.
	Msg int
}

// Message is one message of a session, with the context it travelled in.
type Message struct {
	// Title says where it came from: "MAIL #1 accepted", "RETR 2", ...
	Title    string
	MailFrom string
	RcptTo   []string
	*decode.Message
	// Body locates the raw bytes in the spill (zero: not kept).
	Body BodyRef

	at int // where its fold goes in the ladder (0: at the end)
}

// Cred is one authentication attempt of the capture.
type Cred struct {
	Session uint64
	Proto   decode.Proto
	Client  string
	Server  string
	TS      time.Time
	decode.Auth
}

// Anomaly is one anomaly of the capture, with where it was seen.
type Anomaly struct {
	Session uint64
	Proto   decode.Proto
	Client  string
	Where   string // "session" or the message's title
	Text    string
}

// sessionKey tells sessions apart. IDs are unique within one run; the
// addresses keep two runs fed into one model (tests, several files) apart.
type sessionKey struct {
	id             uint64
	client, server string
}

// Stats are the capture counters shown on the status line.
type Stats struct {
	Packets uint64
	Drops   uint64 // packets the kernel or the engine dropped
}

// Model holds the decoded sessions in arrival order.
type Model struct {
	maxSessions int
	maxSteps    int
	// ShowSecrets lets the credentials view show passwords and
	// responses (they are only in the records with --show-secrets).
	showSecrets bool
	spill       *Spill

	mu       sync.Mutex
	sessions []*Session // oldest first
	byKey    map[sessionKey]*Session
	creds    []Cred
	dropped  int // sessions dropped to stay within maxSessions
	records  int
	messages int
	gen      uint64 // bumped by every change
	done     bool
	err      error
	progress string
	stats    Stats

	// changed holds one token when something changed since the UI last
	// looked (see Changed).
	changed chan struct{}
}

// maxCreds bounds the credentials kept for the whole capture.
const maxCreds = 100000

// NewModel returns an empty model keeping at most maxSessions sessions and
// maxSteps transcript steps per session (zero or less: the defaults).
func NewModel(maxSessions, maxSteps int) *Model {
	if maxSessions <= 0 {
		maxSessions = DefaultMaxSessions
	}
	if maxSteps <= 0 {
		maxSteps = DefaultMaxSteps
	}
	return &Model{maxSessions: maxSessions, maxSteps: maxSteps, byKey: map[sessionKey]*Session{}, changed: make(chan struct{}, 1)}
}

// SetShowSecrets lets the credentials view show secrets (--show-secrets).
func (m *Model) SetShowSecrets(b bool) {
	m.mu.Lock()
	m.showSecrets = b
	m.mu.Unlock()
}

// ShowSecrets reports whether secrets may be shown.
func (m *Model) ShowSecrets() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.showSecrets
}

// SetSpill makes the model look message bodies up in sp (the store the
// decoders write to; see Spill).
func (m *Model) SetSpill(sp *Spill) {
	m.mu.Lock()
	m.spill = sp
	m.mu.Unlock()
}

// Spill returns the spill set with SetSpill, or nil.
func (m *Model) Spill() *Spill {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.spill
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
		s = &Session{ID: h.Session, Proto: h.Proto, Client: h.Client, Server: h.Server, State: "open", Start: h.TS}
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
	switch r := r.(type) {
	case *decode.SessionRecord:
		m.session(s, r)
	case *decode.CommandRecord:
		m.command(s, r)
	case *decode.SMTPMail:
		msg := Message{Title: fmt.Sprintf("MAIL #%d %s", r.Seq, r.Status), MailFrom: r.MailFrom, Message: r.Message}
		accepted := 0
		for _, rc := range r.RcptTo {
			msg.RcptTo = append(msg.RcptTo, rc.Addr)
			if !rc.Accepted {
				s.Rejected = true
			} else {
				accepted++
			}
		}
		if r.Status == decode.TxRejected {
			s.Rejected = true
		}
		if r.Helo != "" && s.Helo == "" {
			s.Helo = r.Helo
			s.addSearch(r.Helo)
		}
		s.from = addLower(s.from, r.MailFrom)
		for _, a := range msg.RcptTo {
			s.to = addLower(s.to, a)
		}
		if s.NMessages == 0 {
			w := orNull(r.MailFrom)
			if len(msg.RcptTo) > 0 {
				w += " → " + msg.RcptTo[0]
				if n := len(msg.RcptTo) - 1; n > 0 {
					w += fmt.Sprintf(" (+%d)", n)
				}
			}
			s.what.setHead(w)
		} else {
			s.what.setTail(fmt.Sprintf(" +%d mail", s.NMessages))
		}
		m.addMessage(s, msg, h.TS)
		s.addSearch(r.MailFrom, r.Status)
		for _, a := range msg.RcptTo {
			s.addSearch(a)
		}
	case *decode.POP3Message:
		what := "RETR"
		if r.TopLines != nil {
			what = "TOP"
		}
		if !s.what.cmds {
			s.what.add(fmt.Sprintf("%s %d", strings.ToLower(what), r.Msgno), " ")
			if r.Deleted {
				s.what.add(fmt.Sprintf("dele %d", r.Msgno), " ")
			}
		}
		m.addMessage(s, Message{Title: fmt.Sprintf("%s %d", what, r.Msgno), Message: r.Message, at: popCommand(s, what, r.Msgno)}, h.TS)
	case *decode.IMAPMessage:
		t := strings.ToUpper(r.Direction) + " " + r.Section
		if r.UID != 0 {
			t += fmt.Sprintf(" uid %d", r.UID)
		}
		if !s.what.cmds {
			n := r.Seq
			if n == 0 {
				n = r.UID
			}
			s.what.add(fmt.Sprintf("%s %d", strings.ToUpper(r.Direction), n), ", ")
		}
		m.addMessage(s, Message{Title: strings.TrimSpace(t + " " + r.Mailbox), Message: r.Message}, h.TS)
	case *decode.IMAPMailbox:
		if !s.what.cmds {
			s.what.add(strings.TrimSpace(strings.ToUpper(r.Action)+" "+r.Mailbox), ", ")
		}
	}
	s.What = s.what.String()
}

func (m *Model) session(s *Session, r *decode.SessionRecord) {
	s.Closed = true
	s.State = r.State
	if !r.Start.IsZero() {
		s.Start = r.Start
	}
	if r.Helo != "" {
		s.Helo = r.Helo
	}
	if r.Auth != nil {
		s.User = r.Auth.User
		s.AuthOK = r.Auth.Success
	}
	auths := r.Auths
	if len(auths) == 0 && r.Auth != nil {
		auths = []decode.Auth{*r.Auth}
	}
	for _, a := range auths {
		if a.Success != nil && !*a.Success {
			s.AuthFailed = true
		}
		if s.User == "" && a.User != "" {
			s.User = a.User
		}
		s.addSearch(a.User, a.Mechanism)
		s.users = addLower(s.users, a.User)
		if len(m.creds) < maxCreds {
			m.creds = append(m.creds, Cred{Session: s.ID, Proto: s.Proto, Client: s.Client, Server: s.Server, TS: r.TS, Auth: a})
		}
	}
	s.Auths = append(s.Auths[:0:0], auths...)
	if r.Greeting != "" {
		// The greeting comes first in the ladder although its record
		// comes last.
		g := Step{TS: r.Start, Server: clipText(r.Greeting), Msg: -1}
		s.Steps = append([]Step{g}, s.Steps...)
		if len(s.Steps) > m.maxSteps {
			s.Steps = s.Steps[:m.maxSteps]
			s.DroppedSteps++
		}
	}
	for _, a := range r.Anomalies {
		s.addAnomaly("session: " + a)
	}
	s.addSearch(r.State, s.Helo, r.CloseReason)
}

// command adds one command record to the ladder and to "what happened".
func (m *Model) command(s *Session, r *decode.CommandRecord) {
	st := Step{TS: r.TS, Client: strings.TrimSpace(r.Verb + " " + r.Args), Pipelined: r.Pipelined, LatencyMS: r.LatencyMS, Msg: -1}
	if r.Tag != "" {
		st.Client = r.Tag + " " + st.Client
	}
	status := ""
	switch v := r.Status.(type) {
	case float64:
		status = fmt.Sprint(int(v))
	case int:
		status = fmt.Sprint(v)
	case string:
		status = v
	}
	st.Server = strings.TrimSpace(status + " " + r.Text)
	st.OK = statusOK(status)
	for _, u := range r.Untagged {
		st.Server += " | * " + u
	}
	st.Client, st.Server = clipText(st.Client), clipText(st.Server)
	m.addStep(s, st)
	verb := strings.ToUpper(r.Verb)
	switch s.Proto {
	case decode.ProtoPOP3:
		switch verb {
		case "RETR", "DELE", "TOP":
			s.what.cmds = true
			s.what.add(strings.ToLower(verb)+" "+firstWord(r.Args), " ")
		}
	case decode.ProtoSMTP:
		if s.NMessages == 0 {
			// Until the mail record comes (after DATA), the commands tell
			// who writes to whom: a live session shows it while open.
			switch verb {
			case "MAIL":
				s.pendFrom, s.pendRcpt, s.pendN = angle(r.Args), "", 0
				s.what.setHead(orNull(s.pendFrom))
			case "RCPT":
				if s.pendN == 0 {
					s.pendRcpt = angle(r.Args)
				}
				s.pendN++
				w := orNull(s.pendFrom) + " → " + s.pendRcpt
				if s.pendN > 1 {
					w += fmt.Sprintf(" (+%d)", s.pendN-1)
				}
				s.what.setHead(w)
			}
		}
		switch verb {
		case "AUTH":
			if st.OK < 0 {
				s.what.add("AUTH "+firstWord(r.Args)+" ✗", ", ")
			}
		case "STARTTLS", "VRFY", "EXPN", "ETRN", "XCLIENT":
			s.what.add(strings.TrimSpace(verb+" "+firstWord(r.Args)), ", ")
		}
	case decode.ProtoIMAP:
		switch verb {
		case "SELECT", "EXAMINE", "FETCH", "STORE", "COPY", "MOVE", "APPEND", "EXPUNGE", "DELETE", "CREATE", "RENAME", "SEARCH":
			s.what.cmds = true
			s.what.add(strings.TrimSpace(verb+" "+firstWord(r.Args)), ", ")
		case "UID":
			sub, rest, _ := strings.Cut(r.Args, " ")
			s.what.cmds = true
			s.what.add(strings.TrimSpace("UID "+strings.ToUpper(sub)+" "+firstWord(rest)), ", ")
		}
	}
	if st.OK < 0 {
		switch verb {
		case "RCPT", "MAIL", "DATA", "BDAT":
			s.Rejected = true
		}
	}
}

// statusOK classifies a reply status: SMTP codes, POP3 +OK/-ERR, IMAP
// OK/NO/BAD.
func statusOK(st string) int {
	switch {
	case st == "":
		return 0
	case st == "+OK" || st == "OK" || st[0] == '2' || st[0] == '3' || st == "+":
		return 1
	case st == "-ERR" || st == "NO" || st == "BAD" || st[0] == '4' || st[0] == '5':
		return -1
	}
	return 0
}

// angle returns the address inside <...> of a MAIL or RCPT argument.
func angle(args string) string {
	i := strings.IndexByte(args, '<')
	j := strings.IndexByte(args, '>')
	if i < 0 || j < i {
		_, a, _ := strings.Cut(args, ":")
		return firstWord(a)
	}
	return args[i+1 : j]
}

func orNull(a string) string {
	if a == "" {
		return "<>"
	}
	return a
}

func firstWord(s string) string {
	w, _, _ := strings.Cut(strings.TrimSpace(s), " ")
	if len(w) > 40 {
		w = w[:40] + "…"
	}
	return w
}

func (m *Model) addStep(s *Session, st Step) {
	if len(s.Steps) >= m.maxSteps {
		s.DroppedSteps++
		return
	}
	// In IMAP and POP3 a message record comes before the record of the
	// command that carried it (FETCH, RETR, APPEND complete after their
	// body): the command goes before the messages that just arrived.
	// (SMTP emits DATA's command first, and the next MAIL must stay
	// after the previous message.)
	at := len(s.Steps)
	if st.Msg >= 0 {
		s.newFolds++
	} else {
		if s.Proto != decode.ProtoSMTP {
			at -= min(s.newFolds, at)
		}
		s.newFolds = 0
	}
	s.Steps = append(s.Steps, Step{})
	copy(s.Steps[at+1:], s.Steps[at:])
	s.Steps[at] = st
}

func (m *Model) addMessage(s *Session, msg Message, ts time.Time) {
	m.messages++
	s.NMessages++
	if msg.Message != nil {
		msg.Message = retained(msg.Message)
		if s.Subject == "" {
			s.Subject = msg.Subject
		}
		if len(msg.Attachments) > 0 {
			s.HasAttachment = true
		}
		s.from = addLower(s.from, msg.From)
		for _, a := range msg.To {
			s.to = addLower(s.to, a)
		}
		for _, a := range msg.Cc {
			s.to = addLower(s.to, a)
		}
		s.addSearch(msg.From, msg.Subject)
		if m.spill != nil && msg.File != "" {
			msg.Body = m.spill.take(msg.File)
		}
		for _, a := range msg.Anomalies {
			s.addAnomaly(msg.Title + ": " + a)
		}
	}
	if len(s.Messages) >= maxMessages {
		return
	}
	s.Messages = append(s.Messages, msg)
	st := Step{TS: ts, Msg: len(s.Messages) - 1}
	if msg.at > 0 && msg.at <= len(s.Steps) && len(s.Steps) < m.maxSteps {
		s.Steps = slices.Insert(s.Steps, msg.at, st)
		return
	}
	m.addStep(s, st)
}

// popCommand returns the index just after the last RETR n / TOP n step,
// where the fold of that message goes (POP3 emits its messages when the
// session ends, to know whether they were deleted), or 0.
func popCommand(s *Session, verb string, n int) int {
	want := fmt.Sprintf("%s %d", verb, n)
	for i := len(s.Steps) - 1; i >= 0; i-- {
		c := s.Steps[i].Client
		if strings.EqualFold(c, want) || strings.HasPrefix(strings.ToUpper(c), want+" ") {
			j := i + 1
			for j < len(s.Steps) && s.Steps[j].Msg >= 0 {
				j++ // after the folds already there
			}
			return j
		}
	}
	return 0
}

// retained copies the summary of a message the model keeps for long:
// its strings may be slices of a decoder's large buffers (the text
// preview of a 50 kB body is), which must not stay pinned in memory for
// every message of the capture.
func retained(m *decode.Message) *decode.Message {
	c := *m
	for _, p := range []*string{&c.SHA256, &c.From, &c.Subject, &c.Date, &c.MessageID, &c.InReplyTo, &c.UserAgent, &c.ContentType, &c.TextPreview, &c.File} {
		*p = strings.Clone(*p)
	}
	c.To = cloneStrings(c.To)
	c.Cc = cloneStrings(c.Cc)
	c.Anomalies = cloneStrings(c.Anomalies)
	c.Attachments = slices.Clone(c.Attachments)
	for i := range c.Attachments {
		a := &c.Attachments[i]
		a.Filename, a.ContentType, a.SHA256, a.File = strings.Clone(a.Filename), strings.Clone(a.ContentType), strings.Clone(a.SHA256), strings.Clone(a.File)
	}
	return &c
}

func cloneStrings(ss []string) []string {
	if ss == nil {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.Clone(s)
	}
	return out
}

func (s *Session) addAnomaly(a string) {
	if s.anomSet == nil {
		s.anomSet = map[string]bool{}
	}
	if s.anomSet[a] {
		return
	}
	s.anomSet[a] = true
	s.NAnomalies++
	if len(s.Anomalies) < maxAnomalies {
		s.Anomalies = append(s.Anomalies, a)
	}
}

func (s *Session) addSearch(terms ...string) {
	for _, t := range terms {
		s.search = addLower(s.search, t)
	}
}

// maxTerm bounds one term of the search texts.
const maxTerm = 256

func addLower(set, a string) string {
	if a == "" || len(set) >= maxSearch {
		return set
	}
	if len(a) > maxTerm {
		a = a[:maxTerm]
	}
	return set + " " + strings.ToLower(a)
}

// maxStepText bounds each side of a transcript step: a protocol line may
// be 64 kB (--max-line) and a session keeps 2000 steps.
const maxStepText = 2048

// clipText copies s, cut to maxStepText bytes (on a rune boundary) with
// a note of how much was left out.
func clipText(s string) string {
	if len(s) <= maxStepText {
		return strings.Clone(s)
	}
	cut := maxStepText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf(" …(%d more bytes)", len(s)-cut)
}

// whatBuilder builds the "what happened" text, bounded.
type whatBuilder struct {
	head, tail string
	parts      []string
	n          int
	cmds       bool // built from command records (ignore message records)
	full       bool
}

func (w *whatBuilder) setHead(s string) { w.head = s }
func (w *whatBuilder) setTail(s string) { w.tail = s }

func (w *whatBuilder) add(s, sep string) {
	if w.full {
		return
	}
	if w.n+len(s)+len(sep) > maxWhat {
		w.full = true
		w.parts = append(w.parts, sep+"…")
		return
	}
	if len(w.parts) > 0 {
		s = sep + s
	}
	w.parts = append(w.parts, s)
	w.n += len(s)
}

func (w *whatBuilder) String() string {
	parts := strings.Join(w.parts, "")
	if w.head != "" && parts != "" {
		return w.head + w.tail + ", " + parts
	}
	return w.head + w.tail + parts
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
	if m.progress != s {
		m.progress = s
		m.gen++
	}
}

// SetStats sets the capture counters shown on the status line.
func (m *Model) SetStats(st Stats) {
	defer m.signal()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stats != st {
		m.stats = st
		m.gen++
	}
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
	// Sessions match the filter, oldest first. Only the one at Selected
	// carries its details (Steps, Messages, Auths, Anomalies).
	Sessions []Session
	Total    int // sessions kept, filtered or not
	Dropped  int
	Records  int
	Messages int
	Done     bool
	Err      error
	Progress string
	Stats    Stats
	Gen      uint64
	// Selected indexes Sessions (-1 when empty).
	Selected int
}

// Snapshot returns the sessions matching f, with the details of the one
// whose ID is selID (or none when it is not listed).
func (m *Model) Snapshot(f *Filter, selID uint64) Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	sn := Snapshot{Total: len(m.sessions), Dropped: m.dropped, Records: m.records, Messages: m.messages,
		Done: m.done, Err: m.err, Progress: m.progress, Stats: m.stats, Gen: m.gen, Selected: -1}
	sn.Sessions = make([]Session, 0, len(m.sessions))
	for _, s := range m.sessions {
		if !f.Match(s) {
			continue
		}
		row := *s
		row.Steps, row.Messages, row.Auths, row.Anomalies, row.anomSet = nil, nil, nil, nil, nil
		if s.ID == selID {
			sn.Selected = len(sn.Sessions)
			row.Steps = append([]Step(nil), s.Steps...)
			row.Messages = append([]Message(nil), s.Messages...)
			row.Auths = append([]decode.Auth(nil), s.Auths...)
			row.Anomalies = append([]string(nil), s.Anomalies...)
		}
		sn.Sessions = append(sn.Sessions, row)
	}
	return sn
}

// Creds returns every authentication attempt of the sessions matching f.
func (m *Model) Creds(f *Filter) []Cred {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Cred
	for _, c := range m.creds {
		s := m.byKey[sessionKey{c.Session, c.Client, c.Server}]
		if s != nil && !f.Match(s) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// Anomalies returns the anomalies of the sessions matching f.
func (m *Model) Anomalies(f *Filter) []Anomaly {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Anomaly
	for _, s := range m.sessions {
		if s.NAnomalies == 0 || !f.Match(s) {
			continue
		}
		for _, a := range s.Anomalies {
			where, text, _ := strings.Cut(a, ": ")
			out = append(out, Anomaly{Session: s.ID, Proto: s.Proto, Client: s.Client, Where: where, Text: text})
		}
	}
	return out
}

// Len returns the number of sessions kept.
func (m *Model) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}
