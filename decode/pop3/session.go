package pop3

import (
	"math"
	"strings"
	"time"

	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/internal/framing"
	"github.com/mailtap/mailtap/decode/internal/sasl"
	"github.com/mailtap/mailtap/decode/message"
)

// Bounds on what one session keeps.
const (
	maxQueue     = 1024    // commands awaiting a reply
	maxListing   = 1 << 17 // UIDL entries and pending deletions kept
	maxCaps      = 256     // CAPA lines kept
	maxRetrieved = 1 << 16 // pop3.message records held until the session ends
	maxAuths     = 64      // login attempts kept (the last one always)
)

// listing kinds: what a multi-line answer that is not a message holds.
type listKind uint8

const (
	listNone  listKind = iota
	listCapa           // CAPA
	listScan           // LIST without argument
	listUIDL           // UIDL without argument
	listOther          // AUTH without argument, LANG without argument
)

// command is one client command and, once answered, its reply.
type command struct {
	verb, args string // args as sent
	shown      string // args for the record (secrets redacted)
	ts         time.Time
	pipelined  bool

	msgno    int // RETR, TOP, DELE, LIST n, UIDL n
	topLines int // TOP
	list     listKind
	message  bool // RETR/TOP: a message follows +OK
	auth     *sasl.Exchange
	waiting  bool // AUTH: a "+ " challenge waits for the client's answer

	answered  bool
	ok        bool
	text      string
	replyTime time.Time
	lost      bool // part of the answer fell into a gap
}

// expectsMulti reports whether +OK to c starts a multi-line answer.
func (c *command) expectsMulti() bool { return MultiLine(c.verb, c.args) }

// retrieval is one RETR/TOP answered +OK.
type retrieval struct {
	cmd    *command
	parser *message.Parser
	dot    framing.Dot
	bareLF bool // a "." line with a bare LF was seen (kept across gaps)
	lost   bool // a gap hit the body: stop writing, look for the end
	msg    *decode.Message
}

func (r *retrieval) write(b []byte) {
	if !r.lost {
		r.parser.Write(b)
	}
}

// Session decodes one POP3 connection (RFC 1939 with RFC 2449 CAPA,
// RFC 2595 STLS and RFC 5034 AUTH). Feed it both directions in capture
// order; it emits command records as exchanges complete and, at Close,
// the pop3.message records and the session record.
type Session struct {
	decode.Base

	lines [2]framing.Lines // client, server
	queue []*command       // sent, not yet answered, in order
	cur   *command         // command whose multi-line listing is being read
	body  *retrieval       // message being read

	serverSeen bool
	challenge  string // APOP timestamp from the greeting
	c2sResync  bool   // after a gap or a midstream start: wait for a known verb
	s2cResync  bool   // after a gap or a midstream start: wait for a status line

	transaction bool     // TRANSACTION state reached (RFC 1939 §5)
	user        string   // USER accepted, waiting for PASS
	newCaps     []string // CAPA listing being read
	listN       int      // LIST listing being read
	listOctets  int64
	mailbox     *decode.MailboxStat
	mailboxFrom int // 3 STAT, 2 LIST, 1 login text
	uidl        map[int]string
	deletes     map[int]bool // DELE +OK since the last RSET
	committed   map[int]bool // deletions committed by QUIT +OK
	quit        bool
	retrieved   []*retrieval
	nretrieved  int

	tlsCheck bool // STLS accepted: the next bytes tell TLS from plaintext
}

var _ decode.Decoder = (*Session)(nil)

// New returns a decoder for connection c.
func New(c decode.ConnInfo, o decode.Options, s decode.Sink) *Session {
	d := &Session{Base: decode.NewBase(c, decode.ProtoPOP3, o, s)}
	d.lines[0].Max = d.Opts.MaxLine
	d.lines[1].Max = d.Opts.MaxLine
	if c.Midstream {
		d.c2sResync, d.s2cResync = true, true
		d.serverSeen = true
	}
	if c.ImplicitTLS {
		// Encrypted from the first byte, unless that byte is plaintext.
		d.TLS = &decode.TLS{Implicit: true}
		d.tlsCheck = true
	}
	return d
}

