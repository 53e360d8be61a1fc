package smtp

import (
	"bytes"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/internal/framing"
)

// Limits (see the package documentation).
const (
	maxPending    = 1000
	maxRcpt       = 10000
	maxReplyLines = 512
	maxReplyBytes = 64 << 10
	maxPath       = 1 << 10
	maxArgs       = 4 << 10
	maxHold       = 64 << 10
)

// clientMode says what the next client bytes are.
type clientMode uint8

const (
	cmCommand  clientMode = iota // command lines (or AUTH responses)
	cmHold                       // after DATA, waiting for its reply
	cmBody                       // DATA content until CRLF.CRLF
	cmChunk                      // BDAT chunk octets
	cmTLSCheck                   // after STARTTLS's 220: TLS or not?
	cmTLS                        // encrypted
)

// serverMode says what the next server bytes are.
type serverMode uint8

const (
	smReply    serverMode = iota // reply lines
	smTLSCheck                   // after STARTTLS's 220: TLS or not?
	smTLS                        // encrypted
)

// cmdKind classifies commands whose replies change the session state.
type cmdKind uint8

const (
	kOther cmdKind = iota
	kHelo
	kEhlo
	kMail
	kRcpt
	kData
	kBdat
	kAuth
	kStartTLS
)

// command is one command waiting for (or having) its reply.
type command struct {
	verb, args string
	kind       cmdKind
	ts         time.Time
	pipelined  bool
	tx         *txn
	rcpt       int   // index in tx.rcpts, or -1
	ninter     int   // intermediate replies (354, 334) seen
	inter      []int // their codes, kept for command records only
	replied    bool
	replyTS    time.Time
	last       bool // BDAT ... LAST
	reset      *txn // transaction a HELO/EHLO/MAIL ends once accepted
	auth       *authAttempt
}

// Session decodes one SMTP connection. Create it with New.
type Session struct {
	decode.Base

	cl, sv framing.Lines
	cmode  clientMode
	smode  serverMode

	cResync, sResync bool // skipping to the next recognisable line

	// DATA hold, content and BDAT chunk state.
	hold     []byte
	holdCmd  *command
	holdGap  bool
	dot      framing.Dot
	bodyTx   *txn
	bodyCmd  *command
	bodyGap  bool
	bodyOut  func([]byte)
	chunkCmd *command
	left     int64

	// Commands waiting for a reply, oldest first: a window on qbuf,
	// whose storage is reused once the queue empties (see enqueue).
	queue []*command
	qbuf  []*command
	qarr  [8]*command

	// Retired commands kept for reuse (see recycle), and the storage
	// of the first ones.
	free    []*command
	freeArr [4]*command
	cmdArr  [2]command

	// Reply being accumulated, in storage reused from reply to reply.
	rl    replyLines
	rcode int
	rbArr [256]byte
	reArr [16]int

	// Strings kept for reuse (see reuseString): the last reply line
	// per kind of command, the last MAIL and RCPT arguments.
	seen     [kStartTLS + 1]string
	seenArgs [2]string

	wantGreeting bool
	sawServer    bool
	helo         string
	authCmd      *command
	starttls     *command

	// Replies that came with no command waiting. If the next client
	// event is a gap, the client's bytes after it were held back by
	// reassembly while the server went on: they pair with the commands
	// that follow the gap.
	orphans    []orphan
	orphanLive bool

	cur     *txn   // transaction taking commands
	open    []*txn // not yet emitted, in creation order
	openArr [2]*txn
	seq     int
}

// orphan is a reply that came before its command (see Session.orphans).
type orphan struct {
	code  int
	lines replyLines
	ts    time.Time
}

// maxOrphans bounds the replies kept for commands that come late.
const maxOrphans = 64

var _ decode.Decoder = (*Session)(nil)

// New returns a decoder for connection c emitting records to s.
func New(c decode.ConnInfo, o decode.Options, s decode.Sink) *Session {
	d, _ := sessions.Get().(*Session)
	if d == nil {
		d = new(Session)
		d.bodyOut = d.bodyWrite
	}
	d.Base = decode.NewBase(c, decode.ProtoSMTP, o, s)
	d.wantGreeting = true
	d.cl.Max = d.Opts.MaxLine
	d.sv.Max = d.Opts.MaxLine
	d.qbuf = d.qarr[:0]
	d.queue = d.qbuf
	d.free = append(d.freeArr[:0], &d.cmdArr[0], &d.cmdArr[1])
	d.rl = replyLines{buf: d.rbArr[:0], ends: d.reArr[:0]}
	d.open = d.openArr[:0]
	if c.Midstream {
		d.cResync, d.sResync = true, true
	}
	if c.ImplicitTLS {
		d.TLS = &decode.TLS{Implicit: true}
		d.Encrypted = true
		d.cmode, d.smode = cmTLS, smTLS
	}
	return d
}

