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
type Tracker struct {
	mu     sync.Mutex
	ls     map[net.Listener]struct{}
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Serve accepts connections on l and runs handle for each on its own
// goroutine, until l fails or Close is called (then it returns nil).
func (t *Tracker) Serve(l net.Listener, handle func(net.Conn)) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		l.Close()
		return nil
	}
	if t.ls == nil {
		t.ls = make(map[net.Listener]struct{})
		t.conns = make(map[net.Conn]struct{})
	}
	t.ls[l] = struct{}{}
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.ls, l)
		t.mu.Unlock()
	}()
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			t.mu.Lock()
			closed := t.closed
			t.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			c.Close()
			return nil
		}
		t.conns[c] = struct{}{}
		t.wg.Add(1)
		t.mu.Unlock()
		go func() {
			defer t.wg.Done()
			defer func() {
				t.mu.Lock()
				delete(t.conns, c)
				t.mu.Unlock()
				c.Close()
			}()
			handle(c)
		}()
	}
}

// Close closes every listener and connection and waits for the handlers.
func (t *Tracker) Close() error {
	t.mu.Lock()
	t.closed = true
	for l := range t.ls {
		l.Close()
	}
	for c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
	return nil
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
