package smtpd

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/mailtap/mailtap/replay/server/internal/netsrv"
)

// conn is the net.Conn go-smtp gets for each accepted connection. It
// carries what the log says about the connection as a whole (one id, one
// start and one end line, even across STARTTLS, which makes go-smtp end
// one Session and begin another), and it fixes what go-smtp v0.25.1 gets
// wrong when a read times out in the middle of a command line.
//
// go-smtp reads commands with bufio.Reader.ReadLine, which returns a
// partial line as if it were whole when the read under it fails; at each
// read timeout the fragment was executed as a command and the connection
// lived on, so a client dripping a byte at a time without a line end held
// the connection for ever. Here a read timeout while a command line is
// unfinished closes the connection instead, and marks it dead so that no
// Session method acts on the fragment go-smtp still dispatches. The conn
// sees the plaintext, before STARTTLS and after it (it terminates the
// client's TLS session; tlsterm.go), and knows exactly whether a line is
// unfinished.
type conn struct {
	*netsrv.Conn
	srv    *Server
	id     uint64
	remote string

	mu         sync.Mutex
	pending    bool // an unfinished command line has been read
	dead       bool // timed out mid-line: closed, nothing more may run
	closeAfter bool // close once the next reply is written
	started    bool // "session start" has been logged
	user       string
	delivered  int
	authFails  int
	closed     bool

	// STARTTLS (tlsterm.go).
	tlsState int
	tlsErr   error
	outer    *tls.Conn // the client's session, terminated here
	inner    *tls.Conn // the client end of go-smtp's in-memory session
	pipe     *pipe

	// Following the plaintext stream.
	rbuf      []byte
	out       []byte // ready for go-smtp
	held      []byte // a MAIL or BDAT line not yet complete
	passing   bool   // the rest of the current line goes through unheld
	rerr      error  // read error to return once out is drained
	mode      int
	chunkLeft int64
	dataLine  []byte
	// Command lines passed on and final reply lines written: go-smtp
	// answers each command line with one reply, so the reply to DATA is
	// the dataAt-th.
	sent, replied, dataAt int
	waiting               []byte // read after DATA, before its reply
	head                  []byte // the start of the command line being passed
}

var (
	startTLSReply = []byte("220 2.0.0 Ready to start TLS")
	dataReply     = []byte("354 ")
)

// Modes of the plaintext client stream, as far as the conn follows it.
const (
	modeCommand  = iota // command lines
	modeData            // a DATA message, until a line "."
	modeChunk           // a BDAT chunk of chunkLeft bytes
	modeDataWait        // DATA sent, its reply not yet: what follows is taken for the message
)

// maxHeld bounds a command line held back for inspection; a longer one is
// passed on as it is (go-smtp rejects it).
const maxHeld = 4096

