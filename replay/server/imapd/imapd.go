// Package imapd is the built-in IMAP server over a mailstore.Store.
//
// It speaks IMAP4rev1 (RFC 3501) and IMAP4rev2 (RFC 9051) with LITERAL+,
// SASL-IR, ID, ENABLE, IDLE, NAMESPACE, UIDPLUS, MOVE, UNSELECT, CHILDREN,
// SPECIAL-USE, LIST-EXTENDED (basic selection and return options),
// LIST-STATUS, ESEARCH (SEARCH RETURN), STATUS=SIZE and STARTTLS.
//
// Every command is read whole, literals included, into a bounded buffer
// (MaxLiteralBytes per literal, MaxLineLength per line) and then parsed; a
// command is handled by one method. The selected mailbox is a view: the
// sequence-number-to-UID map this session has announced. Changes made by
// other sessions (SMTP deliveries, POP3 deletions, other IMAP clients)
// reach the view through a mailstore.Watcher and are announced as EXISTS,
// EXPUNGE and FETCH FLAGS after commands and during IDLE; EXPUNGE is held
// back during FETCH, STORE and SEARCH, as RFC 9051 7.5.1 requires.
package imapd

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mailtap/mailtap/decode/imap"
	"github.com/mailtap/mailtap/replay/server/internal/netsrv"
	"github.com/mailtap/mailtap/replay/server/mailstore"
)

// Defaults for zero Options fields.
const (
	DefaultMaxLineLength   = 8192
	DefaultMaxLiteralBytes = 32 << 20
	DefaultMaxBadCommands  = 10
	DefaultReadTimeout     = 30 * time.Minute // RFC 9051 5.4 autologout minimum
	DefaultWriteTimeout    = time.Minute
	DefaultIdleTimeout     = 30 * time.Minute
)

// Options configures a Server. Store is the only required field.
type Options struct {
	Store     *mailstore.Store
	Hostname  string      // "" means "localhost"
	TLSConfig *tls.Config // enables STARTTLS
	// RequireTLSForAuth advertises LOGINDISABLED and refuses LOGIN and
	// AUTHENTICATE before STARTTLS.
	RequireTLSForAuth bool
	Clock             func() time.Time // nil means time.Now
	Logger            *log.Logger      // nil: discard
	MaxLineLength     int
	// MaxLiteralBytes bounds one literal, and so APPEND (APPENDLIMIT).
	MaxLiteralBytes int64
	MaxBadCommands  int
	ReadTimeout     time.Duration
	WriteTimeout    time.Duration
	IdleTimeout     time.Duration
	// MaxConns and MaxConnsPerIP limit the open connections, in all and
	// per client address (0: no limit); one over gets "* BYE" at once.
	MaxConns, MaxConnsPerIP int
	// Throttle delays every failed login and keeps a failure budget per
	// client address (shared with the other protocols when the same value
	// is given to them); nil means a private one with the defaults.
	Throttle *netsrv.AuthThrottle
	// Debug, when not nil, receives the raw transcript of every session.
	Debug io.Writer
}

// Server is an IMAP server.
type Server struct {
	opts    Options
	tracker netsrv.Tracker
	seq     atomic.Uint64
}

// New returns a server; call Serve with a listener.
func New(o *Options) *Server {
	s := &Server{opts: *o}
	netsrv.Defaults(&s.opts.Hostname, &s.opts.Clock, &s.opts.Logger)
	netsrv.Default(&s.opts.MaxLineLength, DefaultMaxLineLength)
	netsrv.Default(&s.opts.MaxLiteralBytes, DefaultMaxLiteralBytes)
	netsrv.Default(&s.opts.MaxBadCommands, DefaultMaxBadCommands)
	netsrv.Default(&s.opts.ReadTimeout, DefaultReadTimeout)
	netsrv.Default(&s.opts.WriteTimeout, DefaultWriteTimeout)
	netsrv.Default(&s.opts.IdleTimeout, DefaultIdleTimeout)
	s.tracker.MaxConns, s.tracker.MaxConnsPerIP = s.opts.MaxConns, s.opts.MaxConnsPerIP
	s.tracker.Busy = "* BYE [UNAVAILABLE] Too many connections\r\n"
	s.tracker.Logger = s.opts.Logger
	if s.opts.Throttle == nil {
		s.opts.Throttle = &netsrv.AuthThrottle{}
	}
	return s
}

