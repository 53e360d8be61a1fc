// Package smtpd is the built-in SMTP server (RFC 5321) that delivers into a
// mailstore.Store.
//
// The protocol engine is github.com/emersion/go-smtp: it gives EHLO/HELO,
// PIPELINING, 8BITMIME, SMTPUTF8, SIZE, CHUNKING/BDAT,
// ENHANCEDSTATUSCODES, STARTTLS, AUTH, a strict CRLF.CRLF end of DATA,
// line and message limits, timeouts and a hang-up after repeated protocol
// errors. This package supplies the session: local delivery to the INBOX of
// known users, 550 5.1.1 for anyone else (nothing is ever relayed), AUTH
// PLAIN, LOGIN and CRAM-MD5 against the store, a Received trace header
// (RFC 5321 4.4) and a log line per session.
package smtpd

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gosasl "github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailtap/mailtap/replay/server/internal/netsrv"
	"github.com/mailtap/mailtap/replay/server/internal/sasl"
	"github.com/mailtap/mailtap/replay/server/mailstore"
)

// Defaults for zero Options fields.
const (
	DefaultMaxMessageBytes = 32 << 20
	DefaultMaxRecipients   = 100
	DefaultMaxLineLength   = 2000
	DefaultReadTimeout     = 5 * time.Minute
	DefaultWriteTimeout    = time.Minute
	DefaultMaxAuthFailures = 3
)

// Options configures a Server. Store is the only required field.
type Options struct {
	Store *mailstore.Store
	// Hostname is announced in the greeting, EHLO reply and Received header;
	// "" means "localhost".
	Hostname string
	// TLSConfig enables STARTTLS when not nil.
	TLSConfig *tls.Config
	// RequireTLSForAuth refuses AUTH before STARTTLS. By default AUTH is
	// allowed on plain connections, as a test server should.
	RequireTLSForAuth bool
	// Clock dates the Received header; nil means time.Now.
	Clock           func() time.Time
	Logger          *log.Logger // nil: discard
	MaxMessageBytes int64
	MaxRecipients   int
	MaxLineLength   int
	ReadTimeout     time.Duration
	WriteTimeout    time.Duration
	// MaxConns and MaxConnsPerIP limit the open connections, in all and
	// per client address (0: no limit); one over gets 421 at once.
	MaxConns, MaxConnsPerIP int
	// Throttle delays every failed AUTH and keeps a failure budget per
	// client address (shared with POP3 and IMAP when the same value is
	// given to them); nil means a private one with the defaults.
	Throttle *netsrv.AuthThrottle
	// MaxAuthFailures ends the connection with 421 after that many failed
	// AUTH commands; 0 means DefaultMaxAuthFailures.
	MaxAuthFailures int
	// ForbidBareNewline rejects a DATA message that has a line ending in
	// a bare LF with "521 5.5.2" and disconnects (Postfix's
	// smtpd_forbid_bare_newline); by default such a message is stored as
	// it came.
	ForbidBareNewline bool
	// Debug, when not nil, receives the raw transcript of every session.
	Debug io.Writer
}

// Server is an SMTP server.
type Server struct {
	opts    Options
	smtp    *smtp.Server
	seq     atomic.Uint64
	tracker netsrv.Tracker
}

