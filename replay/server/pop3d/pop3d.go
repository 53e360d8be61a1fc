// Package pop3d is the built-in POP3 server over a mailstore.Store.
//
// It implements RFC 1939 (USER/PASS, APOP, STAT, LIST, UIDL, RETR, TOP,
// DELE, RSET, NOOP, QUIT), RFC 2449 (CAPA, RESP-CODES, PIPELINING,
// AUTH-RESP-CODE), RFC 2595 (STLS) and RFC 5034 (AUTH PLAIN, LOGIN,
// CRAM-MD5 with initial responses). Only the INBOX is visible. Deletions
// are committed only by QUIT; a dropped connection deletes nothing. A
// maildrop is locked by one POP3 session at a time ([IN-USE]; a login
// waits up to lockWait for the lock, so that a client that dropped its
// previous session and logs in at once does not race the server reading
// that drop). RETR marks the message \Seen, so IMAP sees what POP3 read.
package pop3d

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailtap/mailtap/replay/server/internal/netsrv"
	"github.com/mailtap/mailtap/replay/server/internal/sasl"
	"github.com/mailtap/mailtap/replay/server/mailstore"
)

// Defaults for zero Options fields.
const (
	DefaultMaxLineLength  = 2000
	DefaultMaxBadCommands = 10
	DefaultReadTimeout    = 10 * time.Minute // RFC 1939 autologout minimum
	DefaultWriteTimeout   = time.Minute
)

// Options configures a Server. Store is the only required field.
type Options struct {
	Store     *mailstore.Store
	Hostname  string      // "" means "localhost"
	TLSConfig *tls.Config // enables STLS
	// RequireTLSForAuth refuses USER, APOP and AUTH before STLS.
	RequireTLSForAuth bool
	Clock             func() time.Time // nil means time.Now
	Logger            *log.Logger      // nil: discard
	MaxLineLength     int
	MaxBadCommands    int
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	// MaxConns and MaxConnsPerIP limit the open connections, in all and
	// per client address (0: no limit); one over gets "-ERR [SYS/TEMP]".
	MaxConns, MaxConnsPerIP int
	// Throttle delays every failed login and keeps a failure budget per
	// client address (shared with the other protocols when the same value
	// is given to them); nil means a private one with the defaults.
	Throttle *netsrv.AuthThrottle
	// Debug, when not nil, receives the raw transcript of every session.
	Debug io.Writer
}

// Server is a POP3 server.
type Server struct {
	opts    Options
	tracker netsrv.Tracker
	seq     atomic.Uint64

	mu     sync.Mutex
	locked map[string]chan struct{} // maildrops in use; closed at unlock
}

// lockWait is how long a login waits for a maildrop another session holds
// before it is refused [IN-USE]. A session ends as soon as the server has
// read its client's close; replay opens the next session right after
// closing the previous one, and must not race that read.
const lockWait = 500 * time.Millisecond

// New returns a server; call Serve with a listener.
func New(o *Options) *Server {
	s := &Server{opts: *o, locked: make(map[string]chan struct{})}
	netsrv.Defaults(&s.opts.Hostname, &s.opts.Clock, &s.opts.Logger)
	netsrv.Default(&s.opts.MaxLineLength, DefaultMaxLineLength)
	netsrv.Default(&s.opts.MaxBadCommands, DefaultMaxBadCommands)
	netsrv.Default(&s.opts.ReadTimeout, DefaultReadTimeout)
	netsrv.Default(&s.opts.WriteTimeout, DefaultWriteTimeout)
	s.tracker.MaxConns, s.tracker.MaxConnsPerIP = s.opts.MaxConns, s.opts.MaxConnsPerIP
	s.tracker.Busy = "-ERR [SYS/TEMP] Too many connections\r\n"
	s.tracker.Logger = s.opts.Logger
	if s.opts.Throttle == nil {
		s.opts.Throttle = &netsrv.AuthThrottle{}
	}
	return s
}

// Serve accepts connections on l until Close; it returns nil after Close.
func (s *Server) Serve(l net.Listener) error { return s.tracker.Serve(l, s.handle) }

// Close stops the listeners, tells every session "-ERR [SYS/TEMP] Server
// shutting down" (within a second), ends it (committing nothing) and waits
// for them.
func (s *Server) Close() error { return s.tracker.Close() }