// Serve accepts connections on l until Close; it returns nil after Close.
func (s *Server) Serve(l net.Listener) error { return s.tracker.Serve(l, s.handle) }

// Close stops the listeners, tells every session "* BYE" (within a second)
// and waits for them.
func (s *Server) Close() error { return s.tracker.Close() }

type connState int

const (
	stateNotAuthenticated connState = iota // initial state; must be zero
	stateAuthenticated
	stateSelected
	stateLogout
)

func (s connState) String() string {
	return [...]string{"not authenticated", "authenticated", "selected", "logout"}[s]
}

type conn struct {
	srv      *Server
	id       uint64
	nc       net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	remote   string
	state    connState
	tls      bool
	user     string
	bad      int
	rev2     bool // IMAP4rev2 enabled
	utf8     bool // UTF8=ACCEPT enabled
	sel      *view
	commands int
}

// statusError is a tagged NO or BAD reply produced by a handler.
type statusError struct {
	kind string // "NO" or "BAD"
	code string // response code without brackets, or ""
	text string
}

func (e *statusError) Error() string { return e.kind + " " + e.text }

func no(code, format string, args ...any) error {
	return &statusError{"NO", code, fmt.Sprintf(format, args...)}
}

func bad(format string, args ...any) error {
	return &statusError{"BAD", "", fmt.Sprintf(format, args...)}
}

// errLogout ends the session after the reply.
var errLogout = errors.New("logout")

func (s *Server) handle(nc net.Conn) {
	c := &conn{srv: s, id: s.seq.Add(1), remote: nc.RemoteAddr().String()}
	_, c.tls = nc.(*tls.Conn)
	c.setIO(nc)
	s.opts.Logger.Printf("imap[%d] %s: session start", c.id, c.remote)
	defer func() {
		if v := recover(); v != nil {
			s.opts.Logger.Printf("imap[%d] panic: %v", c.id, v)
		}
		if c.sel != nil {
			c.sel.close()
		}
		s.opts.Logger.Printf("imap[%d] %s: session end user=%q commands=%d", c.id, c.remote, c.user, c.commands)
	}()
	c.untagged("OK [CAPABILITY " + c.capabilities() + "] " + s.opts.Hostname + " IMAP server ready")
	c.flush()
	for c.state != stateLogout {
		if err := c.serveCommand(); err != nil {
			if s.tracker.Closing() && !errors.Is(err, errLogout) {
				c.untagged("BYE Server shutting down")
				c.flush()
				return
			}
			if !errors.Is(err, errLogout) && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.opts.Logger.Printf("imap[%d] %s: %v", c.id, c.remote, err)
			}
			c.flush()
			return
		}
		if c.br.Buffered() == 0 {
			if err := c.flush(); err != nil {
				return
			}
		}
	}
	c.flush()
}

func (c *conn) setIO(nc net.Conn) {
	var r io.Reader = nc
	var w io.Writer = nc
	if d := c.srv.opts.Debug; d != nil {
		r = io.TeeReader(nc, d)
		w = io.MultiWriter(nc, d)
	}
	c.nc = nc
	c.br = bufio.NewReader(r)
	c.bw = bufio.NewWriter(w)
}

func (c *conn) flush() error {
	c.nc.SetWriteDeadline(time.Now().Add(c.srv.opts.WriteTimeout))
	return c.bw.Flush()
}

func (c *conn) untagged(s string) {
	c.bw.WriteString("* ")
	c.bw.WriteString(s)
	c.bw.WriteString("\r\n")
}

func (c *conn) readLine() ([]byte, error) {
	c.nc.SetReadDeadline(time.Now().Add(c.srv.opts.ReadTimeout))
	return netsrv.ReadLine(c.br, c.srv.opts.MaxLineLength)
}