// sessions keeps released sessions for reuse: a Session is large (about
// 2 KB, its first commands and reply storage inline) and a busy server
// sees a connection per message.
var sessions sync.Pool

// Release implements decode.Releaser: once closed, s goes back to the
// pool, cleared (bodyOut, bound to s, is kept).
func (s *Session) Release() {
	if !s.Closed {
		return
	}
	*s = Session{bodyOut: s.bodyOut}
	sessions.Put(s)
}

// Data implements decode.Decoder.
func (s *Session) Data(dir decode.Direction, p []byte, ts time.Time) {
	if s.Closed || len(p) == 0 {
		return
	}
	switch dir {
	case decode.ClientToServer:
		s.Count(dir, len(p), ts)
		if !s.orphanLive {
			s.orphans = nil
		}
		s.client(p, ts)
	case decode.ServerToClient:
		s.Count(dir, len(p), ts)
		s.sawServer = true
		s.server(p, ts)
	}
}

// Gap implements decode.Decoder.
func (s *Session) Gap(dir decode.Direction, n int, ts time.Time) {
	if s.Closed {
		return
	}
	s.Gaps++
	s.LostBytes(n)
	s.Anomaly(decode.AnomalyGap)
	switch dir {
	case decode.ClientToServer:
		if len(s.orphans) > 0 {
			s.orphanLive = true
		}
		s.clientGap(n, ts)
	case decode.ServerToClient:
		if s.smode == smReply {
			s.sv.Reset()
			s.rl.reset()
			s.sResync = true
		}
	}
}

func (s *Session) clientGap(n int, ts time.Time) {
	switch s.cmode {
	case cmCommand:
		s.cl.Reset()
		s.cResync = true
	case cmHold:
		s.holdGap = true
	case cmBody:
		s.bodyGap = true
		s.bodyTx.truncated = true
		s.bodyTx.missing += int64(max(n, 0))
		bare := s.dot.BareLFDot
		s.dot = framing.Dot{BareLFDot: bare}
	case cmChunk:
		tx := s.chunkCmd.tx
		tx.truncated = true
		tx.missing += int64(max(n, 0))
		if n >= 0 && int64(n) < s.left {
			s.left -= int64(n)
			return
		}
		exact := int64(n) == s.left
		s.endChunk(ts)
		if !exact {
			s.cl.Reset()
			s.cResync = true
		}
	}
}

// Close implements decode.Decoder: it ends open transactions, emits the
// unanswered commands and the session record.
func (s *Session) Close(reason decode.CloseReason, ts time.Time) {
	if s.Closed {
		return
	}
	if s.cmode == cmHold {
		s.releaseHold(looksLikeBody(s.hold), ts)
	}
	switch s.cmode {
	case cmBody:
		s.bodyTx.truncated = true
		s.endBody(ts)
	case cmChunk:
		s.chunkCmd.tx.truncated = true
		s.endChunk(ts)
	}
	s.Closed = true
	if s.cl.Overflowing() || s.sv.Overflowing() {
		s.Anomaly(decode.AnomalyLineTooLong) // a long line the close cut
	}
	for _, c := range s.queue {
		if c.kind == kMail && c.reset != nil {
			s.endTx(c.reset) // ended by a MAIL never answered, not by the close
			c.reset = nil
		}
	}
	for _, t := range s.open {
		t.closed, t.byClose = true, true
	}
	s.cur = nil
	for len(s.queue) > 0 {
		c := s.queue[0]
		s.dequeue()
		s.unanswered(c)
	}
	for len(s.open) > 0 {
		s.finish(s.open[0])
	}
	r := s.SessionRecord(reason, ts)
	r.Helo = s.helo
	s.Emit(r)
}

// client consumes client bytes.
func (s *Session) client(p []byte, ts time.Time) {
	for len(p) > 0 {
		switch s.cmode {
		case cmCommand:
			if s.starttls != nil && s.cl.Pending() == 0 && p[0] == tlsHandshake {
				// The ClientHello came before the 220 (capture order).
				s.enterTLS()
				continue
			}
			line, n, ok := s.cl.Next(p)
			p = p[n:]
			if ok {
				s.clientLine(line, ts)
			}
		case cmHold:
			p = s.holdData(p, ts)
		case cmBody:
			n, done := s.dot.Feed(p, s.bodyOut)
			p = p[n:]
			if s.dot.BareLFDot {
				s.Anomaly(decode.AnomalyBareLFDot)
			}
			if done {
				s.endBody(ts)
			}
		case cmChunk:
			k := int64(len(p))
			if k > s.left {
				k = s.left
			}
			s.chunkCmd.tx.msg.Write(p[:k])
			p = p[k:]
			s.left -= k
			if s.left == 0 {
				s.endChunk(ts)
			}
		case cmTLSCheck:
			if p[0] == tlsHandshake {
				s.enterTLS()
			} else {
				s.tlsPlaintext()
			}
		case cmTLS:
			s.tlsData(decode.ClientToServer, p)
			return
		}
		if s.orphanLive {
			s.drainOrphans()
		}
	}
}

