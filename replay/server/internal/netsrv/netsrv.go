// Package netsrv holds what the SMTP, POP3 and IMAP servers share below
// the protocol: the defaults of their common options and, for POP3 and
// IMAP, the accept loop, connection tracking for a clean Close, and a
// bounded line reader.
package netsrv

import (
	"bufio"
	"errors"
	"io"
	"log"
	"net"
	"sync"
	"syscall"
	"time"
)

// Defaults fills the options every server has when they are zero: the
// hostname "" becomes "localhost", a nil clock time.Now and a nil logger
// one that discards.
func Defaults(hostname *string, clock *func() time.Time, logger **log.Logger) {
	if *hostname == "" {
		*hostname = "localhost"
	}
	if *clock == nil {
		*clock = time.Now
	}
	if *logger == nil {
		*logger = log.New(io.Discard, "", 0)
	}
}

// Default sets a limit or timeout that is zero or negative to d.
func Default[T int | int64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// ErrLineTooLong is returned by ReadLine for a line longer than the limit;
// the rest of the line has been discarded.
var ErrLineTooLong = errors.New("netsrv: line too long")

// Tracker runs accept loops and remembers listeners and connections so
// Close can stop them all and wait for the handlers.
//
// Its listener survives running out of file descriptors (EMFILE, ENFILE)
// and other transient accept errors: it backs off from 5 ms up to 1 s and
// tries again, as net/http's Server.Serve does, instead of returning. It
// can limit the connections it keeps open in all and per client IP; a
// connection over a limit is sent Busy and closed at once.
//
// Shutdown wakes every connection blocked in a read (its read deadline is
// moved into the past, and any later deadline it sets is too), so each
// session sees a timeout, can tell from Closing that the server is going
// away, and says goodbye in its own protocol before it ends.
type Tracker struct {
	// MaxConns and MaxConnsPerIP limit the open connections (0: no limit).
	MaxConns, MaxConnsPerIP int
	// Busy is written to a connection refused by a limit, e.g.
	// "-ERR [SYS/TEMP] Too many connections\r\n".
	Busy string
	// Logger receives accept errors and refusals; nil discards them.
	Logger *log.Logger
	// Grace is how long Close waits for sessions to say goodbye before it
	// closes their connections; 0 means one second.
	Grace time.Duration

	mu      sync.Mutex
	ls      map[net.Listener]struct{}
	conns   map[*Conn]struct{}
	perIP   map[string]int
	closing bool
	wg      sync.WaitGroup
}

// Conn is a connection accepted through a Tracker's listener.
type Conn struct {
	net.Conn
	t    *Tracker
	ip   string
	once sync.Once
	// Data is for the protocol server's own per-connection state.
	Data any
}

// SetReadDeadline sets the read deadline, unless the tracker is shutting
// down: then the deadline stays in the past so that no read can block.
func (c *Conn) SetReadDeadline(d time.Time) error {
	c.t.mu.Lock()
	defer c.t.mu.Unlock()
	if c.t.closing {
		d = past
	}
	return c.Conn.SetReadDeadline(d)
}

// SetDeadline sets both deadlines, with SetReadDeadline's rule.
func (c *Conn) SetDeadline(d time.Time) error {
	err := c.Conn.SetWriteDeadline(d)
	return errors.Join(err, c.SetReadDeadline(d))
}

// Close closes the connection and releases its place in the limits.
func (c *Conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.t.mu.Lock()
		delete(c.t.conns, c)
		if c.t.perIP[c.ip]--; c.t.perIP[c.ip] <= 0 {
			delete(c.t.perIP, c.ip)
		}
		c.t.mu.Unlock()
	})
	return err
}

var past = time.Unix(1, 0)

func (t *Tracker) init() {
	if t.ls == nil {
		t.ls = make(map[net.Listener]struct{})
		t.conns = make(map[*Conn]struct{})
		t.perIP = make(map[string]int)
	}
	if t.Logger == nil {
		t.Logger = log.New(io.Discard, "", 0)
	}
}

// Closing reports whether Shutdown or Close has been called.
func (t *Tracker) Closing() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closing
}

type listener struct {
	net.Listener
	t *Tracker
}