// readCommand reads one command with its literals; the result is the wire
// form without the final CRLF. A non-nil reply error means the command was
// refused before it was complete (its tag is returned with it).
func (c *conn) readCommand() (cmd []byte, tag string, reply error, err error) {
	var buf []byte
	total := int64(0)
	for {
		line, err := c.readLine()
		if errors.Is(err, netsrv.ErrLineTooLong) {
			return nil, "*", bad("Line too long"), nil
		}
		if err != nil {
			return nil, "", nil, err
		}
		buf = append(buf, line...)
		if tag == "" {
			tag, _, _ = strings.Cut(string(buf), " ")
		}
		// The decoder's rule for what a literal is ({n}, {n+}, {n-},
		// ~{n}), so that the server and mailtap's reading of a capture
		// agree on where a command ends.
		m, ok := imap.ParseLiteralSuffix(line)
		if !ok {
			return buf, tag, nil, nil
		}
		n, nonSync := m.Size, m.NonSync
		if m.Invalid { // beyond 32 bits
			n = c.srv.opts.MaxLiteralBytes + 1
		}
		total += n
		if n > c.srv.opts.MaxLiteralBytes || total > c.srv.opts.MaxLiteralBytes+int64(c.srv.opts.MaxLineLength) {
			if nonSync {
				// The bytes are on their way and cannot be told apart from
				// commands: give up on the connection (RFC 7888 4).
				c.untagged("BYE [TOOBIG] Literal too large")
				return nil, "", nil, errLogout
			}
			return nil, tag, no("TOOBIG", "Literal too large"), nil
		}
		if !nonSync {
			c.bw.WriteString("+ Ready for literal data\r\n")
			if err := c.flush(); err != nil {
				return nil, "", nil, err
			}
		}
		buf = append(buf, "\r\n"...)
		// Stream the literal: the buffer grows with the bytes that
		// arrive, never by what the client announced, so "{30000000}"
		// followed by silence costs nothing (as go-imap reads literals
		// through an io.LimitReader).
		c.nc.SetReadDeadline(time.Now().Add(c.srv.opts.ReadTimeout))
		w := bytes.NewBuffer(buf)
		got, err := io.Copy(w, io.LimitReader(c.br, n))
		buf = w.Bytes()
		if err != nil {
			return nil, "", nil, err
		}
		if got < n {
			return nil, "", nil, io.ErrUnexpectedEOF
		}
	}
}

func (c *conn) serveCommand() error {
	raw, tag, reply, err := c.readCommand()
	if err != nil {
		return err
	}
	if reply != nil {
		return c.finish(tag, "", reply)
	}
	if len(raw) == 0 {
		return c.finish("*", "", bad("Empty command"))
	}
	p := &parser{b: raw}
	tag, ok := p.atomWith("")
	if !ok || tag == "" || !p.sp() {
		return c.finish("*", "", bad("Missing tag"))
	}
	name, ok := p.atom()
	if !ok {
		return c.finish(tag, "", bad("Missing command"))
	}
	name = strings.ToUpper(name)
	uid := false
	if name == "UID" {
		uid = true
		if !p.sp() {
			return c.finish(tag, name, bad("Missing command after UID"))
		}
		sub, _ := p.atom()
		name = strings.ToUpper(sub)
	}
	c.commands++
	err = c.dispatch(tag, name, uid, p)
	if uid {
		name = "UID " + name
	}
	return c.finish(tag, name, err)
}

// finish writes the tagged reply for err (nil means OK) and counts bad
// commands. It returns a non-nil error when the session must end.
func (c *conn) finish(tag, name string, err error) error {
	var se *statusError
	var pe *syntaxError
	switch {
	case err == nil:
		c.bw.WriteString(tag + " OK " + strings.TrimSpace(name+" completed") + "\r\n")
		return nil
	case errors.Is(err, errLogout):
		if tag != "" {
			c.bw.WriteString(tag + " OK " + name + " completed\r\n")
		}
		return errLogout
	case errors.As(err, &pe):
		se = &statusError{"BAD", "", "Syntax error: " + pe.msg}
	case errors.As(err, &se):
	case errors.Is(err, errDone):
		return nil // the handler already wrote the tagged reply
	default:
		return err // I/O
	}
	line := tag + " " + se.kind + " "
	if se.code != "" {
		line += "[" + se.code + "] "
	}
	c.bw.WriteString(line + se.text + "\r\n")
	if se.kind == "BAD" || se.code == "AUTHENTICATIONFAILED" {
		c.bad++
		if c.bad >= c.srv.opts.MaxBadCommands {
			c.untagged("BYE Too many bad commands")
			return errLogout
		}
	}
	return nil
}

// errDone tells finish that the handler wrote its own tagged reply.
var errDone = errors.New("done")