// drainOrphans pairs replies that came before their commands (see
// Session.orphans) with the commands now waiting.
func (s *Session) drainOrphans() {
	for s.orphanLive && len(s.orphans) > 0 && len(s.queue) > 0 {
		if f := s.queue[0]; f.kind == kData && f.ninter == 0 {
			// Only a 354 starts DATA content: skip what cannot be ours.
			if i := slices.IndexFunc(s.orphans, func(o orphan) bool { return o.code == 354 }); i > 0 {
				s.orphans = s.orphans[i:]
			}
		}
		o := s.orphans[0]
		s.orphans = s.orphans[1:]
		s.reply(o.code, o.lines, o.ts)
	}
	if len(s.orphans) == 0 {
		s.orphans, s.orphanLive = nil, false
	}
}

func (s *Session) bodyWrite(b []byte) { s.bodyTx.msg.Write(b) }

// clientLine handles one complete client line in command mode.
func (s *Session) clientLine(line framing.Line, ts time.Time) {
	if line.Overflow {
		s.Anomaly(decode.AnomalyLineTooLong)
	}
	text := line.Text
	if s.authCmd != nil && s.isAuthResponse(text) {
		s.authCmd.auth.response(string(text), s)
		return
	}
	if s.cResync {
		if !isKnownCommand(text) {
			return
		}
		s.cResync = false
	}
	if s.smode == smReply && s.sv.Pending() > 0 && s.mustWait() {
		// Same, for a reply line the server never terminated (a
		// greeting without CRLF, suricata-verify detect-email-received).
		s.Anomaly(decode.AnomalyMalformedReply)
		if line, _, ok := s.sv.Next(lf); ok {
			s.serverLine(line, ts)
		}
	}
	if s.rl.n() > 0 && s.mustWait() {
		// The client goes on while a multi-line reply it had to wait
		// for is unfinished: the server never sent its last line.
		s.Anomaly(decode.AnomalyMalformedReply)
		s.endReply(ts)
	}
	verb, argb, known, err := parseCommand(text)
	var args string
	if err != nil {
		verb, args = "", bound(strings.TrimSpace(string(text)), maxArgs)
	} else {
		args = s.argString(verb, argb[:min(len(argb), maxArgs)])
	}
	if !known {
		s.Anomaly(decode.AnomalyUnknownCommand)
	}
	c := s.newCommand()
	c.verb, c.args, c.ts, c.rcpt = verb, args, ts, -1
	switch verb {
	case "HELO", "EHLO", "LHLO":
		c.kind = kHelo
		if verb != "HELO" {
			c.kind = kEhlo
		}
		if f, _ := nextField(args); f != "" {
			s.helo = bound(f, maxPath)
		}
		// A HELO/EHLO resets the transaction only when the server
		// accepts it (a rejected EHLO keeps the envelope).
		c.reset = s.cur
	case "MAIL":
		c.kind = kMail
		// The transaction this MAIL is sent in ends when the server
		// accepts the MAIL (or never answers); a refused MAIL leaves
		// it as it was (see handleMail).
		c.reset = s.cur
		s.cur = nil
		t := s.newTx(ts)
		t.hasMail = true
		addr, params, err := ParsePath(args)
		if err != nil {
			s.Anomaly(decode.AnomalyInvalidPath)
		}
		t.from, t.params = s.path(addr), bound(params, maxArgs)
		c.tx = t
	case "RCPT":
		c.kind = kRcpt
		t := s.txFor()
		addr, params, err := ParsePath(args)
		if err != nil {
			s.Anomaly(decode.AnomalyInvalidPath)
		}
		if len(t.rcpts) < maxRcpt {
			c.rcpt = len(t.rcpts)
			t.rcpts = append(t.rcpts, decode.Rcpt{Addr: s.path(addr), Params: bound(params, maxArgs)})
		} else {
			s.Anomaly(decode.AnomalyTooManyRcpt)
		}
		c.tx = t
	case "DATA":
		c.kind = kData
		c.tx = s.txFor()
	case "BDAT":
		n, last, ok := parseBDAT(args)
		c.kind = kBdat
		c.last = last
		if !ok {
			// No chunk can be framed. Inside a transaction the server's
			// reply still counts (Postfix's 521 ends it); outside one
			// a syntax error opens none: it is no transaction command
			// (Suricata's smtp-bdat-bad-tail-reply-queue).
			s.Anomaly(decode.AnomalyBDATInvalid)
			if c.tx = s.cur; c.tx != nil {
				c.tx.bdat = true
			}
			break
		}
		c.tx = s.txFor()
		c.tx.bdat = true
		s.enqueue(c)
		s.startChunk(c, n, ts)
		return
	case "RSET", "QUIT":
		s.endCur()
	case "STARTTLS":
		c.kind = kStartTLS
		s.starttls = c
	case "AUTH":
		c.kind = kAuth
		c.auth = newAuth(args, s)
		c.args = c.auth.redactedArgs(s)
		s.authCmd = c
	}
	s.enqueue(c)
	if c.kind == kData {
		s.cmode = cmHold
		s.holdCmd = c
		s.hold = s.hold[:0]
	}
}

