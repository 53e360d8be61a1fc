// Package server runs the built-in SMTP, POP3 and IMAP servers over one
// shared mail store: what `mailtap serve` runs, and what replay drives.
//
// The protocol servers live in smtpd, pop3d and imapd and can each run alone
// on any net.Listener; the store is mailstore. This package wires them
// together, creates the users, and makes a self-signed certificate for
// STARTTLS/STLS when none is given.
package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/mailtap/mailtap/replay/server/imapd"
	"github.com/mailtap/mailtap/replay/server/internal/certgen"
	"github.com/mailtap/mailtap/replay/server/internal/netsrv"
	"github.com/mailtap/mailtap/replay/server/mailstore"
	"github.com/mailtap/mailtap/replay/server/pop3d"
	"github.com/mailtap/mailtap/replay/server/smtpd"
)

// DeterministicTime is the clock of deterministic mode when Options.Clock
// is nil.
var DeterministicTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// Options configures a Server. The zero value serves nothing; set at least
// one address.
type Options struct {
	// Listen addresses ("127.0.0.1:2525"; port 0 picks one). An empty
	// address leaves that protocol off.
	SMTPAddr, POP3Addr, IMAPAddr string
	// Users maps user names to passwords; they get an INBOX and the
	// special-use mailboxes Drafts, Sent, Junk and Trash.
	Users map[string]string
	// TLSConfig is used for STARTTLS and STLS; nil generates a self-signed
	// certificate in memory for Hostname, localhost and 127.0.0.1.
	TLSConfig *tls.Config
	// Hostname is announced in greetings; "" means "localhost".
	Hostname string
	// Clock gives internal dates and trace times; nil means time.Now, or
	// DeterministicTime in deterministic mode.
	Clock func() time.Time
	// StoreDir keeps the store on disk; "" keeps it in memory.
	StoreDir string
	// Logger gets one line per session event; nil discards.
	Logger *log.Logger
	// MaxMessageBytes bounds a message (SMTP SIZE, IMAP APPENDLIMIT);
	// 0 means 32 MiB.
	MaxMessageBytes int64
	// Deterministic fixes the clock (unless Clock is set), makes UIDVALIDITY
	// a counter from 1 and the hostname "mailtap.test" (unless set), so
	// replays and tests see the same replies every run.
	Deterministic bool
	// RequireTLSForAuth refuses authentication before STARTTLS/STLS.
	RequireTLSForAuth bool
	// Timeouts per connection; 0 keeps each protocol's default.
	ReadTimeout, WriteTimeout time.Duration
	// MaxBadCommands ends a POP3 or IMAP session after that many errors;
	// 0 keeps the default (10). SMTP hangs up after its fourth error.
	MaxBadCommands int
	// MaxConns and MaxConnsPerIP limit each protocol's open connections,
	// in all and per client address; 0 means no limit. A connection over a
	// limit gets the protocol's "busy" reply (421, -ERR [SYS/TEMP],
	// * BYE) and is closed.
	MaxConns, MaxConnsPerIP int
	// AuthFailureDelay is how long every failed login waits before its
	// answer (Dovecot's auth_failure_delay); 0 means 2 s, negative none.
	AuthFailureDelay time.Duration
	// AuthFailuresPerIP is the failure budget of a client address, across
	// connections and protocols: once spent, logins from it are refused
	// for AuthFailureWindow. 0 means 20, negative no budget.
	AuthFailuresPerIP int
	// AuthFailureWindow is the budget's period; 0 means 10 minutes.
	AuthFailureWindow time.Duration
	// MaxAuthFailures ends an SMTP connection after that many failed
	// AUTH commands; 0 means 3. (POP3 and IMAP count failed logins as
	// bad commands, MaxBadCommands.)
	MaxAuthFailures int
	// QuotaBytes bounds the bytes of one user's messages (0: none): SMTP
	// answers 552 5.2.2, IMAP APPEND and COPY NO [OVERQUOTA].
	QuotaBytes int64
	// ForbidBareNewline makes SMTP answer a DATA message containing a
	// bare LF line end with 521 and disconnect, as Postfix's
	// smtpd_forbid_bare_newline does.
	ForbidBareNewline bool
	// Debug receives the raw transcript of every session when not nil.
	Debug io.Writer
}

// Server is the running trio of protocol servers.
type Server struct {
	opts  Options
	store *mailstore.Store
	smtp  *smtpd.Server
	pop3  *pop3d.Server
	imap  *imapd.Server

	mu     sync.Mutex
	addrs  map[string]net.Addr
	ls     []net.Listener
	wg     sync.WaitGroup
	closed bool
}