// Read gives go-smtp the client's bytes. It follows the plaintext stream
// (commands, DATA, BDAT chunks), before STARTTLS and after it (see
// tlsterm.go), and holds back a MAIL or BDAT command line until it is
// complete, to correct what go-smtp v0.25.1 gets wrong: it parses SIZE=
// and the BDAT size as 32-bit numbers and answers a larger one with 501
// (RFC 1870 and 3030 want 552), and after a BDAT it could not parse it
// takes the chunk for commands. A SIZE beyond 32 bits is passed on as
// 4294967295, which go-smtp then refuses with 552; a BDAT beyond 32 bits is
// passed on as "BDAT 4294967295", go-smtp answers 552, and the connection
// closes after that reply (the chunk cannot be framed).
func (c *conn) Read(b []byte) (int, error) {
	for {
		c.mu.Lock()
		state := c.tlsState
		switch state {
		case tlsStarting:
			c.mu.Unlock()
			if err := c.startTLS(); err != nil {
				c.mu.Lock()
				c.tlsState, c.tlsErr = tlsFailed, err
				c.mu.Unlock()
				c.Conn.Close()
				return 0, err
			}
			continue
		case tlsHandshake:
			p := c.pipe
			c.mu.Unlock()
			n, done, err := p.serverRead(b)
			if done || err != nil {
				c.mu.Lock()
				if done {
					c.tlsState = tlsUp
				} else {
					c.tlsState, c.tlsErr = tlsFailed, err
				}
				c.mu.Unlock()
				if done {
					continue
				}
			}
			return n, err
		case tlsFailed:
			err := c.tlsErr
			c.mu.Unlock()
			return 0, err
		case tlsUp:
			// go-smtp reads inner records: the corrected plaintext,
			// encrypted.
			if n, _, _ := c.pipe.serverRead(b); n > 0 {
				c.mu.Unlock()
				return n, nil
			}
			if len(c.out) > 0 {
				out := c.out
				c.out = nil
				c.mu.Unlock()
				if err := c.encrypt(out); err != nil {
					return 0, err
				}
				continue
			}
		default:
			if len(c.out) > 0 {
				n := copy(b, c.out)
				c.out = c.out[n:]
				c.mu.Unlock()
				return n, nil
			}
		}
		if c.rerr != nil {
			err := c.rerr
			c.rerr = nil
			c.mu.Unlock()
			return 0, err
		}
		c.mu.Unlock()
		if c.rbuf == nil {
			c.rbuf = make([]byte, 4096)
		}
		var src net.Conn = c.Conn
		if state == tlsUp {
			src = c.outer
		}
		n, err := src.Read(c.rbuf)
		c.mu.Lock()
		c.feed(c.rbuf[:n])
		if err != nil {
			c.rerr = err
		}
		drip := err != nil && isTimeout(err) && c.pending && !c.dead
		if drip {
			c.dead = true
			c.out, c.held = nil, nil
		}
		c.mu.Unlock()
		if drip {
			c.dripped()
		}
	}
}

func (c *conn) dripped() {
	c.srv.opts.Logger.Printf("smtp[%d] %s: read timeout in the middle of a command line; closing without running it", c.id, c.remote)
	c.Conn.Close()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// feed follows the plaintext stream and moves what go-smtp may have to
// c.out; c.mu is held. c.pending tells whether a line (or chunk) is
// unfinished.
func (c *conn) feed(p []byte) {
	for len(p) > 0 {
		switch c.mode {
		case modeChunk:
			k := min(int64(len(p)), c.chunkLeft)
			c.out = append(c.out, p[:k]...)
			c.chunkLeft -= k
			p = p[k:]
			c.pending = c.chunkLeft > 0
			if c.chunkLeft == 0 {
				c.mode = modeCommand
			}
		case modeDataWait:
			// Held until the reply to DATA says whether a message or
			// commands follow. go-smtp reads nothing more before it
			// has answered DATA, so this is at most one read.
			c.waiting = append(c.waiting, p...)
			c.pending = c.waiting[len(c.waiting)-1] != '\n'
			return
		case modeData:
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				c.dataLine = appendPrefix(c.dataLine, p)
				c.out = append(c.out, p...)
				c.pending = true
				return
			}
			c.dataLine = appendPrefix(c.dataLine, p[:i+1])
			c.out = append(c.out, p[:i+1]...)
			p = p[i+1:]
			if string(c.dataLine) == ".\r\n" {
				c.mode = modeCommand
				c.sent++ // the message gets one reply, as a command does
			}
			c.dataLine = c.dataLine[:0]
			c.pending = false
		default:
			i := bytes.IndexByte(p, '\n')
			line := p
			if i >= 0 {
				line = p[:i+1]
			}
			p = p[len(line):]
			complete := i >= 0
			if c.passing || (len(c.held) == 0 && !inspect(line)) {
				// Not MAIL or BDAT: pass it on at once, keeping its first
				// bytes to recognise DATA.
				if !c.passing {
					c.head = c.head[:0]
				}
				c.head = appendHead(c.head, line)
				c.out = append(c.out, line...)
				c.pending, c.passing = !complete, !complete
				if !complete {
					continue
				}
				c.sent++
				if bytes.EqualFold(bytes.TrimRight(c.head, " \t\r\n"), []byte("DATA")) {
					// What a client sends right behind DATA, without
					// waiting for 354 (RFC 2920 wants DATA to end a
					// pipelined group), may be the message or commands:
					// the reply decides.
					c.mode, c.dataAt = modeDataWait, c.sent
					c.dataLine = c.dataLine[:0]
				}
				continue
			}
			c.held = append(c.held, line...)
			c.pending = true
			if !complete {
				if len(c.held) > maxHeld || !inspect(c.held) {
					c.out = append(c.out, c.held...)
					c.held = c.held[:0]
					c.passing = true
				}
				continue
			}
			c.sent++
			c.out = append(c.out, c.command(c.held)...)
			c.held = c.held[:0]
			c.pending = false
		}
	}
}