// argString returns the arguments of a command as a string, for MAIL and
// RCPT the one of the previous such command when they are the same (a
// session with several transactions often repeats its envelope).
func (s *Session) argString(verb string, b []byte) string {
	switch verb {
	case "MAIL":
		return reuseString(&s.seenArgs[0], b)
	case "RCPT":
		return reuseString(&s.seenArgs[1], b)
	}
	return string(b)
}

// resyncTo354 handles a 354 that does not answer the oldest command: only
// a DATA takes a 354, so when one is waiting further on, the replies of the
// commands before it were lost (a gap on the server side): retire them
// unanswered so that the DATA content is framed.
func (s *Session) resyncTo354() {
	i := slices.IndexFunc(s.queue, func(c *command) bool { return c.kind == kData && c.ninter == 0 })
	if i <= 0 {
		return
	}
	s.Anomaly(decode.AnomalyReplyResync)
	lost := slices.Clone(s.queue[:i])
	clear(s.queue[:i])
	s.queue = s.queue[i:]
	for _, c := range lost {
		s.unanswered(c)
	}
}

var lf = []byte{'\n'}

// mustWait reports whether the client has to wait for the whole reply in
// progress before it sends anything (the greeting, and the replies to
// HELO/EHLO, DATA's 354, AUTH and STARTTLS; RFC 2920 §3.1).
func (s *Session) mustWait() bool {
	if len(s.queue) == 0 {
		return s.wantGreeting
	}
	switch c := s.queue[0]; c.kind {
	case kHelo, kEhlo, kAuth, kStartTLS:
		return true
	case kData:
		return c.ninter == 0
	}
	return false
}

// path bounds an address.
func (s *Session) path(a string) string {
	if len(a) > maxPath {
		s.Anomaly(decode.AnomalyPathTooLong)
		return a[:maxPath]
	}
	return a
}

func bound(v string, n int) string {
	if len(v) > n {
		return v[:n]
	}
	return v
}

// enqueue adds c to the commands waiting for a reply.
func (s *Session) enqueue(c *command) {
	s.Commands++
	c.pipelined = len(s.queue) > 0 && s.sawServer
	if c.tx != nil {
		c.tx.pending++
	}
	if len(s.queue) >= maxPending {
		s.Anomaly(decode.AnomalyTooManyPending)
		old := s.queue[0]
		s.dequeue()
		s.unanswered(old)
	}
	if len(s.queue) == cap(s.queue) && len(s.queue) < cap(s.qbuf) {
		// Full up to the end of qbuf but not from its start: slide
		// the window down instead of growing.
		n := copy(s.qbuf[:cap(s.qbuf)], s.queue)
		clear(s.qbuf[n:cap(s.qbuf)])
		s.queue = s.qbuf[:n]
	}
	s.queue = append(s.queue, c)
	if cap(s.queue) > cap(s.qbuf) { // grown: new storage
		s.qbuf = s.queue[:0]
	}
}

// dequeue retires the oldest waiting command from the queue. Once the
// queue is empty its storage is reused from the start, or dropped when
// a pipelining burst made it large.
func (s *Session) dequeue() {
	s.queue[0] = nil
	s.queue = s.queue[1:]
	if len(s.queue) == 0 {
		if cap(s.qbuf) > maxQueueKeep {
			s.qbuf = s.qarr[:0]
		}
		s.queue = s.qbuf[:0]
	}
}

// maxQueueKeep bounds the queue storage a session keeps once idle.
const maxQueueKeep = 64

// newCommand returns a zeroed command, reusing a retired one if any.
func (s *Session) newCommand() *command {
	if n := len(s.free); n > 0 {
		c := s.free[n-1]
		s.free = s.free[:n-1]
		return c
	}
	return new(command)
}

// recycle keeps c, answered, emitted and out of the queue, for reuse
// unless the session still points at it. What c's record took (its
// intermediate codes) is not reused: c is cleared, not its slices.
func (s *Session) recycle(c *command) {
	if len(s.free) == cap(s.free) || c == s.holdCmd || c == s.bodyCmd || c == s.chunkCmd ||
		c == s.authCmd || c == s.starttls {
		return
	}
	*c = command{}
	s.free = append(s.free, c)
}