// New returns a server; call Serve with a listener.
func New(o *Options) *Server {
	s := &Server{opts: *o}
	netsrv.Defaults(&s.opts.Hostname, &s.opts.Clock, &s.opts.Logger)
	netsrv.Default(&s.opts.MaxRecipients, DefaultMaxRecipients)
	netsrv.Default(&s.opts.MaxLineLength, DefaultMaxLineLength)
	netsrv.Default(&s.opts.MaxMessageBytes, DefaultMaxMessageBytes)
	netsrv.Default(&s.opts.ReadTimeout, DefaultReadTimeout)
	netsrv.Default(&s.opts.WriteTimeout, DefaultWriteTimeout)
	netsrv.Default(&s.opts.MaxAuthFailures, DefaultMaxAuthFailures)
	if s.opts.Throttle == nil {
		s.opts.Throttle = &netsrv.AuthThrottle{}
	}
	s.tracker.MaxConns, s.tracker.MaxConnsPerIP = s.opts.MaxConns, s.opts.MaxConnsPerIP
	s.tracker.Busy = "421 4.7.0 Too many connections, try again later\r\n"
	s.tracker.Logger = s.opts.Logger
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = s.opts.Hostname
	// go-smtp's TLS session is an in-memory one with our conn; the
	// client's is terminated in the conn (tlsterm.go).
	srv.TLSConfig = innerConfig(s.opts.TLSConfig)
	srv.AllowInsecureAuth = !s.opts.RequireTLSForAuth
	srv.MaxMessageBytes = s.opts.MaxMessageBytes
	srv.MaxRecipients = s.opts.MaxRecipients
	srv.MaxLineLength = s.opts.MaxLineLength
	srv.ReadTimeout = s.opts.ReadTimeout
	srv.WriteTimeout = s.opts.WriteTimeout
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = s.opts.Logger
	srv.Debug = s.opts.Debug
	s.smtp = srv
	return s
}

// Serve accepts connections on l until Close. It returns nil after Close.
// Accept errors such as running out of file descriptors are retried with
// a back-off (netsrv.Tracker), never returned.
func (s *Server) Serve(l net.Listener) error {
	err := s.smtp.Serve(listener{s.tracker.Listen(l), s})
	if errors.Is(err, smtp.ErrServerClosed) || s.tracker.Closing() {
		return nil
	}
	return err
}

// Close stops the listeners and ends every session: each one blocked in a
// read gets "421 4.4.2" from go-smtp (it sees a timeout); after a second
// whatever is still open is closed.
func (s *Server) Close() error {
	s.tracker.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := s.smtp.Shutdown(ctx)
	if err != nil {
		err = s.smtp.Close()
	}
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// connOf finds our conn under go-smtp's (which is a *tls.Conn after
// STARTTLS).
func connOf(c *smtp.Conn) *conn {
	nc := c.Conn()
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	if gc, ok := nc.(*conn); ok {
		return gc
	}
	return nil
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	gc := connOf(c)
	if gc == nil { // not accepted through Serve
		gc = &conn{srv: s, id: s.seq.Add(1), remote: c.Conn().RemoteAddr().String()}
	}
	sess := &session{srv: s, conn: c, c: gc, id: gc.id, remote: gc.remote}
	_, sess.tlsAtStart = c.TLSConnectionState()
	gc.mu.Lock()
	first := !gc.started
	gc.started = true
	gc.mu.Unlock()
	if first {
		s.opts.Logger.Printf("smtp[%d] %s: session start helo=%q", gc.id, gc.remote, c.Hostname())
	}
	return sess, nil
}

type session struct {
	srv        *Server
	conn       *smtp.Conn
	c          *conn
	id         uint64
	remote     string
	tlsAtStart bool

	mu        sync.Mutex
	user      string
	from      string
	size      int64    // SIZE= of MAIL FROM, 0 if none
	rcpts     []string // store user names, unique
	rcptAddrs []string // the addresses as the client gave them, one per rcpts entry
}

var _ smtp.AuthSession = (*session)(nil)

var (
	errNoUser = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
	errNoMail = &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "No valid recipients"}
	errFull   = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 2, 2}, Message: "Mailbox full"}
)

func (se *session) AuthMechanisms() []string { return sasl.Mechanisms }

// errClosing refuses whatever go-smtp still dispatches on a connection
// that timed out mid-line (the reply cannot reach anyone).
var errClosing = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Connection closed"}

var (
	errAuthBudget = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many authentication failures from your address, try again later"}
	errAuthLimit  = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many authentication failures, closing connection"}
)