// New opens the store and creates the users; it listens on nothing yet.
func New(o Options) (*Server, error) {
	if o.Deterministic {
		if o.Clock == nil {
			o.Clock = func() time.Time { return DeterministicTime }
		}
		if o.Hostname == "" {
			o.Hostname = "mailtap.test"
		}
	}
	netsrv.Defaults(&o.Hostname, &o.Clock, &o.Logger)
	netsrv.Default(&o.MaxMessageBytes, smtpd.DefaultMaxMessageBytes)
	if o.TLSConfig == nil {
		cert, err := SelfSigned(o.Hostname, time.Now())
		if err != nil {
			return nil, err
		}
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	st, err := mailstore.New(mailstore.Options{Dir: o.StoreDir, Clock: o.Clock, Deterministic: o.Deterministic, QuotaBytes: o.QuotaBytes})
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(o.Users))
	for n := range o.Users {
		names = append(names, n)
	}
	sort.Strings(names) // deterministic UIDVALIDITY order
	for _, n := range names {
		if err := st.AddUser(n, o.Users[n]); err != nil {
			return nil, err
		}
	}
	s := &Server{opts: o, store: st, addrs: make(map[string]net.Addr)}
	throttle := &netsrv.AuthThrottle{Delay: o.AuthFailureDelay, PerIP: o.AuthFailuresPerIP, Window: o.AuthFailureWindow}
	s.smtp = smtpd.New(&smtpd.Options{Store: st, Hostname: o.Hostname, TLSConfig: o.TLSConfig,
		RequireTLSForAuth: o.RequireTLSForAuth, Clock: o.Clock, Logger: o.Logger,
		MaxMessageBytes: o.MaxMessageBytes, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		MaxConns: o.MaxConns, MaxConnsPerIP: o.MaxConnsPerIP, Throttle: throttle, MaxAuthFailures: o.MaxAuthFailures,
		ForbidBareNewline: o.ForbidBareNewline, Debug: o.Debug})
	s.pop3 = pop3d.New(&pop3d.Options{Store: st, Hostname: o.Hostname, TLSConfig: o.TLSConfig,
		RequireTLSForAuth: o.RequireTLSForAuth, Clock: o.Clock, Logger: o.Logger, MaxBadCommands: o.MaxBadCommands,
		ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		MaxConns: o.MaxConns, MaxConnsPerIP: o.MaxConnsPerIP, Throttle: throttle, Debug: o.Debug})
	s.imap = imapd.New(&imapd.Options{Store: st, Hostname: o.Hostname, TLSConfig: o.TLSConfig,
		RequireTLSForAuth: o.RequireTLSForAuth, Clock: o.Clock, Logger: o.Logger, MaxBadCommands: o.MaxBadCommands,
		MaxLiteralBytes: o.MaxMessageBytes, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		MaxConns: o.MaxConns, MaxConnsPerIP: o.MaxConnsPerIP, Throttle: throttle, Debug: o.Debug})
	return s, nil
}

// Store returns the shared mail store (to seed or inspect it).
func (s *Server) Store() *mailstore.Store { return s.store }

// Start listens on the configured addresses and serves in the background.
// On error nothing is left listening.
func (s *Server) Start() error {
	type proto struct {
		name, addr string
		serve      func(net.Listener) error
	}
	protos := []proto{
		{"smtp", s.opts.SMTPAddr, s.smtp.Serve},
		{"pop3", s.opts.POP3Addr, s.pop3.Serve},
		{"imap", s.opts.IMAPAddr, s.imap.Serve},
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("server: closed")
	}
	var ls []net.Listener
	for _, p := range protos {
		if p.addr == "" {
			continue
		}
		l, err := net.Listen("tcp", p.addr)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return fmt.Errorf("server: %s: %w", p.name, err)
		}
		ls = append(ls, l)
	}
	i := 0
	for _, p := range protos {
		if p.addr == "" {
			continue
		}
		l := ls[i]
		i++
		s.addrs[p.name] = l.Addr() // announced by the caller (mailtap serve prints it once)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := p.serve(l); err != nil {
				s.opts.Logger.Printf("%s: serve: %v", p.name, err)
			}
		}()
	}
	s.ls = append(s.ls, ls...)
	return nil
}

// Addrs returns the listening addresses by protocol: "smtp", "pop3", "imap".
func (s *Server) Addrs() map[string]net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]net.Addr, len(s.addrs))
	for k, v := range s.addrs {
		out[k] = v
	}
	return out
}

// Close stops listening, ends every session and waits for them. Committed
// changes are already durable; POP3 sessions cut off commit nothing.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ls := s.ls
	s.mu.Unlock()
	err := errors.Join(s.smtp.Close(), s.pop3.Close(), s.imap.Close())
	// Close the listeners we opened too: a protocol server whose Serve
	// goroutine had not started yet when Close came would not know them,
	// and its Serve would wait for connections for ever.
	for _, l := range ls {
		l.Close()
	}
	s.wg.Wait()
	return errors.Join(err, s.store.Close())
}

// SelfSigned makes an in-memory ECDSA certificate for host, localhost,
// 127.0.0.1 and ::1, valid from an hour before now for a year.
func SelfSigned(host string, now time.Time) (tls.Certificate, error) {
	return certgen.SelfSigned(host, now)
}
