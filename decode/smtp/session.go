package smtp

import (
	"bytes"
	"slices"
	"strings"
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
	rcpt       int // index in tx.rcpts, or -1
	inter      []int
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

	queue []*command

	// Reply being accumulated.
	rlines []string
	rbytes int
	rcode  int

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

	cur  *txn   // transaction taking commands
	open []*txn // not yet emitted, in creation order
	seq  int
}

// orphan is a reply that came before its command (see Session.orphans).
type orphan struct {
	code  int
	lines []string
	ts    time.Time
}

// maxOrphans bounds the replies kept for commands that come late.
const maxOrphans = 64

var _ decode.Decoder = (*Session)(nil)

// New returns a decoder for connection c emitting records to s.
func New(c decode.ConnInfo, o decode.Options, s decode.Sink) *Session {
	d := &Session{Base: decode.NewBase(c, decode.ProtoSMTP, o, s), wantGreeting: true}
	d.cl.Max = d.Opts.MaxLine
	d.sv.Max = d.Opts.MaxLine
	d.bodyOut = d.bodyWrite
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
			s.rlines, s.rbytes = s.rlines[:0], 0
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
		s.queue = s.queue[1:]
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
		if f := s.queue[0]; f.kind == kData && len(f.inter) == 0 {
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
	if len(s.rlines) > 0 && s.mustWait() {
		// The client goes on while a multi-line reply it had to wait
		// for is unfinished: the server never sent its last line.
		s.Anomaly(decode.AnomalyMalformedReply)
		lines := s.rlines
		s.rlines, s.rbytes = s.rlines[:0:0], 0
		s.reply(s.rcode, lines, ts)
	}
	verb, args, err := ParseCommand(text)
	if err != nil {
		verb, args = "", strings.TrimSpace(string(text))
	}
	if err != nil || !knownVerbs[verb] {
		s.Anomaly(decode.AnomalyUnknownCommand)
	}
	if len(args) > maxArgs {
		args = args[:maxArgs]
	}
	c := &command{verb: verb, args: args, ts: ts, rcpt: -1}
	switch verb {
	case "HELO", "EHLO", "LHLO":
		c.kind = kHelo
		if verb != "HELO" {
			c.kind = kEhlo
		}
		if f := strings.Fields(args); len(f) > 0 {
			s.helo = bound(f[0], maxPath)
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

// resyncTo354 handles a 354 that does not answer the oldest command: only
// a DATA takes a 354, so when one is waiting further on, the replies of the
// commands before it were lost (a gap on the server side): retire them
// unanswered so that the DATA content is framed.
func (s *Session) resyncTo354() {
	i := slices.IndexFunc(s.queue, func(c *command) bool { return c.kind == kData && len(c.inter) == 0 })
	if i <= 0 {
		return
	}
	s.Anomaly(decode.AnomalyReplyResync)
	lost := s.queue[:i:i]
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
		return len(c.inter) == 0
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
		s.queue = s.queue[1:]
		s.unanswered(old)
	}
	s.queue = append(s.queue, c)
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
	s.emitCommand(c, nil, "")
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
	code, sep, text, ok := ParseReplyLine(line.Text)
	if !ok {
		if !s.sResync {
			s.Anomaly(decode.AnomalyMalformedReply)
		}
		return
	}
	s.sResync = false
	if len(s.rlines) == 0 {
		s.rcode = code
	} else if code != s.rcode {
		s.Anomaly(decode.AnomalyMalformedReply)
	}
	if len(s.rlines) < maxReplyLines && s.rbytes+len(text) <= maxReplyBytes {
		s.rlines = append(s.rlines, text)
		s.rbytes += len(text)
	} else {
		s.Anomaly(decode.AnomalyReplyTooLong)
	}
	if sep == '-' {
		return
	}
	lines := s.rlines
	s.rlines, s.rbytes = s.rlines[:0:0], 0
	if len(lines) == 0 {
		// Only possible when the first line was over the byte limit.
		lines = []string{""}
	}
	s.reply(s.rcode, lines, ts)
}

// reply pairs one complete reply with the oldest waiting command and
// hands it to the handler of that command's kind.
func (s *Session) reply(code int, lines []string, ts time.Time) {
	if s.greetingReply(code, lines) {
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
	// A transaction's reply keeps the last line of a multi-line reply:
	// that is where servers put the queue id (Exim's "250- 4404 byte
	// chunk" / "250 OK id=...") and what Zeek logs as last_reply.
	r := newReply(code, lines[len(lines)-1])
	final := true
	switch c.kind {
	case kData:
		final = s.handleData(c, code, r, ts)
	case kBdat:
		s.handleBdat(c, code, r)
	case kAuth:
		final = s.handleAuth(c, code, lines)
	case kMail:
		s.handleMail(c, r)
	case kRcpt:
		s.handleRcpt(c, r)
	case kHelo, kEhlo:
		s.handleHelo(c, code, lines)
	case kStartTLS:
		if s.handleStartTLS(c, code, lines) {
			return
		}
	default:
		s.dequeue()
	}
	if !final {
		return
	}
	s.emitCommand(c, &code, lines[0])
	if c.tx != nil {
		c.tx.pending--
		s.maybeFinish(c.tx)
	}
}

// greetingReply takes the server's greeting (220, or a 421/554 refusal
// before any command); it reports whether the reply was the greeting.
func (s *Session) greetingReply(code int, lines []string) bool {
	greet := s.wantGreeting
	s.wantGreeting = false
	if greet && (code == 220 || (len(s.queue) == 0 && (code == 421 || code == 554))) &&
		(len(s.queue) == 0 || s.queue[0].kind != kStartTLS) {
		s.Greeting = bound(lines[0], maxArgs)
		return true
	}
	return false
}

// orphanReply keeps a reply that came with no command waiting (see
// Session.orphans).
func (s *Session) orphanReply(code int, lines []string, ts time.Time) {
	if code != 421 {
		s.Anomaly(decode.AnomalyUnexpectedReply)
	}
	if len(s.orphans) >= maxOrphans {
		s.orphans = s.orphans[1:]
	}
	s.orphans = append(s.orphans, orphan{code, lines, ts})
}

// dequeue retires the oldest waiting command: its reply is final.
func (s *Session) dequeue() { s.queue = s.queue[1:] }

// handleData takes a reply to DATA: the 354 go-ahead (not final) or the
// decision on the content. It reports whether the reply is final.
func (s *Session) handleData(c *command, code int, r *decode.Reply, ts time.Time) bool {
	if code == 354 && len(c.inter) == 0 {
		c.inter = append(c.inter, code)
		if s.holdCmd == c {
			s.releaseHold(true, ts)
		}
		return false
	}
	s.dequeue()
	first := len(c.inter) == 0
	c.tx.dataReply = r
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
func (s *Session) handleBdat(c *command, code int, r *decode.Reply) {
	s.dequeue()
	switch {
	case c.tx == nil: // an invalid BDAT outside a transaction
	case c.tx.bdatRejected:
	case !is2xx(code):
		c.tx.dataReply = r
		c.tx.bdatRejected = true
	case c.last:
		c.tx.dataReply = r
	}
}

// handleAuth takes a reply to AUTH: a 334 challenge (not final) or the
// outcome of the attempt. It reports whether the reply is final.
func (s *Session) handleAuth(c *command, code int, lines []string) bool {
	if code == 334 {
		c.inter = append(c.inter, code)
		c.auth.onChallenge(lines[0], s)
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
func (s *Session) handleMail(c *command, r *decode.Reply) {
	s.dequeue()
	t, prev := c.tx, c.reset
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
func (s *Session) handleRcpt(c *command, r *decode.Reply) {
	s.dequeue()
	if c.rcpt >= 0 {
		rc := &c.tx.rcpts[c.rcpt]
		rc.Code = r.Code
		rc.Accepted = is2xx(r.Code)
	}
	if t := c.tx; !t.hasMail && !is2xx(r.Code) && t.rcptReply == nil {
		t.rcptReply = r
	}
}

// handleHelo takes the reply to HELO or EHLO: once accepted, EHLO's
// capabilities are known and the transaction it resets ends.
func (s *Session) handleHelo(c *command, code int, lines []string) {
	s.dequeue()
	if !is2xx(code) {
		return
	}
	if c.kind == kEhlo {
		s.Caps = capabilities(lines[1:])
	}
	if c.reset != nil {
		s.endTx(c.reset)
	}
}

// handleStartTLS takes the reply to STARTTLS. On 220 it emits the
// command itself and the TLS handshake begins; it then reports true.
func (s *Session) handleStartTLS(c *command, code int, lines []string) bool {
	s.dequeue()
	if s.starttls == c {
		s.starttls = nil
	}
	if code != 220 {
		return false
	}
	s.emitCommand(c, &code, lines[0])
	s.beginTLS()
	return true
}

func is2xx(code int) bool { return code >= 200 && code < 300 }

func newReply(code int, text string) *decode.Reply {
	enh, rest := ParseEnhanced(code, text)
	return &decode.Reply{Code: code, Enhanced: enh, Text: bound(rest, maxArgs)}
}

// capabilities turns EHLO reply lines after the first into keywords.
func capabilities(lines []string) []string {
	caps := make([]string, 0, len(lines))
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			caps = append(caps, l)
		}
	}
	return caps
}

// emitCommand emits a command record (LevelCommands only).
func (s *Session) emitCommand(c *command, status *int, text string) {
	if s.Opts.Level < decode.LevelCommands {
		return
	}
	r := &decode.CommandRecord{
		Header:       s.Header(decode.TypeCommand, c.ts),
		Verb:         c.verb,
		Args:         c.args,
		Text:         text,
		Intermediate: c.inter,
		Pipelined:    c.pipelined,
	}
	if status != nil {
		r.Status = *status
		r.Code, _ = ParseEnhanced(*status, text)
	}
	if d := c.replyTS.Sub(c.ts); c.replied && d >= 0 {
		// (A reply that came before its command, see orphans, has none.)
		ms := float64(d.Microseconds()) / 1000
		r.LatencyMS = &ms
	}
	s.Emit(r)
}