func (se *session) Auth(mech string) (gosasl.Server, error) {
	if se.c.isDead() {
		return nil, errClosing
	}
	if se.srv.opts.Throttle.Blocked(netsrv.IP(se.remote)) {
		se.srv.opts.Logger.Printf("smtp[%d] %s: auth refused: too many failures from this address", se.id, se.remote)
		se.c.mu.Lock()
		se.c.closeAfter = true
		se.c.mu.Unlock()
		return nil, errAuthBudget
	}
	challenge := sasl.ChallengeID(se.id, se.srv.opts.Clock().Unix(), se.srv.opts.Hostname)
	srv := sasl.New(mech, se.srv.opts.Store, challenge, func(u string) {
		se.mu.Lock()
		se.user = u
		se.mu.Unlock()
		se.c.mu.Lock()
		se.c.user = u
		se.c.mu.Unlock()
		se.srv.opts.Logger.Printf("smtp[%d] %s: auth %s user=%q", se.id, se.remote, strings.ToUpper(mech), u)
	})
	if srv == nil {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return authServer{srv, se}, nil
}

// authServer maps our SASL errors to the SMTP replies go-smtp sends, and
// makes every failure cost the client the throttle's delay; after
// MaxAuthFailures failures the reply is 421 and the connection closes.
type authServer struct {
	s  sasl.Server
	se *session
}

func (a authServer) Next(resp []byte) ([]byte, bool, error) {
	ch, done, err := a.s.Next(resp)
	if err == nil {
		return ch, done, nil
	}
	se := a.se
	se.srv.opts.Logger.Printf("smtp[%d] %s: auth failed", se.id, se.remote)
	se.srv.opts.Throttle.Failed(netsrv.IP(se.remote))
	se.c.mu.Lock()
	se.c.authFails++
	limit := se.c.authFails >= se.srv.opts.MaxAuthFailures
	if limit {
		se.c.closeAfter = true
	}
	se.c.mu.Unlock()
	if limit {
		return nil, true, errAuthLimit
	}
	if errors.Is(err, sasl.ErrBadResponse) {
		return nil, true, &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Malformed authentication response"}
	}
	return nil, true, smtp.ErrAuthFailed
}

func (se *session) Mail(from string, opts *smtp.MailOptions) error {
	if se.c.isDead() {
		return errClosing
	}
	se.mu.Lock()
	defer se.mu.Unlock()
	se.from = from
	se.size = 0
	if opts != nil {
		se.size = opts.Size
	}
	se.rcpts, se.rcptAddrs = nil, nil
	return nil
}

// localUser maps a recipient address to a store user: the whole address if
// it is a user name, else its local part. The domain is not checked: every
// domain is "local" here, and nothing is relayed.
func (se *session) localUser(to string) (string, bool) {
	st := se.srv.opts.Store
	if st.HasUser(to) {
		return to, true
	}
	if i := strings.LastIndexByte(to, '@'); i > 0 {
		local := to[:i]
		if st.HasUser(local) {
			return local, true
		}
		if l := strings.ToLower(local); st.HasUser(l) {
			return l, true
		}
	}
	return "", false
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if se.c.isDead() {
		return errClosing
	}
	u, ok := se.localUser(to)
	if !ok {
		se.srv.opts.Logger.Printf("smtp[%d] %s: rcpt %q rejected: unknown user", se.id, se.remote, to)
		return errNoUser
	}
	se.mu.Lock()
	defer se.mu.Unlock()
	if !se.srv.opts.Store.Fits(u, se.size) {
		se.srv.opts.Logger.Printf("smtp[%d] %s: rcpt %q rejected: over quota", se.id, se.remote, to)
		return errFull
	}
	for _, r := range se.rcpts {
		if r == u {
			return nil
		}
	}
	se.rcpts = append(se.rcpts, u)
	se.rcptAddrs = append(se.rcptAddrs, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	se.mu.Lock()
	rcpts := append([]string(nil), se.rcpts...)
	addrs := append([]string(nil), se.rcptAddrs...)
	from, authed := se.from, se.user != ""
	se.mu.Unlock()
	_, bdat := r.(*io.PipeReader) // go-smtp's BDAT chunks come through a pipe
	body, err := io.ReadAll(r)
	if err != nil {
		return err // go-smtp maps ErrDataTooLarge and friends
	}
	if se.c.isDead() {
		return errClosing
	}
	if len(rcpts) == 0 {
		return errNoMail
	}
	if se.srv.opts.ForbidBareNewline && !bdat && hasBareLF(body) {
		se.srv.opts.Logger.Printf("smtp[%d] %s: bare LF in DATA: message refused, disconnecting", se.id, se.remote)
		se.c.mu.Lock()
		se.c.closeAfter = true
		se.c.mu.Unlock()
		return errBareLF
	}
	var buf bytes.Buffer
	buf.Grow(len(body) + 256)
	se.writeReceived(&buf, authed, addrs)
	buf.Write(body)
	// All or nothing: a recipient whose quota the message would pass
	// fails the message for everyone, before anyone has it.
	for _, u := range rcpts {
		if !se.srv.opts.Store.Fits(u, int64(buf.Len())) {
			se.srv.opts.Logger.Printf("smtp[%d] %s: message for %q refused: over quota", se.id, se.remote, u)
			return errFull
		}
	}
	for _, u := range rcpts {
		if _, err := se.srv.opts.Store.Deliver(u, buf.Bytes()); errors.Is(err, mailstore.ErrOverQuota) {
			return errFull
		} else if err != nil {
			se.srv.opts.Logger.Printf("smtp[%d] %s: deliver to %q: %v", se.id, se.remote, u, err)
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Local delivery failed"}
		}
	}
	se.c.mu.Lock()
	se.c.delivered++
	se.c.mu.Unlock()
	se.srv.opts.Logger.Printf("smtp[%d] %s: delivered from=%q to=%q size=%d", se.id, se.remote, from, rcpts, buf.Len())
	return nil
}

// writeReceived writes the trace header (RFC 5321 4.4). Every line after
// the first is folded with a tab (RFC 5322 2.2.3), so the "; date" can never
// begin an unfolded line; "for" names the recipient's full address as the
// client gave it, and only when there is exactly one (several would disclose
// the other recipients to each).
func (se *session) writeReceived(w *bytes.Buffer, authed bool, rcpts []string) {
	with := "ESMTP"
	if _, ok := se.conn.TLSConnectionState(); ok {
		with += "S"
	}
	if authed {
		with += "A"
	}
	ip := se.remote
	if h, _, err := net.SplitHostPort(ip); err == nil {
		ip = h
	}
	helo := se.conn.Hostname()
	if helo == "" {
		helo = "unknown"
	}
	fmt.Fprintf(w, "Received: from %s ([%s])\r\n\tby %s (mailtap) with %s id %d", helo, ip, se.srv.opts.Hostname, with, se.id)
	if len(rcpts) == 1 {
		fmt.Fprintf(w, "\r\n\tfor <%s>", rcpts[0])
	}
	fmt.Fprintf(w, "; %s\r\n", se.srv.opts.Clock().Format("Mon, 02 Jan 2006 15:04:05 -0700"))
}

func (se *session) Reset() {
	se.mu.Lock()
	defer se.mu.Unlock()
	se.from = ""
	se.rcpts, se.rcptAddrs = nil, nil
}

// Logout is called when go-smtp ends a Session: at the end of the
// connection, and after STARTTLS (a new Session follows on the same
// connection). The end of the connection is logged by conn.Close, once;
// here only the TLS upgrade is.
func (se *session) Logout() error {
	if _, isTLS := se.conn.TLSConnectionState(); isTLS && !se.tlsAtStart {
		se.srv.opts.Logger.Printf("smtp[%d] %s: STARTTLS done", se.id, se.remote)
	}
	return nil
}

var errBareLF = &smtp.SMTPError{Code: 521, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Bare <LF> received, closing connection"}

// hasBareLF reports a line that ends in LF without CR before it.
func hasBareLF(b []byte) bool {
	for i := bytes.IndexByte(b, '\n'); i >= 0; {
		if i == 0 || b[i-1] != '\r' {
			return true
		}
		j := bytes.IndexByte(b[i+1:], '\n')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}
