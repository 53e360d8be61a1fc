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
	// Debug, when not nil, receives the raw transcript of every session.
	Debug io.Writer
}

// Server is an SMTP server.
type Server struct {
	opts Options
	smtp *smtp.Server
	seq  atomic.Uint64
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
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = s.opts.Hostname
	srv.TLSConfig = s.opts.TLSConfig
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
func (s *Server) Serve(l net.Listener) error {
	err := s.smtp.Serve(l)
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the listeners and closes every open session.
func (s *Server) Close() error {
	err := s.smtp.Close()
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	id := s.seq.Add(1)
	sess := &session{srv: s, conn: c, id: id, remote: c.Conn().RemoteAddr().String()}
	s.opts.Logger.Printf("smtp[%d] %s: session start helo=%q", id, sess.remote, c.Hostname())
	return sess, nil
}

type session struct {
	srv    *Server
	conn   *smtp.Conn
	id     uint64
	remote string

	mu        sync.Mutex
	user      string
	from      string
	rcpts     []string // store user names, unique
	rcptAddrs []string // the addresses as the client gave them, one per rcpts entry
	delivered int
}

var _ smtp.AuthSession = (*session)(nil)

var (
	errNoUser = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
	errNoMail = &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "No valid recipients"}
)

func (se *session) AuthMechanisms() []string { return sasl.Mechanisms }

func (se *session) Auth(mech string) (gosasl.Server, error) {
	challenge := sasl.ChallengeID(se.id, se.srv.opts.Clock().Unix(), se.srv.opts.Hostname)
	srv := sasl.New(mech, se.srv.opts.Store, challenge, func(u string) {
		se.mu.Lock()
		se.user = u
		se.mu.Unlock()
		se.srv.opts.Logger.Printf("smtp[%d] %s: auth %s user=%q", se.id, se.remote, strings.ToUpper(mech), u)
	})
	if srv == nil {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return authServer{srv}, nil
}

// authServer maps our SASL errors to the SMTP replies go-smtp sends.
type authServer struct{ s sasl.Server }

func (a authServer) Next(resp []byte) ([]byte, bool, error) {
	ch, done, err := a.s.Next(resp)
	if err != nil {
		if errors.Is(err, sasl.ErrBadResponse) {
			return nil, true, &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Malformed authentication response"}
		}
		return nil, true, smtp.ErrAuthFailed
	}
	return ch, done, nil
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	se.mu.Lock()
	defer se.mu.Unlock()
	se.from = from
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
	u, ok := se.localUser(to)
	if !ok {
		se.srv.opts.Logger.Printf("smtp[%d] %s: rcpt %q rejected: unknown user", se.id, se.remote, to)
		return errNoUser
	}
	se.mu.Lock()
	defer se.mu.Unlock()
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
	body, err := io.ReadAll(r)
	if err != nil {
		return err // go-smtp maps ErrDataTooLarge and friends
	}
	if len(rcpts) == 0 {
		return errNoMail
	}
	var buf bytes.Buffer
	buf.Grow(len(body) + 256)
	se.writeReceived(&buf, authed, addrs)
	buf.Write(body)
	for _, u := range rcpts {
		if _, err := se.srv.opts.Store.Deliver(u, buf.Bytes()); err != nil {
			se.srv.opts.Logger.Printf("smtp[%d] %s: deliver to %q: %v", se.id, se.remote, u, err)
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Local delivery failed"}
		}
	}
	se.mu.Lock()
	se.delivered++
	se.mu.Unlock()
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

func (se *session) Logout() error {
	se.mu.Lock()
	defer se.mu.Unlock()
	se.srv.opts.Logger.Printf("smtp[%d] %s: session end user=%q delivered=%d", se.id, se.remote, se.user, se.delivered)
	return nil
}
