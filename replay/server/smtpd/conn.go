package smtpd

import (
	"bytes"
	"errors"
	"net"
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
// Session method acts on the fragment go-smtp still dispatches. Before
// STARTTLS the conn sees the plaintext and knows exactly whether a line is
// unfinished; under TLS it sees records, and treats any bytes read since
// the server's last reply as an unfinished command.
type conn struct {
	*netsrv.Conn
	srv    *Server
	id     uint64
	remote string

	mu         sync.Mutex
	pending    bool // an unfinished command line has been read
	tls        bool // STARTTLS began: reads are TLS records
	dead       bool // timed out mid-line: closed, nothing more may run
	closeAfter bool // close once the next reply is written
	started    bool // "session start" has been logged
	user       string
	delivered  int
	authFails  int
	closed     bool
}

var startTLSReply = []byte("220 2.0.0 Ready to start TLS")

func (c *conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	if n > 0 {
		if c.tls {
			c.pending = true
		} else {
			c.pending = b[n-1] != '\n'
		}
	}
	var ne net.Error
	drip := err != nil && errors.As(err, &ne) && ne.Timeout() && c.pending && !c.dead
	if drip {
		c.dead = true
	}
	c.mu.Unlock()
	if drip {
		c.srv.opts.Logger.Printf("smtp[%d] %s: read timeout in the middle of a command line; closing without running it", c.id, c.remote)
		c.Conn.Close()
	}
	return n, err
}

func (c *conn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if c.tls {
		c.pending = false
	}
	if !c.tls && bytes.HasPrefix(b, startTLSReply) {
		c.tls = true
	}
	after := c.closeAfter
	c.mu.Unlock()
	n, err := c.Conn.Write(b)
	if after {
		c.Conn.Close()
	}
	return n, err
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
	c.mu.Unlock()
	if log {
		c.srv.opts.Logger.Printf("smtp[%d] %s: session end user=%q delivered=%d", c.id, c.remote, user, delivered)
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