// lock takes user's maildrop, waiting up to lockWait for the session that
// holds it to end.
func (s *Server) lock(user string) bool {
	var timeout <-chan time.Time
	for {
		s.mu.Lock()
		held, ok := s.locked[user]
		if !ok {
			s.locked[user] = make(chan struct{})
			s.mu.Unlock()
			return true
		}
		s.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(lockWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-held:
		case <-timeout:
			return false
		}
	}
}

func (s *Server) unlock(user string) {
	s.mu.Lock()
	if held, ok := s.locked[user]; ok {
		close(held)
		delete(s.locked, user)
	}
	s.mu.Unlock()
}

type state int

const (
	stateAuthorization state = iota // initial state; must be zero
	stateTransaction
	stateUpdate
)

type conn struct {
	srv       *Server
	id        uint64
	nc        net.Conn
	br        *bufio.Reader
	bw        *bufio.Writer
	state     state
	tls       bool
	remote    string
	timestamp string // APOP / CRAM-MD5 challenge
	userArg   string // from USER
	user      string
	bad       int
	msgs      []mailstore.Message
	deleted   []bool
	uidv      uint32
	retrieved int
}

// errQuit ends the session after the reply has been written.
var errQuit = errors.New("quit")

func (s *Server) handle(nc net.Conn) {
	c := &conn{srv: s, id: s.seq.Add(1), nc: nc, tls: isTLS(nc)}
	c.setIO(nc)
	c.timestamp = sasl.ChallengeID(c.id, s.opts.Clock().Unix(), s.opts.Hostname)
	remote := nc.RemoteAddr().String()
	c.remote = remote
	s.opts.Logger.Printf("pop3[%d] %s: session start", c.id, remote)
	defer func() {
		if c.state == stateTransaction {
			s.unlock(c.user)
		}
		s.opts.Logger.Printf("pop3[%d] %s: session end user=%q retrieved=%d", c.id, remote, c.user, c.retrieved)
	}()
	defer func() {
		if v := recover(); v != nil {
			s.opts.Logger.Printf("pop3[%d] panic: %v", c.id, v)
		}
	}()
	c.reply(true, "", fmt.Sprintf("%s POP3 server ready %s", s.opts.Hostname, c.timestamp))
	c.flush()
	for {
		line, err := c.readLine()
		if errors.Is(err, netsrv.ErrLineTooLong) {
			err = nil
			if c.badCommand("Line too long") {
				err = errQuit
			}
		} else if err != nil {
			if s.tracker.Closing() {
				c.reply(false, "SYS/TEMP", "Server shutting down")
				c.flush()
			}
			return
		} else {
			err = c.command(string(line))
		}
		if c.br.Buffered() == 0 || err != nil {
			if ferr := c.flush(); ferr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func isTLS(nc net.Conn) bool { _, ok := nc.(*tls.Conn); return ok }

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

func (c *conn) readLine() ([]byte, error) {
	c.nc.SetReadDeadline(time.Now().Add(c.srv.opts.ReadTimeout))
	return netsrv.ReadLine(c.br, c.srv.opts.MaxLineLength)
}

func (c *conn) flush() error {
	c.nc.SetWriteDeadline(time.Now().Add(c.srv.opts.WriteTimeout))
	return c.bw.Flush()
}

// reply writes "+OK text" or "-ERR [code] text".
func (c *conn) reply(ok bool, code, text string) {
	if ok {
		c.bw.WriteString("+OK")
	} else {
		c.bw.WriteString("-ERR")
	}
	if code != "" {
		c.bw.WriteString(" [" + code + "]")
	}
	if text != "" {
		c.bw.WriteString(" " + text)
	}
	c.bw.WriteString("\r\n")
}

// badCommand answers an error that counts toward the limit; it reports
// whether the session must end.
func (c *conn) badCommand(text string) bool {
	c.bad++
	if c.bad >= c.srv.opts.MaxBadCommands {
		c.reply(false, "", "Too many bad commands, closing connection")
		c.flush()
		return true
	}
	c.reply(false, "", text)
	return false
}

func (c *conn) command(line string) error {
	verb, arg, _ := strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	args := strings.Fields(arg)
	switch verb {
	case "CAPA":
		return c.handleCapa()
	case "NOOP":
		if c.state != stateTransaction {
			return c.wrongState()
		}
		c.reply(true, "", "")
		return nil
	case "QUIT":
		return c.handleQuit()
	}
	if c.state == stateAuthorization {
		switch verb {
		case "USER":
			return c.handleUser(arg)
		case "PASS":
			return c.handlePass(arg)
		case "APOP":
			return c.handleApop(args)
		case "AUTH":
			return c.handleAuth(args)
		case "STLS":
			return c.handleStls()
		}
	} else {
		switch verb {
		case "STAT":
			return c.handleStat()
		case "LIST", "UIDL":
			return c.handleList(verb, args)
		case "RETR":
			return c.handleRetr(args)
		case "TOP":
			return c.handleTop(args)
		case "DELE":
			return c.handleDele(args)
		case "RSET":
			for i := range c.deleted {
				c.deleted[i] = false
			}
			c.reply(true, "", fmt.Sprintf("maildrop has %d messages", len(c.msgs)))
			return nil
		}
	}
	switch verb {
	case "USER", "PASS", "APOP", "AUTH", "STLS", "STAT", "LIST", "UIDL", "RETR", "TOP", "DELE", "RSET":
		return c.wrongState()
	}
	if c.badCommand("Unknown command") {
		return errQuit
	}
	return nil
}

func (c *conn) wrongState() error {
	if c.badCommand("Command not valid in this state") {
		return errQuit
	}
	return nil
}

func (c *conn) handleCapa() error {
	c.reply(true, "", "Capability list follows")
	caps := []string{"TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE", "EXPIRE NEVER", "IMPLEMENTATION mailtap"}
	if c.state == stateAuthorization {
		if c.authAllowed() {
			caps = append(caps, "USER", "SASL "+strings.Join(sasl.Mechanisms, " "))
		}
		if c.srv.opts.TLSConfig != nil && !c.tls {
			caps = append(caps, "STLS")
		}
	}
	for _, cp := range caps {
		c.bw.WriteString(cp + "\r\n")
	}
	c.bw.WriteString(".\r\n")
	return nil
}

func (c *conn) authAllowed() bool { return c.tls || !c.srv.opts.RequireTLSForAuth }

func (c *conn) handleStls() error {
	if c.srv.opts.TLSConfig == nil || c.tls {
		c.reply(false, "", "STLS not available")
		return nil
	}
	c.reply(true, "", "Begin TLS negotiation")
	if err := c.flush(); err != nil {
		return err
	}
	if c.br.Buffered() > 0 {
		// Plaintext pipelined after STLS would be an injection (RFC 2595 3.1).
		return errQuit
	}
	tc := tls.Server(c.nc, c.srv.opts.TLSConfig)
	tc.SetDeadline(time.Now().Add(c.srv.opts.ReadTimeout))
	if err := tc.Handshake(); err != nil {
		c.srv.opts.Logger.Printf("pop3[%d] tls handshake: %v", c.id, err)
		return err
	}
	tc.SetDeadline(time.Time{})
	c.setIO(tc)
	c.tls = true
	c.userArg = ""
	return nil
}

func (c *conn) handleUser(arg string) error {
	if !c.authAllowed() {
		c.reply(false, "AUTH", "Use STLS first")
		return nil
	}
	if arg == "" {
		return c.syntax()
	}
	c.userArg = arg
	c.reply(true, "", "send PASS")
	return nil
}

func (c *conn) handlePass(arg string) error {
	if c.userArg == "" {
		if c.badCommand("USER first") {
			return errQuit
		}
		return nil
	}
	user := c.userArg
	c.userArg = ""
	if c.blocked() {
		return errQuit
	}
	if !c.srv.opts.Store.Authenticate(user, arg) {
		return c.authFailed(user)
	}
	return c.login(user)
}

func (c *conn) handleApop(args []string) error {
	if len(args) != 2 {
		return c.syntax()
	}
	if !c.authAllowed() {
		c.reply(false, "AUTH", "Use STLS first")
		return nil
	}
	if c.blocked() {
		return errQuit
	}
	pass, ok := c.srv.opts.Store.Password(args[0])
	sum := md5.Sum([]byte(c.timestamp + pass))
	if !ok || !strings.EqualFold(hex.EncodeToString(sum[:]), args[1]) {
		return c.authFailed(args[0])
	}
	return c.login(args[0])
}

// blocked refuses a login from an address that has spent its failure
// budget (netsrv.AuthThrottle), even with the right password, and ends the
// session.
func (c *conn) blocked() bool {
	if !c.srv.opts.Throttle.Blocked(netsrv.IP(c.remote)) {
		return false
	}
	c.srv.opts.Logger.Printf("pop3[%d] login refused: too many failures from this address", c.id)
	c.reply(false, "SYS/TEMP", "Too many authentication failures from your address, try again later")
	return true
}

// authFailed waits the throttle's delay, then answers -ERR [AUTH]; it
// counts as a bad command.
func (c *conn) authFailed(user string) error {
	c.srv.opts.Logger.Printf("pop3[%d] auth failed user=%q", c.id, user)
	c.srv.opts.Throttle.Failed(netsrv.IP(c.remote))
	if c.badCommand("[AUTH] Authentication failed") {
		return errQuit
	}
	return nil
}

func (c *conn) handleAuth(args []string) error {
	if len(args) == 0 {
		// Not in RFC 5034, but widely used to list mechanisms.
		c.reply(true, "", "")
		for _, m := range sasl.Mechanisms {
			c.bw.WriteString(m + "\r\n")
		}
		c.bw.WriteString(".\r\n")
		return nil
	}
	if !c.authAllowed() {
		c.reply(false, "AUTH", "Use STLS first")
		return nil
	}
	if c.blocked() {
		return errQuit
	}
	var user string
	srv := sasl.New(args[0], c.srv.opts.Store, c.timestamp, func(u string) { user = u })
	if srv == nil {
		c.reply(false, "", "Unsupported mechanism")
		return nil
	}
	var resp []byte
	if len(args) > 1 {
		if args[1] == "=" {
			resp = []byte{}
		} else {
			b, err := base64.StdEncoding.DecodeString(args[1])
			if err != nil {
				return c.syntax()
			}
			resp = b
		}
	}
	for {
		challenge, done, err := srv.Next(resp)
		if err != nil {
			return c.authFailed(user)
		}
		if done {
			return c.login(user)
		}
		c.bw.WriteString("+ " + base64.StdEncoding.EncodeToString(challenge) + "\r\n")
		if err := c.flush(); err != nil {
			return err
		}
		line, err := c.readLine()
		if err != nil {
			return err
		}
		if string(line) == "*" {
			c.reply(false, "", "Authentication cancelled")
			return nil
		}
		resp, err = base64.StdEncoding.DecodeString(string(line))
		if err != nil {
			return c.syntax()
		}
	}
}

func (c *conn) login(user string) error {
	if !c.srv.lock(user) {
		c.reply(false, "IN-USE", "Maildrop already locked")
		return nil
	}
	snap, err := c.srv.opts.Store.Snapshot(user, mailstore.Inbox)
	if err != nil {
		c.srv.unlock(user)
		c.reply(false, "SYS/TEMP", "Cannot open maildrop")
		return nil
	}
	c.user, c.state = user, stateTransaction
	c.msgs, c.uidv = snap.Messages, snap.UIDValidity
	c.deleted = make([]bool, len(c.msgs))
	c.srv.opts.Logger.Printf("pop3[%d] login user=%q messages=%d", c.id, user, len(c.msgs))
	c.reply(true, "", fmt.Sprintf("Logged in, %d messages", len(c.msgs)))
	return nil
}

func (c *conn) syntax() error {
	if c.badCommand("Syntax error") {
		return errQuit
	}
	return nil
}

// msg parses a message number argument.
func (c *conn) msg(arg string) (int, bool) {
	n, err := strconv.Atoi(arg)
	if err != nil || n < 1 || n > len(c.msgs) {
		c.reply(false, "", "No such message")
		return 0, false
	}
	if c.deleted[n-1] {
		c.reply(false, "", fmt.Sprintf("Message %d already deleted", n))
		return 0, false
	}
	return n - 1, true
}

func (c *conn) handleStat() error {
	n, size := 0, int64(0)
	for i, m := range c.msgs {
		if !c.deleted[i] {
			n++
			size += m.Size
		}
	}
	c.reply(true, "", fmt.Sprintf("%d %d", n, size))
	return nil
}

// uidl is message i's unique id: the one the store was seeded with (a
// replayed capture's), when RFC 1939 7 allows it (1 to 70 characters in
// 0x21-0x7E), else UIDVALIDITY.UID.
func (c *conn) uidl(i int) string {
	if u := c.msgs[i].UIDL; validUIDL(u) {
		return u
	}
	return fmt.Sprintf("%d.%d", c.uidv, c.msgs[i].UID)
}

func validUIDL(u string) bool {
	if len(u) < 1 || len(u) > 70 {
		return false
	}
	for i := 0; i < len(u); i++ {
		if u[i] < 0x21 || u[i] > 0x7e {
			return false
		}
	}
	return true
}

func (c *conn) handleList(verb string, args []string) error {
	item := func(i int) string {
		if verb == "UIDL" {
			return fmt.Sprintf("%d %s", i+1, c.uidl(i))
		}
		return fmt.Sprintf("%d %d", i+1, c.msgs[i].Size)
	}
	if len(args) > 0 {
		if i, ok := c.msg(args[0]); ok {
			c.reply(true, "", item(i))
		}
		return nil
	}
	c.reply(true, "", "")
	for i := range c.msgs {
		if !c.deleted[i] {
			c.bw.WriteString(item(i) + "\r\n")
		}
	}
	c.bw.WriteString(".\r\n")
	return nil
}

func (c *conn) handleRetr(args []string) error {
	if len(args) != 1 {
		return c.syntax()
	}
	i, ok := c.msg(args[0])
	if !ok {
		return nil
	}
	m := c.msgs[i]
	raw, err := m.Body()
	if err != nil {
		c.reply(false, "", "message cannot be read")
		return nil
	}
	c.reply(true, "", fmt.Sprintf("%d octets", m.Size))
	writeDotStuffed(c.bw, raw, -1)
	c.retrieved++
	c.srv.opts.Store.StoreFlags(c.user, mailstore.Inbox, []uint32{m.UID}, mailstore.FlagsAdd, []string{mailstore.FlagSeen})
	return nil
}

func (c *conn) handleTop(args []string) error {
	if len(args) != 2 {
		return c.syntax()
	}
	n, err := strconv.Atoi(args[1])
	if err != nil || n < 0 {
		return c.syntax()
	}
	i, ok := c.msg(args[0])
	if !ok {
		return nil
	}
	raw, err := c.msgs[i].Body()
	if err != nil {
		c.reply(false, "", "message cannot be read")
		return nil
	}
	c.reply(true, "", "")
	writeDotStuffed(c.bw, raw, n)
	return nil
}

func (c *conn) handleDele(args []string) error {
	if len(args) != 1 {
		return c.syntax()
	}
	i, ok := c.msg(args[0])
	if !ok {
		return nil
	}
	c.deleted[i] = true
	c.reply(true, "", fmt.Sprintf("Message %d deleted", i+1))
	return nil
}

func (c *conn) handleQuit() error {
	if c.state != stateTransaction {
		c.reply(true, "", c.srv.opts.Hostname+" POP3 server signing off")
		return errQuit
	}
	c.state = stateUpdate
	var uids []uint32
	for i, d := range c.deleted {
		if d {
			uids = append(uids, c.msgs[i].UID)
		}
	}
	if err := c.srv.opts.Store.Remove(c.user, mailstore.Inbox, uids); err != nil {
		c.srv.unlock(c.user)
		c.reply(false, "SYS/TEMP", "Some deleted messages not removed")
		return errQuit
	}
	// Release the maildrop before answering, so that a client reconnecting
	// right after +OK finds it free.
	c.srv.unlock(c.user)
	c.srv.opts.Logger.Printf("pop3[%d] quit user=%q deleted=%d", c.id, c.user, len(uids))
	c.reply(true, "", fmt.Sprintf("%s POP3 server signing off (%d messages deleted)", c.srv.opts.Hostname, len(uids)))
	return errQuit
}

// writeDotStuffed writes raw as a multi-line response: CRLF line ends,
// leading dots doubled, and the terminating ".". With bodyLines >= 0 only
// the header, the blank line and that many body lines are written (TOP).
func writeDotStuffed(w *bufio.Writer, raw []byte, bodyLines int) {
	inBody := false
	n := 0
	for len(raw) > 0 {
		if inBody && bodyLines >= 0 && n >= bodyLines {
			break
		}
		var line []byte
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			line, raw = raw, nil
		}
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if inBody {
			n++
		} else if len(line) == 0 {
			inBody = true
		}
		if len(line) > 0 && line[0] == '.' {
			w.WriteByte('.')
		}
		w.Write(line)
		w.WriteString("\r\n")
	}
	w.WriteString(".\r\n")
}