// Data implements decode.Decoder.
func (s *Session) Data(dir decode.Direction, p []byte, ts time.Time) {
	if s.Closed || len(p) == 0 || (dir != decode.ClientToServer && dir != decode.ServerToClient) {
		return
	}
	s.Count(dir, len(p), ts)
	for len(p) > 0 {
		if s.Encrypted {
			s.TLSData(dir, p)
			return
		}
		if s.tlsCheck {
			s.tlsCheck = false
			if looksLikeTLS(p[0]) {
				s.encrypt()
				continue
			}
			if s.TLS.Implicit {
				s.Anomaly(decode.AnomalyImplicitTLSPlaintext)
			} else {
				s.Anomaly(decode.AnomalyStartTLSPlaintext)
			}
		}
		var n int
		if dir == decode.ClientToServer {
			n = s.clientStep(p, ts)
		} else {
			n = s.serverStep(p, ts)
		}
		p = p[n:]
	}
}

// Gap implements decode.Decoder.
func (s *Session) Gap(dir decode.Direction, n int, ts time.Time) {
	if s.Closed || (dir != decode.ClientToServer && dir != decode.ServerToClient) {
		return
	}
	s.Gaps++
	s.LostBytes(n)
	s.Anomaly(decode.AnomalyGap)
	if s.tlsCheck {
		// The bytes that would tell are lost; after +OK to STLS they are
		// TLS in all but broken captures.
		s.tlsCheck = false
		s.encrypt()
	}
	if s.Encrypted {
		s.TLSGap(dir)
		return
	}
	if dir == decode.ClientToServer {
		s.lines[0].Reset()
		s.c2sResync = true
		return
	}
	s.lines[1].Reset()
	s.serverSeen = true
	switch {
	case s.body != nil:
		s.body.gap()
	case s.cur != nil:
		s.cur.lost = true
	default:
		// Replies in flight may have been lost: only the newest command
		// can still be answered by what follows.
		for len(s.queue) > 1 {
			c := s.queue[0]
			s.queue = s.queue[1:]
			c.lost = true
			s.emitCommand(c)
		}
		s.s2cResync = true
	}
}

// gap marks the message truncated and makes the dot decoder look for the
// end from the middle of a line (a "." right after the gap is content).
func (r *retrieval) gap() {
	r.lost = true
	r.bareLF = r.bareLF || r.dot.BareLFDot
	r.dot = framing.Dot{}
	r.dot.Feed([]byte{'x'}, func([]byte) {})
}

// Close implements decode.Decoder.
func (s *Session) Close(reason decode.CloseReason, ts time.Time) {
	if s.Closed {
		return
	}
	s.Closed = true
	if s.lines[0].Overflowing() || s.lines[1].Overflowing() {
		s.Anomaly(decode.AnomalyLineTooLong) // a long line the close cut
	}
	if s.tlsCheck && s.TLS.Implicit {
		s.Encrypted = true // nothing said otherwise
	}
	if s.body != nil {
		s.Anomaly(decode.AnomalyMessageTruncated)
		s.endBody(true)
	}
	if s.cur != nil {
		s.Anomaly(decode.AnomalyListingTruncated)
		s.endListing()
	}
	for _, c := range s.queue {
		s.emitCommand(c)
	}
	s.queue = nil
	for _, r := range s.retrieved {
		s.emitMessage(r)
	}
	s.retrieved = nil
	s.Emit(s.sessionRecord(reason, ts))
}

// looksLikeTLS tells, from the first byte after +OK to STLS, TLS (a
// handshake record, 0x16, or any other binary byte such as an SSLv2 hello)
// from plaintext that goes on in clear (a capture decrypted after the fact).
func looksLikeTLS(c byte) bool {
	switch {
	case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c == '+', c == '-', c == '.', c == '\r', c == '\n', c == ' ':
		return false
	}
	return true
}

func (s *Session) encrypt() {
	s.Encrypted = true
	s.lines[0].Reset()
	s.lines[1].Reset()
	if s.body != nil {
		s.endBody(true)
	}
	if s.cur != nil {
		s.endListing()
	}
}

// clientStep consumes client bytes up to one line.
func (s *Session) clientStep(p []byte, ts time.Time) int {
	l, n, ok := s.lines[0].Next(p)
	if ok {
		s.clientLine(l, ts)
	}
	return n
}

// serverStep consumes server bytes: message content up to its end, or
// one line.
func (s *Session) serverStep(p []byte, ts time.Time) int {
	if r := s.body; r != nil {
		n, done := r.dot.Feed(p, r.write)
		if done {
			s.endBody(r.lost)
		}
		return n
	}
	l, n, ok := s.lines[1].Next(p)
	if ok {
		s.serverLine(l, ts)
	}
	return n
}

// saslTail returns the AUTH exchange a client line may belong to.
func (s *Session) saslTail() *command {
	if len(s.queue) == 0 {
		return nil
	}
	c := s.queue[len(s.queue)-1]
	if c.auth == nil || c.auth.Cancelled() {
		return nil
	}
	return c
}