// appendHead keeps the first 7 bytes of a command line, and one more to
// tell "DATA\r\n" from a longer line.
func appendHead(dst, p []byte) []byte {
	if n := 8 - len(dst); n > 0 {
		dst = append(dst, p[:min(n, len(p))]...)
	}
	return dst
}

// appendPrefix keeps the first three bytes of a DATA line: enough to see
// the terminating ".\r\n".
func appendPrefix(dst, p []byte) []byte {
	if n := 4 - len(dst); n > 0 {
		dst = append(dst, p[:min(n, len(p))]...)
	}
	return dst
}

// inspect reports whether a (partial) command line may be MAIL or BDAT.
func inspect(line []byte) bool {
	for _, verb := range []string{"MAIL", "BDAT"} {
		n := min(len(line), len(verb))
		if bytes.EqualFold(line[:n], []byte(verb[:n])) {
			return true
		}
	}
	return false
}

const max32 = "4294967295"

// command corrects one complete MAIL or BDAT line; c.mu is held.
func (c *conn) command(line []byte) []byte {
	body := bytes.TrimRight(line, "\r\n")
	end := line[len(body):]
	verb, arg, _ := bytes.Cut(body, []byte(" "))
	switch {
	case bytes.EqualFold(verb, []byte("MAIL")):
		fields := bytes.Split(arg, []byte(" "))
		changed := false
		for i, f := range fields {
			k, v, ok := bytes.Cut(f, []byte("="))
			if ok && bytes.EqualFold(k, []byte("SIZE")) && over32(v) {
				fields[i] = append(append(append([]byte{}, k...), '='), max32...)
				changed = true
			}
		}
		if changed {
			out := append(append([]byte{}, verb...), ' ')
			out = append(out, bytes.Join(fields, []byte(" "))...)
			return append(out, end...)
		}
	case bytes.EqualFold(verb, []byte("BDAT")):
		args := strings.Fields(string(arg))
		if len(args) == 0 || len(args) > 2 || (len(args) == 2 && !strings.EqualFold(args[1], "LAST")) {
			return line // go-smtp answers 501 and reads no chunk
		}
		if over32([]byte(args[0])) {
			c.closeAfter = true
			args[0] = max32
			return append([]byte("BDAT "+strings.Join(args, " ")), end...)
		}
		if n, err := strconv.ParseUint(args[0], 10, 32); err == nil {
			c.mode, c.chunkLeft = modeChunk, int64(n)
		}
	}
	return line
}

// over32 reports a run of digits too large for 32 bits.
func over32(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	for _, ch := range v {
		if ch < '0' || ch > '9' {
			return false
		}
	}
	_, err := strconv.ParseUint(string(v), 10, 32)
	return err != nil
}

func (c *conn) Write(b []byte) (int, error) {
	c.mu.Lock()
	switch c.tlsState {
	case tlsNone:
		if bytes.HasPrefix(b, startTLSReply) {
			c.tlsState = tlsStarting
			c.discard()
		} else {
			c.countReplies(b)
			b = enhanceCodes(b)
		}
	case tlsStarting, tlsFailed:
		// go-smtp's "550 Handshake error" after a failed handshake: the
		// client is in TLS, the connection is over.
		err := c.tlsErr
		c.mu.Unlock()
		if err == nil {
			err = net.ErrClosed
		}
		return 0, err
	case tlsHandshake:
		p := c.pipe
		c.mu.Unlock()
		p.serverWrite(b)
		return len(b), nil
	case tlsUp:
		c.mu.Unlock()
		plain, err := c.decrypt(b)
		if err != nil {
			return 0, err
		}
		if len(plain) == 0 {
			return len(b), nil
		}
		c.mu.Lock()
		c.countReplies(plain)
		plain = enhanceCodes(plain)
		after := c.closeAfter
		c.mu.Unlock()
		_, err = c.outer.Write(plain)
		if after {
			c.Conn.Close()
		}
		if err != nil {
			return 0, err
		}
		return len(b), nil
	}
	after := c.closeAfter
	c.mu.Unlock()
	n, err := c.Conn.Write(b)
	if after {
		c.Conn.Close()
	}
	return n, err
}

