package imap

import (
	"bytes"
	"strings"
	"time"

	"github.com/mailtap/mailtap/decode"
)

// ConnState is the IMAP connection state (RFC 9051 section 3).
type ConnState uint8

const (
	StateNotAuthenticated ConnState = iota
	StateAuthenticated
	StateSelected
	StateLogout
)

func (s ConnState) String() string {
	return [...]string{"not_authenticated", "authenticated", "selected", "logout"}[s]
}

// Bounds of the session's own bookkeeping.
const (
	maxInFlight  = 1000     // commands waiting for their completion
	maxPending   = 64 << 10 // client bytes held while a sync literal waits
	maxUntagged  = 32       // untagged summaries kept per command
	maxSetLen    = 4 << 10  // length of a uid/seq list kept in a record
	maxMailboxes = 1000     // mailbox names kept for the session record
	maxAuths     = 16       // auth attempts kept
)

// half is one direction of the connection.
type half struct {
	dir decode.Direction
	tok *Tokenizer
	inf *inflater
	// tlsCheck: the next bytes are expected to be TLS (after STARTTLS OK).
	tlsCheck bool
	// pending client bytes held while a synchronizing literal waits,
	// with the time each piece arrived.
	pending []held
	npend   int
	// lineTS is when the line being tokenized began (a command's time).
	lineTS time.Time
	// awaitTag is the tag of the client line whose literal waits.
	awaitTag string
	// sinks started for literals of the current logical line.
	sinks []*litSink
	// feeding guards against re-entrant feeds of the same half.
	feeding bool
}

// Session decodes one IMAP connection. It implements decode.Decoder.
type Session struct {
	decode.Base

	c, s  half
	state ConnState
	now   time.Time

	greeted bool
	utf8    bool

	inflight map[string]*command
	order    []*command // in-flight commands, oldest first
	nmsg     int

	mailbox    string // selected mailbox
	readOnly   bool
	mailboxes  []string
	seenMbox   map[string]bool
	compressed bool
	stopped    bool                         // the stream cannot be decoded further (corrupt or cut DEFLATE)
	structures map[string]map[string]string // mailbox+uid/seq -> part -> content type
}

var _ decode.Decoder = (*Session)(nil)

// New returns a decoder for connection c.
func New(c decode.ConnInfo, o decode.Options, s decode.Sink) *Session {
	x := &Session{Base: decode.NewBase(c, decode.ProtoIMAP, o, s), inflight: make(map[string]*command)}
	x.now = c.Start
	x.c = half{dir: decode.ClientToServer, tok: NewTokenizer(false, x.Opts.MaxLine)}
	x.s = half{dir: decode.ServerToClient, tok: NewTokenizer(true, x.Opts.MaxLine)}
	x.c.tok.Anomaly, x.s.tok.Anomaly = x.Anomaly, x.Anomaly
	x.c.tok.Recognize = recognizeClient
	x.s.tok.Recognize = recognizeServer
	if c.ImplicitTLS {
		x.Encrypted = true
		x.TLS = &decode.TLS{Implicit: true}
	}
	if c.Midstream {
		x.c.tok.Resync()
		x.s.tok.Resync()
	}
	return x
}

// State returns the connection state.
func (x *Session) State() ConnState { return x.state }

func (x *Session) half(dir decode.Direction) *half {
	if dir == decode.ClientToServer {
		return &x.c
	}
	return &x.s
}

// Data implements decode.Decoder.
func (x *Session) Data(dir decode.Direction, p []byte, ts time.Time) {
	if dir != decode.ClientToServer && dir != decode.ServerToClient {
		return
	}
	x.Count(dir, len(p), ts)
	x.now = ts
	h := x.half(dir)
	if x.Closed || x.stopped {
		return
	}
	if x.Encrypted && !h.tlsCheck {
		x.TLSData(h.dir, p)
		return
	}
	x.feed(h, p)
}