func (s *Session) clientLine(l framing.Line, ts time.Time) {
	if l.Overflow {
		s.Anomaly(decode.AnomalyLineTooLong)
	}
	text := l.Text
	verb, args, ok := ParseCommand(text)
	if c := s.saslTail(); c != nil {
		// A line answering a "+ " challenge is SASL data; so is a line
		// that is no command while the exchange has not started (the
		// capture may show it before the challenge).
		if c.waiting || (c.auth.Steps() == 0 && !(ok && knownVerbs[verb])) {
			c.waiting = false
			c.auth.Response(string(text), false)
			return
		}
	}
	if !ok {
		if s.c2sResync {
			return
		}
		if len(text) == 0 {
			s.Anomaly(decode.AnomalyEmptyCommand)
		} else {
			s.Anomaly(decode.AnomalyInvalidCommand)
		}
		return
	}
	if s.c2sResync && !knownVerbs[verb] {
		return
	}
	s.c2sResync = false
	if !knownVerbs[verb] {
		s.Anomaly(decode.AnomalyUnknownCommand)
	}
	c := &command{verb: verb, args: args, ts: ts}
	c.pipelined = len(s.queue) > 0 || s.cur != nil || s.body != nil
	arg := strings.TrimSpace(args)
	f := fields(arg)
	c.shown = cleanText([]byte(args))
	switch verb {
	case "PASS":
		c.shown = s.Redact(args)
	case "APOP":
		if len(f) >= 2 {
			c.shown = f[0] + " " + s.Redact(strings.Join(f[1:], " "))
		}
	case "AUTH":
		if len(f) == 0 {
			c.list = listOther
			break
		}
		c.auth = sasl.New(f[0])
		c.shown = c.auth.Mech
		if len(f) >= 2 {
			c.auth.Response(f[1], true)
			c.shown += " " + s.Redact(f[1])
		}
	case "CAPA":
		c.list = listCapa
	case "LIST", "UIDL":
		if arg == "" {
			c.list = listScan
			if verb == "UIDL" {
				c.list = listUIDL
			}
		} else {
			c.msgno, _ = atoi(f[0])
		}
	case "LANG":
		if arg == "" {
			c.list = listOther
		}
	case "RETR", "DELE":
		if len(f) >= 1 {
			c.msgno, _ = atoi(f[0])
		}
		c.message = verb == "RETR"
	case "TOP":
		if len(f) >= 1 {
			c.msgno, _ = atoi(f[0])
		}
		if len(f) >= 2 {
			c.topLines, _ = atoi(f[1])
		}
		c.message = true
	}
	if len(s.queue) >= maxQueue {
		s.Anomaly(decode.AnomalyTooManyPending)
		old := s.queue[0]
		s.queue = s.queue[1:]
		s.emitCommand(old)
	}
	s.queue = append(s.queue, c)
}

func (s *Session) serverLine(l framing.Line, ts time.Time) {
	if l.Overflow {
		s.Anomaly(decode.AnomalyLineTooLong)
	}
	text := l.Text
	if !s.serverSeen {
		s.serverSeen = true
		if len(s.queue) == 0 {
			ok, t, valid := ParseStatus(text)
			if !valid {
				s.Anomaly(decode.AnomalyInvalidGreeting)
				s.s2cResync = true
				return
			}
			s.Greeting = t
			if ok {
				s.challenge = apopTimestamp(t)
			}
			return
		}
		s.Anomaly(decode.AnomalyNoGreeting)
	}
	if s.cur != nil {
		if !s.listingLine(l) {
			return
		}
		// The listing lacked its end: the line is the next reply.
	}
	ok, t, valid := ParseStatus(text)
	if s.s2cResync {
		if !valid {
			if len(s.queue) > 0 && isContinuation(text) && s.queue[0].auth != nil {
				s.s2cResync = false
				s.continuation(s.queue[0], text)
				return
			}
			if len(text) == 1 && text[0] == '.' && len(s.queue) > 0 && s.queue[0].expectsMulti() {
				// The end of a multi-line answer whose status was lost.
				c := s.queue[0]
				s.queue = s.queue[1:]
				c.lost = true
				s.emitCommand(c)
			}
			return
		}
		if len(s.queue) == 0 {
			s.Anomaly(decode.AnomalyUnexpectedReply)
			return
		}
		s.s2cResync = false
	}
	if len(s.queue) == 0 {
		if valid {
			s.Anomaly(decode.AnomalyUnexpectedReply)
		} else {
			s.Anomaly(decode.AnomalyInvalidReply)
		}
		return
	}
	c := s.queue[0]
	if !valid {
		if c.auth != nil && isContinuation(text) {
			s.continuation(c, text)
			return
		}
		s.Anomaly(decode.AnomalyInvalidReply)
		return
	}
	s.queue = s.queue[1:]
	c.answered, c.ok, c.text, c.replyTime = true, ok, cleanText([]byte(t)), ts
	s.reply(c, ts)
}