// discard drops what the client sent behind STARTTLS and go-smtp has not
// read, and starts following the stream afresh; c.mu is held.
func (c *conn) discard() {
	c.out, c.held, c.waiting, c.rerr = nil, nil, nil, nil
	c.passing, c.pending = false, false
	c.mode = modeCommand
	c.head, c.dataLine = c.head[:0], c.dataLine[:0]
	// go-smtp answers each command after the upgrade with one reply, as
	// before it; the counts start again.
	c.sent, c.replied, c.dataAt = 0, 0, 0
}

// enhancedCodes are go-smtp v0.25.1's fixed success replies, which it
// sends with the generic enhanced code 2.0.0, and the RFC 3463 code real
// MTAs (Postfix, Exim, Sendmail) send for them: 2.1.0 for an accepted
// sender, 2.1.5 for a valid recipient, 2.7.0 for a successful AUTH
// (RFC 4954). go-smtp's Session can only fail MAIL, RCPT and AUTH with
// its own code, not succeed with one, so the code is set here, on the
// plaintext stream; the replacement keeps the line's length.
var enhancedCodes = []struct {
	prefix []byte
	code   string
}{
	{[]byte("250 2.0.0 Roger, accepting mail from <"), "2.1.0"},
	{[]byte("250 2.0.0 I'll make sure <"), "2.1.5"},
	{[]byte("235 2.0.0 Authentication succeeded"), "2.7.0"},
}

// enhanceCodes sets the enhanced code of go-smtp's success replies to
// MAIL, RCPT and AUTH in b (one or more reply lines), copying b when it
// changes anything.
func enhanceCodes(b []byte) []byte {
	copied := false
	for off := 0; off < len(b); {
		line := b[off:]
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line = line[:i+1]
		}
		for _, e := range enhancedCodes {
			if bytes.HasPrefix(line, e.prefix) {
				if !copied {
					b, copied = bytes.Clone(b), true
				}
				copy(b[off+4:off+9], e.code)
				break
			}
		}
		off += len(line)
	}
	return b
}

// countReplies follows the server's final reply lines; the reply to DATA
// decides whether a message follows (354) or commands again. c.mu is held.
func (c *conn) countReplies(b []byte) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i+1], b[i+1:]
		} else {
			b = nil
		}
		if len(line) >= 4 && line[3] == '-' {
			continue // not the last line of a reply
		}
		if c.replied >= c.sent {
			continue // the greeting, or a reply to no command
		}
		c.replied++
		if c.mode == modeDataWait && c.replied == c.dataAt {
			if bytes.HasPrefix(line, dataReply) {
				c.mode = modeData
			} else {
				c.mode = modeCommand // DATA refused: commands follow
			}
			w := c.waiting
			c.waiting = nil
			c.feed(w)
		}
	}
}

// isDead reports whether the connection timed out mid-line: go-smtp may
// still hand the fragment to the Session, which must not act on it.
func (c *conn) isDead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead
}

// Close logs the end of the connection (once) and closes it.
func (c *conn) Close() error {
	c.mu.Lock()
	log := c.started && !c.closed
	c.closed = true
	user, delivered := c.user, c.delivered
	outer, p := c.outer, c.pipe
	c.mu.Unlock()
	if log {
		c.srv.opts.Logger.Printf("smtp[%d] %s: session end user=%q delivered=%d", c.id, c.remote, user, delivered)
	}
	if p != nil {
		p.Close()
	}
	if outer != nil {
		outer.Close() // close_notify to the client, then the socket
	}
	return c.Conn.Close()
}

// listener wraps the tracker's listener so go-smtp gets *conn values.
type listener struct {
	net.Listener
	srv *Server
}

func (l listener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := nc.(*netsrv.Conn)
	c := &conn{Conn: tc, srv: l.srv, id: l.srv.seq.Add(1), remote: nc.RemoteAddr().String()}
	tc.Data = c
	return c, nil
}