// addInter notes an intermediate reply (354, 334) to c.
func (s *Session) addInter(c *command, code int) {
	c.ninter++
	if s.Opts.Level >= decode.LevelCommands {
		c.inter = append(c.inter, code)
	}
}

// unanswered retires c without a reply.
func (s *Session) unanswered(c *command) {
	if c.kind == kMail && c.reset != nil {
		s.endTx(c.reset) // as if accepted: the MAIL ends it
	}
	switch c {
	case s.holdCmd:
		s.releaseHold(looksLikeBody(s.hold), c.ts)
	case s.authCmd:
		s.authCmd = nil
	case s.starttls:
		s.starttls = nil
	}
	if c.auth != nil {
		s.Auths = append(s.Auths, c.auth.record(nil, s))
	}
	s.emitCommand(c, nil)
	if c.tx != nil {
		c.tx.unanswered = true
		c.tx.pending--
		s.maybeFinish(c.tx)
	}
}

// holdData buffers client bytes after DATA until its reply decides what
// they are. It returns the bytes it did not take.
func (s *Session) holdData(p []byte, ts time.Time) []byte {
	old := len(s.hold)
	take := min(maxHold-old, len(p))
	s.hold = append(s.hold, p[:take]...)
	p = p[take:]
	if !s.sawServer {
		if bytes.IndexByte(s.hold[old:], '\n') >= 0 {
			s.releaseHold(looksLikeBody(s.hold), ts)
			return p
		}
	}
	if len(s.hold) >= maxHold {
		s.Anomaly(decode.AnomalyDataReplyMissing)
		s.releaseHold(looksLikeBody(s.hold), ts)
	}
	return p
}

// looksLikeBody decides held bytes without a DATA reply: content unless
// there are none or their first line is a known command.
func looksLikeBody(held []byte) bool { return len(held) > 0 && !firstLineIsCommand(held) }

// firstLineIsCommand reports whether b starts with a known command line.
func firstLineIsCommand(b []byte) bool {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return isKnownCommand(b)
}

// releaseHold ends the hold after DATA: the held bytes are content (body)
// or commands, and are decoded again as such.
func (s *Session) releaseHold(body bool, ts time.Time) {
	c := s.holdCmd
	held := s.hold
	s.hold = nil
	s.holdCmd = nil
	gap := s.holdGap
	s.holdGap = false
	if body {
		s.startBody(c)
		if gap {
			s.bodyGap = true
			s.bodyTx.truncated = true
		}
	} else {
		s.cmode = cmCommand
		if gap {
			s.cl.Reset()
			s.cResync = true
		}
	}
	s.client(held, ts)
}

// startBody starts DATA content for c's transaction.
func (s *Session) startBody(c *command) {
	t := c.tx
	if t.msg != nil {
		// An unfinished BDAT message (chunk lost in a gap, then DATA):
		// that attempt ends as its own record (aborted, its message
		// truncated with the bytes lost), and the DATA content, the
		// message the server takes, goes to a new transaction with the
		// same envelope.
		t2 := s.newTx(c.ts)
		t2.helo, t2.hasMail, t2.from, t2.params, t2.mailReply = t.helo, t.hasMail, t.from, t.params, t.mailReply
		t2.rcpts = slices.Clone(t.rcpts)
		t.pending--
		t2.pending++
		c.tx = t2
		t.truncated = true
		s.endTx(t)
		t = t2
	}
	t.msg = s.newMessage(t)
	s.cmode = cmBody
	s.bodyTx, s.bodyCmd = t, c
	s.bodyGap = false
	s.dot = framing.Dot{}
}

// endBody ends DATA content (at its end marker, or cut short).
func (s *Session) endBody(ts time.Time) {
	t := s.bodyTx
	if s.dot.BareLFDot {
		s.Anomaly(decode.AnomalyBareLFDot)
		t.bareLF = true
	}
	s.bodyTx, s.bodyCmd = nil, nil
	s.bodyGap = false
	s.cmode = cmCommand
	s.finishMessage(t)
	s.endTx(t)
}

// startChunk starts a BDAT chunk of n octets.
func (s *Session) startChunk(c *command, n int64, ts time.Time) {
	t := c.tx
	if t.msg == nil {
		t.msg = s.newMessage(t)
	}
	s.chunkCmd = c
	s.left = n
	s.cmode = cmChunk
	if n == 0 {
		s.endChunk(ts)
	}
}

// endChunk ends the current BDAT chunk.
func (s *Session) endChunk(ts time.Time) {
	c := s.chunkCmd
	s.chunkCmd = nil
	s.left = 0
	s.cmode = cmCommand
	if c.last {
		s.finishMessage(c.tx)
		s.endTx(c.tx)
	}
}