// continuation handles a "+ " challenge to an AUTH in progress.
func (s *Session) continuation(c *command, text []byte) {
	c.auth.Challenge(string(text[1:]))
	c.waiting = true
}

// listingLine handles one line of a multi-line listing. It returns true
// when the line is not part of the listing but the next reply (the
// listing ended without its "." line); the listing is then closed.
func (s *Session) listingLine(l framing.Line) bool {
	c := s.cur
	text := l.Text
	if len(text) == 1 && text[0] == '.' {
		if !l.CRLF {
			s.Anomaly(decode.AnomalyBareLFDot)
		}
		s.endListing()
		return false
	}
	if len(s.queue) > 0 {
		if _, _, valid := ParseStatus(text); valid {
			s.Anomaly(decode.AnomalyListingUnterminated)
			s.endListing()
			return true
		}
	}
	if len(text) > 0 && text[0] == '.' {
		text = text[1:]
	}
	switch c.list {
	case listCapa:
		if len(s.newCaps) < maxCaps {
			s.newCaps = append(s.newCaps, cleanText(text))
		}
	case listScan:
		if _, size, ok := parseScanListing(string(text)); ok {
			s.listN++
			s.listOctets += size
		} else if !c.lost {
			s.Anomaly(decode.AnomalyInvalidListing)
		}
	case listUIDL:
		if n, uid, ok := parseUIDListing(string(text)); ok {
			s.setUIDL(n, uid)
		} else if !c.lost {
			s.Anomaly(decode.AnomalyInvalidListing)
		}
	}
	return false
}

func (s *Session) setUIDL(n int, uid string) {
	if s.uidl == nil {
		s.uidl = make(map[int]string)
	}
	if _, ok := s.uidl[n]; !ok && len(s.uidl) >= maxListing {
		s.Anomaly(decode.AnomalyListingTooLong)
		return
	}
	s.uidl[n] = uid
}

func (s *Session) setMailbox(n int, octets int64, from int) {
	if from > s.mailboxFrom {
		s.mailbox = &decode.MailboxStat{Messages: n, Octets: octets}
		s.mailboxFrom = from
	}
}

// endListing finishes the listing in s.cur and emits its command.
func (s *Session) endListing() {
	c := s.cur
	s.cur = nil
	switch c.list {
	case listCapa:
		s.Caps = s.newCaps
		s.newCaps = nil
	case listScan:
		if !c.lost {
			s.setMailbox(s.listN, s.listOctets, 2)
		}
	}
	s.emitCommand(c)
}

// reply acts on the status line answering c.
func (s *Session) reply(c *command, ts time.Time) {
	ok := c.ok
	if ok {
		switch c.verb {
		case "STAT", "LIST", "UIDL", "RETR", "TOP", "DELE", "RSET", "NOOP", "LAST":
			s.transaction = true // seen in TRANSACTION state (midstream start)
		}
	}
	switch c.verb {
	case "USER":
		if ok {
			s.user = strings.TrimSpace(c.args)
		} else {
			s.addAuth(decode.Auth{Mechanism: "USER", User: strings.TrimSpace(c.args), Success: decode.Bool(false)})
		}
	case "PASS":
		s.addAuth(decode.Auth{Mechanism: "USER", User: s.user, Password: s.Redact(c.args), Success: decode.Bool(ok)})
		s.user = ""
		s.loggedIn(ok, c.text)
	case "APOP":
		f := fields(c.args)
		at := decode.Auth{Mechanism: "APOP", Success: decode.Bool(ok)}
		if len(f) > 0 {
			at.User = f[0]
		}
		at.Challenge = s.Redact(s.challenge)
		if len(f) > 1 {
			at.Response = s.Redact(f[1])
		}
		s.addAuth(at)
		s.loggedIn(ok, c.text)
	case "AUTH":
		if c.auth != nil {
			s.addAuth(c.auth.Auth(decode.Bool(ok), s.Redact))
			s.loggedIn(ok, c.text)
		}
	case "STAT":
		if n, size, valid := parseScanListing(c.text); ok && valid {
			s.setMailbox(n, size, 3)
		}
	case "UIDL":
		if n, uid, valid := parseUIDListing(c.text); ok && c.list == listNone && valid {
			s.setUIDL(n, uid)
		}
	case "DELE":
		if ok {
			if s.deletes == nil {
				s.deletes = make(map[int]bool)
			}
			if len(s.deletes) < maxListing {
				s.deletes[c.msgno] = true
			} else {
				s.Anomaly(decode.AnomalyListingTooLong)
			}
		}
	case "RSET":
		if ok {
			s.deletes = nil
		}
	case "QUIT":
		if ok {
			s.quit = true
			if len(s.deletes) > 0 {
				s.committed = s.deletes
				s.deletes = nil
			}
		}
	case "STLS":
		if ok {
			if s.TLS == nil {
				s.TLS = &decode.TLS{}
			}
			s.TLS.StartTLS = true
			s.tlsCheck = true
		}
	}
	if !ok || !c.expectsMulti() {
		s.emitCommand(c)
		return
	}
	if c.message {
		s.startBody(c)
		return
	}
	s.cur = c
	s.newCaps, s.listN, s.listOctets = nil, 0, 0
}