// feed runs raw (possibly compressed) bytes of one direction.
func (x *Session) feed(h *half, p []byte) {
	for len(p) > 0 {
		if h.tlsCheck {
			h.tlsCheck = false
			if decode.IsTLSRecordStart(p) {
				x.Encrypted = true
				x.TLSData(h.dir, p)
				return
			}
			x.Anomaly(decode.AnomalyStartTLSPlaintext)
			x.Encrypted = false
			x.c.tlsCheck, x.s.tlsCheck = false, false
		}
		if x.Encrypted {
			return
		}
		if h.inf != nil {
			h.inf.Write(p)
			if h.inf.Failed() {
				x.Anomaly(decode.AnomalyCompressCorrupt)
				x.stopped = true
			}
			return
		}
		n := x.tokenize(h, p)
		p = p[n:]
	}
}

// tokenize feeds plain bytes to the tokenizer and handles its events. It
// returns how many bytes it consumed: fewer than len(p) when the stream
// changed mode (COMPRESS, STARTTLS) after an event.
func (x *Session) tokenize(h *half, p []byte) int {
	if h.tok.Awaiting() {
		x.hold(h, p)
		return len(p)
	}
	used := 0
	for used < len(p) {
		if h.tok.Idle() {
			h.lineTS = x.now
		}
		ev, n := h.tok.Next(p[used:])
		used += n
		switch ev {
		case EvLine:
			x.line(h, h.tok.Line())
		case EvLiteral:
			x.literal(h)
			if h.tok.Awaiting() {
				x.hold(h, p[used:])
				return len(p)
			}
		}
		if h.inf != nil || h.tlsCheck || x.Encrypted {
			return used
		}
		if ev == EvMore && n == 0 {
			break
		}
	}
	return used
}

// hold keeps client bytes that arrived while a synchronizing literal
// waits for the server. Past maxPending the literal is taken as sent.
func (x *Session) hold(h *half, p []byte) {
	if len(p) == 0 {
		return
	}
	h.pending = append(h.pending, held{p: append([]byte(nil), p...), ts: x.now})
	h.npend += len(p)
	if h.npend > maxPending {
		x.Anomaly(decode.AnomalyLiteralWithoutContinuation)
		x.acceptLiteral()
	}
}

// acceptLiteral releases an awaiting client literal (the server sent "+").
func (x *Session) acceptLiteral() {
	h := &x.c
	if !h.tok.Awaiting() {
		return
	}
	h.tok.Accept()
	h.awaitTag = ""
	x.releasePending()
}

// releasePending feeds the held client bytes (already inflated when the
// stream is compressed) to the tokenizer.
func (x *Session) releasePending() {
	h := &x.c
	if h.feeding || len(h.pending) == 0 {
		return
	}
	h.feeding = true
	now := x.now
	for len(h.pending) > 0 && !h.tok.Awaiting() && !x.Encrypted {
		// Each piece keeps the time it arrived: a command held behind a
		// literal was sent then, not when the server answered.
		pc := h.pending[0]
		h.pending = h.pending[1:]
		h.npend -= len(pc.p)
		x.now = pc.ts
		x.plain(h, pc.p)
		if h.tok.Awaiting() && len(pc.p) > 0 {
			// plain held the rest again (hold appends at the end): move
			// it back to the front so the order stays.
			if k := len(h.pending); k > 0 {
				last := h.pending[k-1]
				copy(h.pending[1:], h.pending[:k-1])
				h.pending[0] = last
			}
		}
	}
	x.now = now
	if len(h.pending) == 0 {
		h.pending, h.npend = nil, 0
	}
	h.feeding = false
}

// held is a piece of client bytes kept while a literal waits.
type held struct {
	p  []byte
	ts time.Time
}

// plain feeds bytes that are already plaintext (not compressed).
func (x *Session) plain(h *half, p []byte) {
	for len(p) > 0 && !x.Encrypted {
		n := x.tokenize(h, p)
		if n == 0 {
			return
		}
		p = p[n:]
	}
}

// startCompress switches both directions to DEFLATE (RFC 4978) after the
// tagged OK of COMPRESS.
func (x *Session) startCompress() {
	for _, h := range []*half{&x.c, &x.s} {
		h := h
		h.inf = newInflater(func(b []byte) { x.plain(h, b) })
	}
}