// server consumes server bytes.
func (s *Session) server(p []byte, ts time.Time) {
	for len(p) > 0 {
		switch s.smode {
		case smReply:
			line, n, ok := s.sv.Next(p)
			p = p[n:]
			if ok {
				s.serverLine(line, ts)
			}
		case smTLSCheck:
			if p[0] == tlsHandshake {
				s.enterTLS()
			} else {
				s.tlsPlaintext()
			}
		case smTLS:
			s.tlsData(decode.ServerToClient, p)
			return
		}
	}
}

// serverLine handles one complete server line.
func (s *Session) serverLine(line framing.Line, ts time.Time) {
	if line.Overflow {
		s.Anomaly(decode.AnomalyLineTooLong)
	}
	code, sep, text, ok := parseReplyLine(line.Text)
	if !ok {
		if !s.sResync {
			s.Anomaly(decode.AnomalyMalformedReply)
		}
		return
	}
	s.sResync = false
	if s.rl.n() == 0 {
		s.rcode = code
	} else if code != s.rcode {
		s.Anomaly(decode.AnomalyMalformedReply)
	}
	if s.rl.n() < maxReplyLines && len(s.rl.buf)+len(text) <= maxReplyBytes {
		s.rl.add(text)
	} else {
		s.Anomaly(decode.AnomalyReplyTooLong)
	}
	if sep == '-' {
		return
	}
	s.endReply(ts)
}

// endReply hands the reply accumulated in s.rl to reply. The lines are
// taken out of s.rl while the reply is handled (handling it may decode
// client bytes held back, and with them an unfinished reply), and their
// storage comes back to s.rl afterwards, unless it has grown large.
func (s *Session) endReply(ts time.Time) {
	lines := s.rl
	s.rl = replyLines{}
	if lines.n() == 0 {
		// Only possible when the first line was over the byte limit.
		lines.add(nil)
	}
	s.reply(s.rcode, lines, ts)
	if s.rl.n() == 0 && cap(lines.buf) <= maxReplyKeep && cap(lines.ends) <= maxReplyKeepLines {
		lines.reset()
		s.rl = lines
	}
}

// maxSeen bounds a string kept for reuse (see reuseString).
const maxSeen = 128

// What a session keeps of its reply storage between replies.
const (
	maxReplyKeep      = 4 << 10
	maxReplyKeepLines = 64
)

// replyLines holds the lines of one reply (their text after the code and
// separator) end to end in buf: line i ends at ends[i].
type replyLines struct {
	buf  []byte
	ends []int
}

func (r *replyLines) n() int { return len(r.ends) }

func (r *replyLines) line(i int) []byte {
	start := 0
	if i > 0 {
		start = r.ends[i-1]
	}
	return r.buf[start:r.ends[i]]
}

func (r *replyLines) add(text []byte) {
	r.buf = append(r.buf, text...)
	r.ends = append(r.ends, len(r.buf))
}

func (r *replyLines) reset() { r.buf, r.ends = r.buf[:0], r.ends[:0] }

// clone returns a copy that owns its storage.
func (r *replyLines) clone() replyLines {
	return replyLines{buf: slices.Clone(r.buf), ends: slices.Clone(r.ends)}
}

// replyIn is one complete reply being handled. Its lines may be the
// session's reused storage: what outlives the reply is converted to
// strings, the first line only once.
type replyIn struct {
	code   int
	lines  replyLines // a view: not a pointer, see below
	first  string
	hasFst bool
	seen   *string // the last line converted for this kind of command
}

// text returns the first line as a string.
func (r *replyIn) text() string {
	if !r.hasFst {
		r.first, r.hasFst = r.str(r.lines.line(0)), true
	}
	return r.first
}

// lastText returns the last line as a string.
func (r *replyIn) lastText() string {
	if n := r.lines.n(); n > 1 {
		return r.str(r.lines.line(n - 1))
	}
	return r.text()
}

// str converts b, reusing the string converted last for a reply to the
// same kind of command when it is the same ("2.1.0 Ok" to every MAIL).
func (r *replyIn) str(b []byte) string {
	if r.seen == nil {
		return string(b)
	}
	return reuseString(r.seen, b)
}

// reuseString returns b as a string: *seen if that is the same, else a new
// one, kept in *seen when it is short.
func reuseString(seen *string, b []byte) string {
	if string(b) == *seen { // (the comparison does not allocate)
		return *seen
	}
	v := string(b)
	if len(v) <= maxSeen {
		*seen = v
	}
	return v
}

// record returns the reply as a transaction keeps it.
//
// A transaction's reply keeps the last line of a multi-line reply: that
// is where servers put the queue id (Exim's "250- 4404 byte chunk" /
// "250 OK id=...") and what Zeek logs as last_reply.
func (r *replyIn) record(t *txn) *decode.Reply { return t.keepReply(r.code, r.lastText()) }

