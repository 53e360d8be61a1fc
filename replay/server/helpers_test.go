package server

import (
	"bufio"
	"bytes"
	"fmt"
	"log"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// testServer starts a deterministic server with alice and bob on loopback.
func testServer(t *testing.T, mod ...func(*Options)) *Server {
	t.Helper()
	o := Options{
		SMTPAddr: "127.0.0.1:0", POP3Addr: "127.0.0.1:0", IMAPAddr: "127.0.0.1:0",
		Users:         map[string]string{"alice": "secret", "bob": "hunter2"},
		Deterministic: true,
		Logger:        log.New(testWriter{t}, "", 0),
		ReadTimeout:   10 * time.Second,
		// Failed logins are part of several tests: keep them quick.
		AuthFailureDelay: time.Millisecond,
	}
	for _, m := range mod {
		m(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// lineConn is a raw line client for POP3 and IMAP.
type lineConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr net.Addr) *lineConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &lineConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (l *lineConn) send(format string, args ...any) {
	l.t.Helper()
	if _, err := fmt.Fprintf(l.c, format+"\r\n", args...); err != nil {
		l.t.Fatal(err)
	}
}

func (l *lineConn) line() string {
	l.t.Helper()
	s, err := l.br.ReadString('\n')
	if err != nil {
		l.t.Fatalf("read: %v (got %q)", err, s)
	}
	return strings.TrimRight(s, "\r\n")
}

// until reads lines until one starts with prefix and returns all of them.
func (l *lineConn) until(prefix string) []string {
	l.t.Helper()
	var out []string
	for {
		s := l.line()
		out = append(out, s)
		if strings.HasPrefix(s, prefix) {
			return out
		}
	}
}

func mustContain(t *testing.T, lines []string, want string) {
	t.Helper()
	for _, l := range lines {
		if strings.Contains(l, want) {
			return
		}
	}
	t.Fatalf("no line contains %q in:\n%s", want, strings.Join(lines, "\n"))
}

// syncBuffer is a bytes.Buffer that several sessions may write at once
// (Options.Debug).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