// Gap implements decode.Decoder.
func (x *Session) Gap(dir decode.Direction, n int, ts time.Time) {
	x.Gaps++
	x.LostBytes(n)
	x.Anomaly(decode.AnomalyGap)
	h := x.half(dir)
	if h.inf != nil {
		// A hole in a DEFLATE stream cannot be bridged.
		x.Anomaly(decode.AnomalyCompressGap)
		x.stopped = true
		return
	}
	if dir == decode.ClientToServer && h.tok.Awaiting() {
		h.tok.Accept()
		h.awaitTag = ""
	}
	if !h.tok.Gap(n) {
		x.dropSinks(h)
		if dir == decode.ClientToServer {
			h.pending, h.npend = nil, 0
		}
	}
}

// Close implements decode.Decoder.
func (x *Session) Close(reason decode.CloseReason, ts time.Time) {
	if x.Closed {
		return
	}
	if ts.After(x.now) {
		x.now = ts
	}
	if !x.Encrypted && !x.stopped {
		if x.c.tok.Awaiting() {
			if len(x.c.pending) > 0 {
				x.acceptLiteral()
			}
		}
		for _, h := range []*half{&x.c, &x.s} {
			if l := h.tok.Flush(); l != nil {
				x.line(h, l)
			}
		}
	}
	x.dropSinks(&x.c)
	x.dropSinks(&x.s)
	for _, c := range x.order {
		x.complete(c, "", "", nil)
	}
	x.order = nil
	x.Closed = true
	r := x.SessionRecord(reason, ts)
	r.Mailboxes = x.mailboxes
	r.Anomalies = x.Anomalies()
	x.Emit(r)
}

// line dispatches one complete logical line.
func (x *Session) line(h *half, l *Line) {
	if h.dir == decode.ClientToServer {
		x.clientLine(l)
	} else {
		x.serverLine(l)
	}
	h.sinks = h.sinks[:0]
}

// literal decides where a starting literal goes.
func (x *Session) literal(h *half) {
	t := h.tok
	lit := t.Literal()
	if h.dir == decode.ClientToServer {
		pre := t.Pending()
		if t.Awaiting() && len(pre.Tokens) > 0 {
			h.awaitTag = pre.Tokens[0].Value
		}
		if ls := x.clientLiteral(pre, lit); ls != nil {
			h.sinks = append(h.sinks, ls)
			t.StreamTo(ls)
		}
		return
	}
	if ls := x.serverLiteral(t.Pending(), lit); ls != nil {
		h.sinks = append(h.sinks, ls)
		t.StreamTo(ls)
	}
}

func (x *Session) dropSinks(h *half) {
	for _, s := range h.sinks {
		s.finish(true)
	}
	h.sinks = h.sinks[:0]
}

// recognizeServer accepts lines that can start a server response.
func recognizeServer(b []byte) bool {
	if bytes.HasPrefix(b, []byte("* ")) || bytes.HasPrefix(b, []byte("+ ")) || bytes.Equal(b, []byte("+")) {
		return true
	}
	f := bytes.Fields(b)
	if len(f) >= 2 && isTag(f[0]) {
		switch strings.ToUpper(string(f[1])) {
		case "OK", "NO", "BAD", "BYE":
			return true
		}
	}
	return false
}

// recognizeClient accepts lines that can start a client command.
func recognizeClient(b []byte) bool {
	if strings.EqualFold(string(b), "DONE") {
		return true
	}
	f := bytes.Fields(b)
	if len(f) >= 2 && isTag(f[0]) {
		_, ok := knownVerbs[strings.ToUpper(string(f[1]))]
		return ok
	}
	return false
}

func isTag(b []byte) bool {
	if len(b) == 0 || len(b) > 64 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || c == '(' || c == ')' || c == '{' || c == '"' || c == '%' || c == '*' || c == '+' || c == '\\' {
			return false
		}
	}
	return true
}
