package smtpd

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// STARTTLS, terminated in the conn.
//
// go-smtp v0.25.1 does the upgrade itself: after "220 Ready to start TLS"
// it runs tls.Server on the net.Conn it was given, and reads and writes
// through that from then on. It has no hook above its TLS layer, so a
// conn that only passed bytes through would see records after STARTTLS
// and could not correct the commands or the replies any more.
//
// So the conn terminates the client's TLS session itself (the real
// certificate, the real configuration) and gives go-smtp a second session
// of its own, in memory: the conn is the client of that inner session.
// go-smtp keeps its whole STARTTLS state machine (the 220, its *tls.Conn
// and TLSConnectionState, the new Session, EHLO required again, STARTTLS
// no longer offered, AUTH allowed), and the conn sees the plaintext in
// both directions, as before STARTTLS.
//
// The inner handshake runs in a goroutine for its few round trips (the
// two ends of a handshake each block on the other); after it, the conn
// drives the inner client synchronously from go-smtp's own reads and
// writes, so deadlines and read timeouts act on the client's socket as
// before.

// TLS states of a conn.
const (
	tlsNone      = iota // plaintext
	tlsStarting         // go-smtp answered STARTTLS with 220
	tlsHandshake        // the client's session is up; go-smtp's is being set up
	tlsUp               // both sessions up
	tlsFailed           // a handshake failed: the connection is over
)

// innerConfig is the configuration go-smtp gets for its in-memory
// session: the server's certificate, TLS 1.3, and nothing that would send
// messages after the handshake (session tickets) or that belongs to the
// client's session (client certificates, ALPN, key logging).
func innerConfig(real *tls.Config) *tls.Config {
	if real == nil {
		return nil
	}
	c := real.Clone()
	c.GetConfigForClient = nil
	c.SessionTicketsDisabled = true
	c.MinVersion, c.MaxVersion = tls.VersionTLS13, 0
	c.ClientAuth = tls.NoClientCert
	c.VerifyConnection, c.VerifyPeerCertificate = nil, nil
	c.NextProtos = nil
	c.KeyLogWriter = nil
	return c
}

// errWouldBlock tells the inner client that no record from go-smtp is
// waiting. It is temporary, so crypto/tls keeps the session usable, as
// after a read timeout.
var errWouldBlock = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "smtpd: no TLS record from go-smtp yet" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

// pipe carries the inner session's records between the conn's inner
// client and go-smtp's tls.Server (which reads and writes the conn).
type pipe struct {
	mu         sync.Mutex
	cond       sync.Cond
	toServer   []byte // from the inner client, for go-smtp
	fromServer []byte // from go-smtp, for the inner client
	hsDone     bool   // the inner client's handshake returned
	hsErr      error
	closed     bool
	local      net.Addr
	remote     net.Addr
}

func newPipe(local, remote net.Addr) *pipe {
	p := &pipe{local: local, remote: remote}
	p.cond.L = &p.mu
	return p
}

// The client end (a net.Conn for tls.Client). During the handshake its
// reads wait for go-smtp; after it they never wait.

func (p *pipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.fromServer) == 0 {
		switch {
		case p.closed:
			return 0, io.EOF
		case p.hsDone:
			return 0, errWouldBlock
		}
		p.cond.Wait()
	}
	n := copy(b, p.fromServer)
	p.fromServer = p.fromServer[n:]
	return n, nil
}

func (p *pipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, net.ErrClosed
	}
	p.toServer = append(p.toServer, b...)
	p.cond.Broadcast()
	return len(b), nil
}

func (p *pipe) Close() error {
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	p.mu.Unlock()
	return nil
}

func (p *pipe) LocalAddr() net.Addr              { return p.remote }
func (p *pipe) RemoteAddr() net.Addr             { return p.local }
func (p *pipe) SetDeadline(time.Time) error      { return nil }
func (p *pipe) SetReadDeadline(time.Time) error  { return nil }
func (p *pipe) SetWriteDeadline(time.Time) error { return nil }

// serverRead gives go-smtp the inner client's records. While the inner
// handshake runs it waits for them; done reports that the handshake is
// over and nothing is waiting.
func (p *pipe) serverRead(b []byte) (n int, done bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.toServer) == 0 {
		switch {
		case p.closed:
			return 0, false, io.EOF
		case p.hsDone:
			return 0, p.hsErr == nil, p.hsErr
		}
		p.cond.Wait()
	}
	n = copy(b, p.toServer)
	p.toServer = p.toServer[n:]
	return n, false, nil
}

// serverWrite takes go-smtp's records for the inner client.
func (p *pipe) serverWrite(b []byte) {
	p.mu.Lock()
	p.fromServer = append(p.fromServer, b...)
	p.cond.Broadcast()
	p.mu.Unlock()
}

// startTLS runs the client's handshake on the socket, then starts the
// inner one; go-smtp's tls.Server is reading (for the inner ClientHello).
// Plaintext the client sent behind STARTTLS was dropped when the 220 was
// written (RFC 3207 5: it must be discarded, or it would be taken for
// commands sent under TLS).
func (c *conn) startTLS() error {
	outer := tls.Server(c.Conn, c.srv.opts.TLSConfig)
	if err := outer.Handshake(); err != nil {
		return err
	}
	p := newPipe(c.LocalAddr(), c.RemoteAddr())
	inner := tls.Client(p, &tls.Config{
		// The peer is go-smtp's tls.Server in this process, through
		// memory; there is nothing to verify.
		InsecureSkipVerify: true,
		ServerName:         outer.ConnectionState().ServerName,
		MinVersion:         tls.VersionTLS13,
	})
	c.mu.Lock()
	c.outer, c.inner, c.pipe = outer, inner, p
	c.tlsState = tlsHandshake
	closed := c.closed
	c.mu.Unlock()
	if closed {
		p.Close()
	}
	go func() {
		err := inner.Handshake()
		p.mu.Lock()
		p.hsDone, p.hsErr = true, err
		p.cond.Broadcast()
		p.mu.Unlock()
	}()
	return nil
}

// encrypt turns corrected plaintext for go-smtp into inner records.
func (c *conn) encrypt(b []byte) error {
	_, err := c.inner.Write(b)
	return err
}

// decrypt takes go-smtp's records and returns the plaintext in them
// (possibly none: a record may be an alert).
func (c *conn) decrypt(b []byte) ([]byte, error) {
	c.pipe.serverWrite(b)
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := c.inner.Read(buf)
		out = append(out, buf[:n]...)
		switch {
		case err == nil:
		case errors.Is(err, errWouldBlock), errors.Is(err, io.EOF):
			return out, nil // all read, or go-smtp's close_notify
		default:
			return out, err
		}
	}
}