// reply pairs one complete reply with the oldest waiting command and
// hands it to the handler of that command's kind.
//
// (lines is passed by value, in replyIn too: escape analysis does not tell
// the fields of a replyIn apart, and its strings are kept, so a pointer
// in it would move the caller's lines to the heap on every reply.)
func (s *Session) reply(code int, lines replyLines, ts time.Time) {
	r := &replyIn{code: code, lines: lines}
	if s.greetingReply(r) {
		return
	}
	if len(s.queue) == 0 {
		s.orphanReply(code, lines, ts)
		return
	}
	if code == 354 && s.queue[0].kind != kData {
		s.resyncTo354()
	}
	c := s.queue[0]
	if !c.replied {
		c.replied = true
		c.replyTS = ts
	}
	r.seen = &s.seen[c.kind]
	final := true
	switch c.kind {
	case kData:
		final = s.handleData(c, r, ts)
	case kBdat:
		s.handleBdat(c, r)
	case kAuth:
		final = s.handleAuth(c, r)
	case kMail:
		s.handleMail(c, r)
	case kRcpt:
		s.handleRcpt(c, r)
	case kHelo, kEhlo:
		s.handleHelo(c, r)
	case kStartTLS:
		if s.handleStartTLS(c, r) {
			return
		}
	default:
		s.dequeue()
	}
	if !final {
		return
	}
	s.emitCommand(c, r)
	if c.tx != nil {
		c.tx.pending--
		s.maybeFinish(c.tx)
	}
	s.recycle(c)
}

// greetingReply takes the server's greeting (220, or a 421/554 refusal
// before any command); it reports whether the reply was the greeting.
func (s *Session) greetingReply(r *replyIn) bool {
	greet := s.wantGreeting
	s.wantGreeting = false
	if code := r.code; greet && (code == 220 || (len(s.queue) == 0 && (code == 421 || code == 554))) &&
		(len(s.queue) == 0 || s.queue[0].kind != kStartTLS) {
		s.Greeting = bound(r.text(), maxArgs)
		return true
	}
	return false
}

// orphanReply keeps a reply that came with no command waiting (see
// Session.orphans).
func (s *Session) orphanReply(code int, lines replyLines, ts time.Time) {
	if code != 421 {
		s.Anomaly(decode.AnomalyUnexpectedReply)
	}
	if len(s.orphans) >= maxOrphans {
		s.orphans = s.orphans[1:]
	}
	s.orphans = append(s.orphans, orphan{code, lines.clone(), ts})
}

// handleData takes a reply to DATA: the 354 go-ahead (not final) or the
// decision on the content. It reports whether the reply is final.
func (s *Session) handleData(c *command, r *replyIn, ts time.Time) bool {
	if r.code == 354 && c.ninter == 0 {
		s.addInter(c, r.code)
		if s.holdCmd == c {
			s.releaseHold(true, ts)
		}
		return false
	}
	s.dequeue()
	first := c.ninter == 0
	c.tx.dataReply = r.record(c.tx)
	if s.holdCmd == c {
		s.releaseHold(false, ts)
	} else if s.cmode == cmBody && s.bodyCmd == c && (s.bodyGap || first || s.dot.BareLFDot) {
		// The server says the content is over while we are still in
		// it: it ended in a gap, or the server took a bare-LF dot
		// line as the end (Sendmail does; the smuggling case), or
		// the DATA was refused after its content was assumed. Other
		// replies inside the content are capture reordering: the
		// content goes on to its CRLF.CRLF.
		if first {
			c.tx.msg = nil
		}
		s.endBody(ts)
		s.cl.Reset()
		s.cResync = true
	}
	return true
}

// handleBdat takes a reply to one BDAT chunk: the first rejected chunk,
// or else the LAST chunk's reply, decides the transaction.
func (s *Session) handleBdat(c *command, r *replyIn) {
	s.dequeue()
	switch {
	case c.tx == nil: // an invalid BDAT outside a transaction
	case c.tx.bdatRejected:
	case !is2xx(r.code):
		c.tx.dataReply = r.record(c.tx)
		c.tx.bdatRejected = true
	case c.last:
		c.tx.dataReply = r.record(c.tx)
	}
}

// handleAuth takes a reply to AUTH: a 334 challenge (not final) or the
// outcome of the attempt. It reports whether the reply is final.
func (s *Session) handleAuth(c *command, r *replyIn) bool {
	code := r.code
	if code == 334 {
		s.addInter(c, code)
		c.auth.onChallenge(r.text(), s)
		return false
	}
	s.dequeue()
	if s.authCmd == c {
		s.authCmd = nil
	}
	s.Auths = append(s.Auths, c.auth.record(decode.Bool(code == 235 || is2xx(code)), s))
	return true
}

