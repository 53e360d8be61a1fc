package main

import (
	"bufio"
	"crypto/tls"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"
)

type serveClient struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func serveDial(t *testing.T, addr string) *serveClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	sc := &serveClient{t: t, c: c, br: bufio.NewReader(c)}
	sc.read() // greeting
	return sc
}

func (s *serveClient) read() string {
	s.t.Helper()
	l, err := s.br.ReadString('\n')
	if err != nil {
		s.t.Fatalf("read: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// send writes a line and reads until a line starting with want.
func (s *serveClient) send(line, want string) string {
	s.t.Helper()
	s.c.Write([]byte(line + "\r\n"))
	for {
		l := s.read()
		if strings.HasPrefix(l, want) {
			return l
		}
		if len(l) > 3 && l[3] == '-' {
			continue // SMTP multi-line
		}
		if strings.HasPrefix(l, "* ") || strings.HasPrefix(l, "+ ") && want != "+ " {
			continue
		}
		s.t.Fatalf("%q: want %q, got %q", line, want, l)
	}
}

// TestServeLogsAndShutdown runs `mailtap serve`: each address is announced
// once; an SMTP session with STARTTLS is logged as one session; and on
// shutdown a client in IMAP IDLE gets "* BYE", a POP3 client
// "-ERR [SYS/TEMP]" and an SMTP client 421 before the connection closes.
func TestServeLogsAndShutdown(t *testing.T) {
	stop := make(chan struct{})
	old := serveWait
	serveWait = func() { <-stop }
	t.Cleanup(func() { serveWait = old })
	var stdout, stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"serve", "--smtp", "127.0.0.1:0", "--pop3", "127.0.0.1:0", "--imap", "127.0.0.1:0",
			"--user", "alice:secret"}, &stdout, &stderr)
	}()
	re := regexp.MustCompile(`(?m)^(IMAP|POP3|SMTP) listening on (\S+)$`)
	addrs := map[string]string{}
	for deadline := time.Now().Add(10 * time.Second); len(addrs) < 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no addresses announced:\n%s\n%s", stdout.String(), stderr.String())
		}
		for _, m := range re.FindAllStringSubmatch(stdout.String(), -1) {
			addrs[m[1]] = m[2]
		}
	}

	// SMTP through STARTTLS: one session in the log, not two.
	s := serveDial(t, addrs["SMTP"])
	s.send("EHLO client.test", "250 ")
	s.send("STARTTLS", "220 ")
	tc := tls.Client(s.c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	s.c, s.br = tc, bufio.NewReader(tc)
	s.send("EHLO client.test", "250 ")
	s.send("QUIT", "221 ")

	imap := serveDial(t, addrs["IMAP"])
	imap.send("a LOGIN alice secret", "a OK")
	imap.send("b SELECT INBOX", "b OK")
	imap.send("c IDLE", "+ ")
	pop := serveDial(t, addrs["POP3"])
	pop.send("USER alice", "+OK")
	pop.send("PASS secret", "+OK")
	smtp := serveDial(t, addrs["SMTP"])
	smtp.send("EHLO client.test", "250 ")

	close(stop)
	if l := imap.read(); !strings.HasPrefix(l, "* BYE") {
		t.Errorf("IMAP client in IDLE got %q at shutdown, want * BYE", l)
	}
	if l := pop.read(); !strings.HasPrefix(l, "-ERR [SYS/TEMP]") {
		t.Errorf("POP3 client got %q at shutdown", l)
	}
	if l := smtp.read(); !strings.HasPrefix(l, "421 ") {
		t.Errorf("SMTP client got %q at shutdown", l)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d:\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}

	all := stdout.String() + stderr.String()
	if n := strings.Count(all, "listening on"); n != 3 {
		t.Errorf("%d 'listening' lines, want 3:\n%s", n, all)
	}
	log := stderr.String()
	if n := strings.Count(log, "smtp[1] "); n != 3 || !strings.Contains(log, "smtp[1] ") ||
		strings.Count(log, "smtp[1] 127.0.0.1") != 3 || !strings.Contains(log, "STARTTLS done") ||
		strings.Count(log, "session start") != 4 || strings.Count(log, "session end") != 4 {
		t.Errorf("log of an SMTP session with STARTTLS (want start, STARTTLS done, end) and 4 sessions:\n%s", log)
	}
}