// addAuth records a login attempt; past maxAuths the last slot is reused
// so the session's auth is always the latest attempt.
func (s *Session) addAuth(a decode.Auth) {
	if len(s.Auths) >= maxAuths {
		s.Anomaly(decode.AnomalyTooManyAuths)
		s.Auths[len(s.Auths)-1] = a
		return
	}
	s.Auths = append(s.Auths, a)
}

func (s *Session) loggedIn(ok bool, text string) {
	if !ok {
		return
	}
	s.transaction = true
	if n, octets, found := maildropText(text); found {
		s.setMailbox(n, octets, 1)
	}
}

func (s *Session) startBody(c *command) {
	s.nretrieved++
	o := message.Options{MaxMemory: s.Opts.MaxMessage, Hashes: s.Opts.Hashes}
	if s.Opts.Messages != nil {
		o.Writer = s.Opts.Messages.Create(s.Conn, decode.ProtoPOP3, s.nretrieved)
	}
	s.body = &retrieval{cmd: c, parser: message.New(o)}
}

// endBody finishes the message being read.
func (s *Session) endBody(truncated bool) {
	r := s.body
	s.body = nil
	if r.bareLF || r.dot.BareLFDot {
		s.Anomaly(decode.AnomalyBareLFDot)
	}
	r.msg = r.parser.Finish(truncated || r.lost)
	r.parser = nil
	if len(s.retrieved) < maxRetrieved {
		s.retrieved = append(s.retrieved, r)
	} else {
		// Too many to hold until QUIT: emit now; deletion is unknown.
		s.Anomaly(decode.AnomalyTooManyMessages)
		s.emitMessage(r)
	}
	s.emitCommand(r.cmd)
}

// emitCommand counts one exchange and emits its record at LevelCommands.
func (s *Session) emitCommand(c *command) {
	s.Commands++
	if s.Opts.Level < decode.LevelCommands {
		return
	}
	r := &decode.CommandRecord{
		Header:    s.Header(decode.TypeCommand, c.ts),
		Verb:      c.verb,
		Args:      c.shown,
		Pipelined: c.pipelined,
	}
	if c.answered {
		r.Status = "-ERR"
		if c.ok {
			r.Status = "+OK"
		}
		r.Text = c.text
		ms := float64(c.replyTime.Sub(c.ts)) / float64(time.Millisecond)
		ms = math.Round(ms*1000) / 1000
		r.LatencyMS = &ms
	}
	s.Emit(r)
}

func (s *Session) emitMessage(r *retrieval) {
	c := r.cmd
	m := &decode.POP3Message{
		Header:  s.Header(decode.TypePOP3Message, c.ts),
		Msgno:   c.msgno,
		UIDL:    s.uidl[c.msgno],
		Size:    r.msg.Size,
		Deleted: s.committed[c.msgno],
		Message: r.msg,
	}
	if c.verb == "TOP" {
		n := c.topLines
		m.TopLines = &n
	}
	s.Emit(m)
}

func (s *Session) sessionRecord(reason decode.CloseReason, ts time.Time) *decode.SessionRecord {
	s.Transactions = s.nretrieved
	r := s.SessionRecord(reason, ts)
	retrieved, deleted := s.nretrieved, len(s.committed)
	r.Retrieved, r.Deleted = &retrieved, &deleted
	if s.transaction || retrieved > 0 {
		r.Mode = "keep"
		if deleted > 0 {
			r.Mode = "delete"
		}
	}
	r.Mailbox = s.mailbox
	return r
}