// handleMail takes the reply to MAIL. Accepted, it ends the transaction
// the MAIL was sent in (if any). Refused, it opens no transaction (RFC
// 5321 §3.3: the server keeps no envelope for it): its record is the
// attempt alone. The commands sent after it, pipelined before the refusal
// was known, then belong to the transaction still in force on the server
// — the one the MAIL was sent in, when the refusal is 503 and that one's
// MAIL was accepted ("503 sender already given", "nested MAIL command") —
// or else to none: they move to a transaction without MAIL, as if sent
// after the refusal (see txFor).
func (s *Session) handleMail(c *command, in *replyIn) {
	s.dequeue()
	t, prev := c.tx, c.reset
	r := in.record(t)
	t.mailReply = r
	if is2xx(r.Code) {
		if prev != nil {
			s.endTx(prev)
		}
		return
	}
	keep := r.Code == 503 && prev != nil && !prev.closed && prev.hasMail &&
		prev.mailReply != nil && is2xx(prev.mailReply.Code)
	if !keep && prev != nil {
		s.endTx(prev)
	}
	var out *txn // where the commands after the refused MAIL go
	if keep {
		out = prev
	}
	cur := s.cur
	moved, base := false, 0
	for _, q := range s.queue {
		if q.tx != t {
			continue
		}
		if out == nil {
			out = s.outsideTx(q.ts)
			s.cur = cur
		}
		if !moved {
			moved, base = true, len(out.rcpts)
			out.rcpts = append(out.rcpts, t.rcpts...)
			t.rcpts = nil
			if t.bdat {
				out.bdat, t.bdat = true, false
			}
			if out.msg == nil {
				out.msg, t.msg = t.msg, nil
			}
			if s.bodyTx == t {
				s.bodyTx = out
			}
		}
		if q.rcpt >= 0 {
			q.rcpt += base
		}
		q.tx = out
		t.pending--
		out.pending++
	}
	if s.cur == t {
		s.cur = nil
		if keep {
			s.cur = prev
		} else if out != nil {
			s.cur = out
		}
	}
	t.closed = true
}

// handleRcpt takes the reply to RCPT: the recipient's code. In a
// transaction without MAIL the first refusal is kept as its reply.
func (s *Session) handleRcpt(c *command, r *replyIn) {
	s.dequeue()
	if c.rcpt >= 0 {
		rc := &c.tx.rcpts[c.rcpt]
		rc.Code = r.code
		rc.Accepted = is2xx(r.code)
	}
	if t := c.tx; !t.hasMail && !is2xx(r.code) && t.rcptReply == nil {
		t.rcptReply = r.record(t)
	}
}

// handleHelo takes the reply to HELO or EHLO: once accepted, EHLO's
// capabilities are known and the transaction it resets ends.
func (s *Session) handleHelo(c *command, r *replyIn) {
	s.dequeue()
	if !is2xx(r.code) {
		return
	}
	if c.kind == kEhlo {
		s.Caps = capabilities(&r.lines)
	}
	if c.reset != nil {
		s.endTx(c.reset)
	}
}

// handleStartTLS takes the reply to STARTTLS. On 220 it emits the
// command itself and the TLS handshake begins; it then reports true.
func (s *Session) handleStartTLS(c *command, r *replyIn) bool {
	s.dequeue()
	if s.starttls == c {
		s.starttls = nil
	}
	if r.code != 220 {
		return false
	}
	s.emitCommand(c, r)
	s.beginTLS()
	return true
}

func is2xx(code int) bool { return code >= 200 && code < 300 }

// capabilities turns EHLO reply lines after the first into keywords,
// substrings of one string holding them all.
func capabilities(lines *replyLines) []string {
	n := lines.n() - 1
	caps := make([]string, 0, n)
	if n == 0 {
		return caps
	}
	start := lines.ends[0]
	all := string(lines.buf[start:])
	for i := 1; i <= n; i++ {
		l := all[lines.ends[i-1]-start : lines.ends[i]-start]
		if l = strings.TrimSpace(l); l != "" {
			caps = append(caps, l)
		}
	}
	return caps
}

// emitCommand emits a command record (LevelCommands only) with its final
// reply r, nil if it had none.
func (s *Session) emitCommand(c *command, reply *replyIn) {
	if s.Opts.Level < decode.LevelCommands {
		return
	}
	r := &decode.CommandRecord{
		Header:       s.Header(decode.TypeCommand, c.ts),
		Verb:         c.verb,
		Args:         c.args,
		Intermediate: c.inter,
		Pipelined:    c.pipelined,
	}
	if reply != nil {
		r.Status = reply.code
		r.Text = reply.text()
		r.Code, _ = ParseEnhanced(reply.code, r.Text)
	}
	if d := c.replyTS.Sub(c.ts); c.replied && d >= 0 {
		// (A reply that came before its command, see orphans, has none.)
		ms := float64(d.Microseconds()) / 1000
		r.LatencyMS = &ms
	}
	s.Emit(r)
}