// Listen returns l wrapped: Accept retries transient errors, applies the
// limits and returns *Conn values the tracker knows.
func (t *Tracker) Listen(l net.Listener) net.Listener {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.init()
	if t.closing {
		l.Close()
	} else {
		t.ls[l] = struct{}{}
	}
	return &listener{l, t}
}

func (l *listener) Close() error {
	l.t.mu.Lock()
	delete(l.t.ls, l.Listener)
	l.t.mu.Unlock()
	return l.Listener.Close()
}

// retryable reports accept errors that pass: out of descriptors or
// buffers, a connection aborted before it was accepted, a timeout.
func retryable(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EAGAIN} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (l *listener) Accept() (net.Conn, error) {
	t := l.t
	var delay time.Duration
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			if t.Closing() {
				return nil, net.ErrClosed
			}
			if !retryable(err) {
				return nil, err
			}
			if delay == 0 {
				t.Logger.Printf("accept on %s: %v; retrying with back-off", l.Addr(), err)
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			time.Sleep(delay)
			continue
		}
		if delay != 0 {
			t.Logger.Printf("accept on %s: working again", l.Addr())
		}
		delay = 0
		ip := nc.RemoteAddr().String()
		if h, _, err := net.SplitHostPort(ip); err == nil {
			ip = h
		}
		t.mu.Lock()
		if t.closing {
			t.mu.Unlock()
			nc.Close()
			return nil, net.ErrClosed
		}
		if (t.MaxConns > 0 && len(t.conns) >= t.MaxConns) || (t.MaxConnsPerIP > 0 && t.perIP[ip] >= t.MaxConnsPerIP) {
			all, mine := len(t.conns), t.perIP[ip]
			t.mu.Unlock()
			t.Logger.Printf("%s: refused: too many connections (%d open, %d from this address)", nc.RemoteAddr(), all, mine)
			nc.SetWriteDeadline(time.Now().Add(time.Second))
			io.WriteString(nc, t.Busy)
			nc.Close()
			continue
		}
		c := &Conn{Conn: nc, t: t, ip: ip}
		t.conns[c] = struct{}{}
		t.perIP[ip]++
		t.mu.Unlock()
		return c, nil
	}
}

// Serve accepts connections on l and runs handle for each on its own
// goroutine, until l fails or Close is called (then it returns nil).
func (t *Tracker) Serve(l net.Listener, handle func(net.Conn)) error {
	tl := t.Listen(l)
	defer tl.Close()
	for {
		c, err := tl.Accept()
		if err != nil {
			if t.Closing() {
				return nil
			}
			return err
		}
		t.mu.Lock()
		if t.closing {
			t.mu.Unlock()
			c.Close()
			return nil
		}
		t.wg.Add(1)
		t.mu.Unlock()
		go func() {
			defer t.wg.Done()
			defer c.Close()
			handle(c)
		}()
	}
}

// Shutdown stops the listeners and wakes every connection blocked in a
// read; it does not wait. Sessions find out with Closing.
func (t *Tracker) Shutdown() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.init()
	t.closing = true
	for l := range t.ls {
		l.Close()
	}
	for c := range t.conns {
		c.Conn.SetReadDeadline(past)
	}
}

// Close shuts down, gives the sessions Grace to say goodbye, then closes
// every connection still open and waits for the handlers.
func (t *Tracker) Close() error {
	t.Shutdown()
	done := make(chan struct{})
	go func() {
		t.wg.Wait()
		close(done)
	}()
	grace := t.Grace
	if grace <= 0 {
		grace = time.Second
	}
	select {
	case <-done:
		return nil
	case <-time.After(grace):
	}
	t.CloseConns()
	<-done
	return nil
}

// CloseConns closes every connection the tracker knows.
func (t *Tracker) CloseConns() {
	t.mu.Lock()
	conns := make([]*Conn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// ReadLine reads one line ending in LF and returns it without CRLF or LF.
// A line longer than max bytes is discarded up to its end and reported as
// ErrLineTooLong. At EOF without a newline the partial line is dropped.
func ReadLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	tooLong := false
	for {
		frag, err := r.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(frag) > max+2 {
				tooLong = true
				line = nil
			} else {
				line = append(line, frag...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return nil, err
		}
		break
	}
	if tooLong {
		return nil, ErrLineTooLong
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}