func (c *conn) capabilities() string {
	caps := []string{"IMAP4rev1", "IMAP4rev2", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE",
		"NAMESPACE", "UIDPLUS", "MOVE", "UNSELECT", "CHILDREN", "SPECIAL-USE", "LIST-EXTENDED",
		"LIST-STATUS", "ESEARCH", "STATUS=SIZE", "UTF8=ACCEPT",
		fmt.Sprintf("APPENDLIMIT=%d", min(c.srv.opts.MaxLiteralBytes, 1<<32-1))}
	if c.srv.opts.TLSConfig != nil && !c.tls && c.state == stateNotAuthenticated {
		caps = append(caps, "STARTTLS")
	}
	if c.state == stateNotAuthenticated {
		if c.authAllowed() {
			caps = append(caps, "AUTH=PLAIN", "AUTH=LOGIN", "AUTH=CRAM-MD5")
		} else {
			caps = append(caps, "LOGINDISABLED")
		}
	}
	return strings.Join(caps, " ")
}

func (c *conn) authAllowed() bool { return c.tls || !c.srv.opts.RequireTLSForAuth }

func (c *conn) need(states ...connState) error {
	for _, s := range states {
		if c.state == s {
			return nil
		}
	}
	return bad("Command not valid in the %s state", c.state)
}

func (c *conn) dispatch(tag, name string, uid bool, p *parser) error {
	if uid {
		switch name {
		case "FETCH", "STORE", "COPY", "MOVE", "SEARCH", "EXPUNGE":
		default:
			return bad("Unknown UID command")
		}
	}
	switch name {
	case "CAPABILITY":
		if !p.end() {
			return p.err
		}
		c.untagged("CAPABILITY " + c.capabilities())
		return nil
	case "NOOP", "CHECK":
		if !p.end() {
			return p.err
		}
		if name == "CHECK" {
			if err := c.need(stateSelected); err != nil {
				return err
			}
		}
		c.poll(true)
		return nil
	case "LOGOUT":
		if !p.end() {
			return p.err
		}
		c.untagged("BYE Logging out")
		c.state = stateLogout
		return errLogout
	case "ID":
		return c.handleID(p)
	case "STARTTLS":
		return c.handleStartTLS(tag, p)
	case "LOGIN":
		return c.handleLogin(p)
	case "AUTHENTICATE":
		return c.handleAuthenticate(tag, p)
	}
	if c.state == stateNotAuthenticated {
		switch name {
		case "ENABLE", "SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE",
			"LIST", "LSUB", "NAMESPACE", "STATUS", "APPEND", "IDLE", "CLOSE", "UNSELECT", "EXPUNGE",
			"SEARCH", "FETCH", "STORE", "COPY", "MOVE":
			return bad("Log in first")
		}
		return bad("Unknown command %q", name)
	}
	switch name {
	case "ENABLE":
		return c.handleEnable(p)
	case "SELECT", "EXAMINE":
		return c.handleSelect(tag, name == "EXAMINE", p)
	case "CREATE":
		return c.handleCreate(p)
	case "DELETE":
		return c.handleDelete(p)
	case "RENAME":
		return c.handleRename(p)
	case "SUBSCRIBE", "UNSUBSCRIBE":
		return c.handleSubscribe(name == "SUBSCRIBE", p)
	case "LIST", "LSUB":
		return c.handleList(name == "LSUB", p)
	case "NAMESPACE":
		if !p.end() {
			return p.err
		}
		c.untagged(`NAMESPACE (("" "/")) NIL NIL`)
		return nil
	case "STATUS":
		return c.handleStatus(p)
	case "APPEND":
		return c.handleAppend(tag, p)
	case "IDLE":
		return c.handleIdle(tag, p)
	}
	if err := c.need(stateSelected); err != nil {
		switch name {
		case "CLOSE", "UNSELECT", "EXPUNGE", "SEARCH", "FETCH", "STORE", "COPY", "MOVE":
			return err
		}
		return bad("Unknown command %q", name)
	}
	switch name {
	case "CLOSE", "UNSELECT":
		return c.handleClose(name == "CLOSE", p)
	case "EXPUNGE":
		return c.handleExpunge(tag, uid, p)
	case "SEARCH":
		return c.handleSearch(tag, uid, p)
	case "FETCH":
		return c.handleFetch(uid, p)
	case "STORE":
		return c.handleStore(uid, p)
	case "COPY", "MOVE":
		return c.handleCopy(tag, uid, name == "MOVE", p)
	}
	return bad("Unknown command %q", name)
}
