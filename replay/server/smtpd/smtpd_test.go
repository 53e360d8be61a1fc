package smtpd

import (
	"bufio"
	"bytes"
	"log"
	"net"
	"net/mail"
	"net/smtp"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailtap/mailtap/replay/server/internal/netsrv"
	"github.com/mailtap/mailtap/replay/server/internal/sasl"
	"github.com/mailtap/mailtap/replay/server/internal/srvtest"
	"github.com/mailtap/mailtap/replay/server/mailstore"
)

var fixed = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func testServer(t *testing.T, mod ...func(*Options)) (string, *mailstore.Store) {
	t.Helper()
	st, _ := mailstore.New(mailstore.Options{Deterministic: true, Clock: func() time.Time { return fixed }})
	st.AddUser("alice", "secret")
	o := &Options{Store: st, Hostname: "mx.test", Clock: func() time.Time { return fixed }, MaxMessageBytes: 1000,
		TLSConfig: srvtest.TLS(t, "mx.test"), Throttle: &netsrv.AuthThrottle{Delay: time.Millisecond}}
	for _, m := range mod {
		m(o)
	}
	return srvtest.Serve(t, New(o)), st
}

type client struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	c, br := srvtest.Dial(t, addr)
	cl := &client{t: t, c: c, br: br}
	cl.expect("220 ")
	return cl
}

// reply reads one (multi-line) SMTP reply.
func (c *client) reply() string {
	c.t.Helper()
	var lines []string
	for {
		l, err := c.br.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read: %v after %q", err, lines)
		}
		lines = append(lines, strings.TrimRight(l, "\r\n"))
		if len(l) < 4 || l[3] != '-' {
			return strings.Join(lines, "\n")
		}
	}
}

func (c *client) expect(prefix string) string {
	c.t.Helper()
	r := c.reply()
	if !strings.HasPrefix(r, prefix) {
		c.t.Fatalf("want %q, got %q", prefix, r)
	}
	return r
}

func (c *client) cmd(line, prefix string) string {
	c.t.Helper()
	c.c.Write([]byte(line + "\r\n"))
	return c.expect(prefix)
}

func TestCommands(t *testing.T) {
	addr, st := testServer(t)
	c := dial(t, addr)
	ehlo := c.cmd("EHLO client.test", "250-")
	for _, kw := range []string{"PIPELINING", "8BITMIME", "SMTPUTF8", "SIZE 1000", "CHUNKING", "ENHANCEDSTATUSCODES", "STARTTLS", "AUTH PLAIN LOGIN CRAM-MD5"} {
		if !strings.Contains(ehlo, kw) {
			t.Errorf("EHLO lacks %s:\n%s", kw, ehlo)
		}
	}
	c.cmd("HELO client.test", "250 ")
	c.cmd("NOOP", "250 ")
	c.cmd("RCPT TO:<alice@example.com>", "502 5.5.1")              // go-smtp; RFC 5321 suggests 503
	c.cmd("MAIL FROM:<s@example.org> BODY=8BITMIME", "250 2.1.0 ") // RFC 3463, as Postfix
	c.cmd("RCPT TO:<nobody@example.com>", "550 5.1.1 ")
	c.cmd("RCPT TO:<relay@elsewhere.example>", "550 5.1.1 ")
	c.cmd("RCPT TO:<alice@example.com>", "250 2.1.5 ")
	c.cmd("DATA", "354 ")
	c.cmd("Subject: t\r\n\r\n..dotted\r\nlast\r\n.", "250 2.0.0 ")
	c.cmd("RSET", "250 ")
	c.cmd("MAIL FROM:<s@example.org>", "250 ")
	c.cmd("RCPT TO:<ALICE@example.com>", "250 ")
	c.c.Write([]byte("BDAT 10\r\nSubject: b"))
	c.expect("250 ")
	c.c.Write([]byte("BDAT 6 LAST\r\n\r\nbd\r\n"))
	c.expect("250 ")
	c.cmd("VRFY alice", "252 ")
	c.cmd("QUIT", "221 ")

	snap, _ := st.Snapshot("alice", "INBOX")
	if len(snap.Messages) != 2 {
		t.Fatalf("%d messages", len(snap.Messages))
	}
	raw := string(snap.Messages[0].Raw)
	wantTrace := "Received: from client.test ([127.0.0.1])\r\n\tby mx.test (mailtap) with ESMTP id 1\r\n\tfor <alice@example.com>; Tue, 02 Jan 2024 03:04:05 +0000\r\n"
	if !strings.HasPrefix(raw, wantTrace) || !strings.HasSuffix(raw, "Subject: t\r\n\r\n.dotted\r\nlast\r\n") {
		t.Fatalf("DATA message: %q", raw)
	}
	if raw := string(snap.Messages[1].Raw); !strings.HasSuffix(raw, "+0000\r\nSubject: b\r\nbd\r\n") {
		t.Fatalf("BDAT message: %q", raw)
	}
}

func TestPipelining(t *testing.T) {
	addr, st := testServer(t)
	c := dial(t, addr)
	c.cmd("EHLO client.test", "250")
	c.c.Write([]byte("MAIL FROM:<a@b>\r\nRCPT TO:<alice@x>\r\nRCPT TO:<zed@x>\r\nDATA\r\n"))
	c.expect("250 2.1.0 ")
	c.expect("250 2.1.5 ")
	c.expect("550 ")
	c.expect("354 ")
	c.cmd("x\r\n.", "250 ")
	if snap, _ := st.Snapshot("alice", "INBOX"); len(snap.Messages) != 1 {
		t.Fatal("pipelined message not delivered")
	}
}

func TestSizeLimit(t *testing.T) {
	addr, st := testServer(t)
	c := dial(t, addr)
	c.cmd("EHLO client.test", "250")
	c.cmd("MAIL FROM:<a@b> SIZE=5000", "552 ")
	c.cmd("MAIL FROM:<a@b>", "250 ")
	c.cmd("RCPT TO:<alice@x>", "250 ")
	c.cmd("DATA", "354 ")
	c.cmd(strings.Repeat(strings.Repeat("x", 98)+"\r\n", 20)+".", "552 ")
	if snap, _ := st.Snapshot("alice", "INBOX"); len(snap.Messages) != 0 {
		t.Fatal("oversized message delivered")
	}
}

func TestBadCommandsHangUp(t *testing.T) {
	addr, _ := testServer(t)
	c := dial(t, addr)
	c.cmd("EHLO client.test", "250")
	c.cmd("MAIL FROM:<broken", "501 ") // a syntax error, not counted
	for range 3 {
		c.cmd("FROB", "500 ")
	}
	c.cmd("FROB", "500 ")
	c.expect("500 5.5.1 Too many errors")
	if _, err := c.br.ReadString('\n'); err == nil {
		t.Fatal("connection still open after too many errors")
	}
}

func TestAuth(t *testing.T) {
	addr, _ := testServer(t)
	// net/smtp allows PLAIN without TLS on localhost only.
	sendAuth := func(a smtp.Auth) error {
		c, err := smtp.Dial(addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.Hello("client.test"); err != nil {
			return err
		}
		return c.Auth(a)
	}
	if err := sendAuth(smtp.PlainAuth("", "alice", "secret", "127.0.0.1")); err != nil {
		t.Errorf("PLAIN: %v", err)
	}
	if err := sendAuth(smtp.CRAMMD5Auth("alice", "secret")); err != nil {
		t.Errorf("CRAM-MD5: %v", err)
	}
	if err := sendAuth(smtp.CRAMMD5Auth("alice", "wrong")); err == nil || !strings.Contains(err.Error(), "535") {
		t.Errorf("CRAM-MD5 wrong password: %v", err)
	}
	c := dial(t, addr)
	c.cmd("EHLO client.test", "250")
	c.cmd("AUTH LOGIN", "334 VXNlcm5hbWU6")
	c.cmd("YWxpY2U=", "334 UGFzc3dvcmQ6")
	c.cmd("c2VjcmV0", "235 2.7.0 ") // RFC 4954
	c.cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA==", "503 ")

	c = dial(t, addr)
	c.cmd("EHLO client.test", "250")
	c.cmd("AUTH PLAIN AGFsaWNlAHdyb25n", "535 5.7.8")
	c.cmd("AUTH NTLM", "504 ")
	c.cmd("AUTH PLAIN bm90YmFzZTY0!!!", "454 ")
	if sasl.CRAMDigest("tanstaaftanstaaf", "<1896.697170952@postoffice.reston.mci.net>") != "b913a602c7eda7a495b4e6e7334d3890" {
		t.Error("CRAM-MD5 digest does not match RFC 2195's example")
	}
}

func TestRequireTLSForAuthAndStartTLS(t *testing.T) {
	addr, st := testServer(t, func(o *Options) { o.RequireTLSForAuth = true })
	c := dial(t, addr)
	if ehlo := c.cmd("EHLO client.test", "250"); strings.Contains(ehlo, "AUTH") {
		t.Fatal("AUTH offered before STARTTLS")
	}
	c.cmd("STARTTLS", "220 ")
	c.c, c.br = srvtest.StartTLS(t, c.c)
	if ehlo := c.cmd("EHLO client.test", "250"); !strings.Contains(ehlo, "AUTH PLAIN") || strings.Contains(ehlo, "STARTTLS") {
		t.Fatalf("EHLO after STARTTLS:\n%s", ehlo)
	}
	c.cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA==", "235 ")
	c.cmd("MAIL FROM:<a@b>", "250 ")
	c.cmd("RCPT TO:<alice@x>", "250 ")
	c.cmd("DATA", "354 ")
	c.cmd("x\r\n.", "250 ")
	snap, _ := st.Snapshot("alice", "INBOX")
	if len(snap.Messages) != 1 || !strings.Contains(string(snap.Messages[0].Raw), "with ESMTPSA") {
		t.Fatalf("TLS delivery: %+v", snap)
	}
}

func TestReadTimeout(t *testing.T) {
	addr, _ := testServer(t, func(o *Options) { o.ReadTimeout = 200 * time.Millisecond })
	c := dial(t, addr)
	start := time.Now()
	if _, err := c.br.ReadString('\n'); err == nil && time.Since(start) > 5*time.Second {
		t.Fatal("idle connection not closed")
	}
}

// TestReceivedHeader: the trace header of a message for one and for several
// recipients parses as a header (net/mail, and Python's email when python3
// is installed), its date survives, and "for" names the full address.
func TestReceivedHeader(t *testing.T) {
	addr, st := testServer(t)
	st.AddUser("bob", "pw")
	c := dial(t, addr)
	c.cmd("EHLO client.test", "250")
	for _, rcpts := range [][]string{{"bob@example.com"}, {"alice@example.com", "bob@example.net"}} {
		c.cmd("MAIL FROM:<s@example.org>", "250 ")
		for _, r := range rcpts {
			c.cmd("RCPT TO:<"+r+">", "250 ")
		}
		c.cmd("DATA", "354 ")
		c.cmd("From: s@example.org\r\nTo: bob@example.com\r\nSubject: trace\r\n\r\nbody\r\n.", "250 ")
	}
	snap, _ := st.Snapshot("bob", "INBOX")
	if len(snap.Messages) != 2 {
		t.Fatalf("bob has %d messages", len(snap.Messages))
	}
	for i, m := range snap.Messages {
		msg, err := mail.ReadMessage(bytes.NewReader(m.Raw))
		if err != nil {
			t.Fatalf("message %d does not parse: %v\n%q", i, err, m.Raw)
		}
		rcv := msg.Header.Get("Received")
		semi := strings.LastIndexByte(rcv, ';')
		if semi < 0 {
			t.Fatalf("message %d: Received without date: %q", i, rcv)
		}
		if d, err := mail.ParseDate(strings.TrimSpace(rcv[semi+1:])); err != nil || !d.Equal(fixed) {
			t.Fatalf("message %d: Received date %q: %v", i, rcv[semi+1:], err)
		}
		if msg.Header.Get("Subject") != "trace" || msg.Header.Get("From") == "" {
			t.Fatalf("message %d lost its headers: %v", i, msg.Header)
		}
		hasFor := strings.Contains(rcv, "for <bob@example.com>")
		if hasFor != (i == 0) || strings.Contains(rcv, "for <bob>") {
			t.Fatalf("message %d: Received %q", i, rcv)
		}
		py, err := exec.LookPath("python3")
		if err != nil {
			continue
		}
		cmd := exec.Command(py, "-c", `import sys, email, email.policy, email.utils
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.compat32)
r = str(m["Received"])
assert not m.defects, m.defects
print(email.utils.parsedate_to_datetime(r.rsplit(";", 1)[1].strip()).isoformat(), m["Subject"], m["From"])`)
		cmd.Stdin = bytes.NewReader(m.Raw)
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "2024-01-02T03:04:05+00:00 trace s@example.org" {
			t.Fatalf("message %d: Python's email: %v\n%s", i, err, out)
		}
	}
}

// TestDripTimeout: a client that sends a command a byte at a time without
// ending the line must lose the connection at the read timeout, and the
// fragment must not run as a command (go-smtp alone ran "QUIT" here,
// answered 221, and the drip could go on for ever).
func TestDripTimeout(t *testing.T) {
	var logBuf syncLog
	addr, st := testServer(t, func(o *Options) {
		o.ReadTimeout = 300 * time.Millisecond
		o.Logger = log.New(&logBuf, "", 0)
	})
	c := dial(t, addr)
	c.cmd("EHLO client.test", "250")
	c.cmd("MAIL FROM:<a@b>", "250 ")
	start := time.Now()
	nc := c.c
	go func() {
		for _, b := range []byte("RCPT TO:<alice@example.com>") {
			if _, err := nc.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	l, err := c.br.ReadString('\n')
	if err == nil {
		t.Fatalf("the fragment was answered: %q", l)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("connection held %v with a 300ms read timeout", d)
	}
	if strings.Contains(logBuf.String(), "rcpt") {
		t.Fatalf("fragment reached the session:\n%s", logBuf.String())
	}
	if !strings.Contains(logBuf.String(), "read timeout in the middle of a command line") {
		t.Fatalf("log:\n%s", logBuf.String())
	}
	if snap, _ := st.Snapshot("alice", "INBOX"); len(snap.Messages) != 0 {
		t.Fatal("delivered")
	}

	// The same with "QUIT" as the fragment: no 221.
	c = dial(t, addr)
	c.c.Write([]byte("QUIT"))
	if l, err := c.br.ReadString('\n'); err == nil {
		t.Fatalf("fragment QUIT answered: %q", l)
	}
	// An idle client (no fragment) still gets go-smtp's 421.
	c = dial(t, addr)
	if r, err := c.br.ReadString('\n'); !strings.HasPrefix(r, "421 ") {
		t.Fatalf("idle client: %q %v\n%s", r, err, logBuf.String())
	}
}

type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestForbidBareNewline: by default a bare LF in DATA is stored as it
// came; with ForbidBareNewline the message gets 521 and the connection is
// closed (Postfix's smtpd_forbid_bare_newline). CRLF-only mail and BDAT
// are unaffected.
func TestForbidBareNewline(t *testing.T) {
	msg := "Subject: lf\nbare\r\nok\r\n."
	addr, st := testServer(t)
	c := dial(t, addr)
	c.cmd("EHLO client.test", "250")
	c.cmd("MAIL FROM:<a@b>", "250 ")
	c.cmd("RCPT TO:<alice@x>", "250 ")
	c.cmd("DATA", "354 ")
	c.cmd(msg, "250 ")
	if snap, _ := st.Snapshot("alice", "INBOX"); len(snap.Messages) != 1 || !strings.Contains(string(snap.Messages[0].Raw), "Subject: lf\nbare") {
		t.Fatalf("default: %+v", snap)
	}

	addr, st = testServer(t, func(o *Options) { o.ForbidBareNewline = true })
	c = dial(t, addr)
	c.cmd("EHLO client.test", "250")
	c.cmd("MAIL FROM:<a@b>", "250 ")
	c.cmd("RCPT TO:<alice@x>", "250 ")
	c.cmd("DATA", "354 ")
	c.cmd("Subject: crlf\r\n\r\nfine\r\n.", "250 ")
	c.cmd("MAIL FROM:<a@b>", "250 ")
	c.cmd("RCPT TO:<alice@x>", "250 ")
	c.cmd("BDAT 13 LAST\r\nbdat\nis\nraw", "250 ") // cmd adds the CRLF: 13 bytes
	c.cmd("MAIL FROM:<a@b>", "250 ")
	c.cmd("RCPT TO:<alice@x>", "250 ")
	c.cmd("DATA", "354 ")
	c.cmd(msg, "521 5.5.2 ")
	if l, err := c.br.ReadString('\n'); err == nil {
		t.Fatalf("connection still open after 521: %q", l)
	}
	if snap, _ := st.Snapshot("alice", "INBOX"); len(snap.Messages) != 2 {
		t.Fatalf("forbid: %d messages, want the CRLF one and the BDAT one", len(snap.Messages))
	}
}

// TestAuthThrottle: every failed AUTH waits the throttle's delay; the
// third failure on a connection gets 421 and the connection closes; once
// the address has spent its budget even the right password is refused.
func TestAuthThrottle(t *testing.T) {
	const delay = 100 * time.Millisecond
	addr, _ := testServer(t, func(o *Options) { o.Throttle = &netsrv.AuthThrottle{Delay: delay, PerIP: 5} })
	c := dial(t, addr)
	c.cmd("EHLO client.test", "250")
	start := time.Now()
	c.cmd("AUTH PLAIN AGFsaWNlAHdyb25n", "535 ")
	if d := time.Since(start); d < delay {
		t.Fatalf("failure answered after %v, want at least %v", d, delay)
	}
	c.cmd("AUTH PLAIN AGFsaWNlAHdyb25n", "535 ")
	c.cmd("AUTH PLAIN AGFsaWNlAHdyb25n", "421 4.7.0 ")
	if l, err := c.br.ReadString('\n'); err == nil {
		t.Fatalf("connection open after the failure limit: %q", l)
	}
	c = dial(t, addr)
	c.cmd("EHLO client.test", "250")
	c.cmd("AUTH PLAIN AGFsaWNlAHdyb25n", "535 ")
	c.cmd("AUTH PLAIN AGFsaWNlAHdyb25n", "535 ") // the address's fifth
	c.cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA==", "421 4.7.0 ")
	c = dial(t, addr)
	c.cmd("EHLO client.test", "250")
	c.cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA==", "421 4.7.0 ")
}

// TestSizeBeyond32Bits: SIZE= and BDAT sizes too large for 32 bits get
// 552, as smaller ones over the limit do (go-smtp alone answered 501 and
// took the BDAT chunk for commands). The BDAT connection closes after the
// 552, since its chunk cannot be framed.
func TestSizeBeyond32Bits(t *testing.T) {
	addr, st := testServer(t)
	c := dial(t, addr)
	c.cmd("EHLO client.test", "250")
	c.cmd("MAIL FROM:<a@b> SIZE=99999999999", "552 5.3.4 ")
	c.cmd("mail from:<a@b> BODY=8BITMIME size=18446744073709551616", "552 5.3.4 ")
	c.cmd("MAIL FROM:<a@b> SIZE=4294967296", "552 5.3.4 ")
	c.cmd("MAIL FROM:<a@b> SIZE=12x", "501 ") // not a number: still a syntax error
	// Split across writes: the line is held until it is whole.
	c.c.Write([]byte("MAIL FROM:<a@b> SI"))
	time.Sleep(20 * time.Millisecond)
	c.cmd("ZE=99999999999", "552 5.3.4 ")
	c.cmd("MAIL FROM:<a@b> SIZE=100", "250 ")
	c.cmd("RCPT TO:<alice@x>", "250 ")
	c.c.Write([]byte("BDAT 5\r\nMAIL "))
	c.expect("250 ")
	c.cmd("BDAT 99999999999", "552 5.3.4 ")
	if l, err := c.br.ReadString('\n'); err == nil {
		t.Fatalf("connection open after the unframeable BDAT: %q", l)
	}
	if snap, _ := st.Snapshot("alice", "INBOX"); len(snap.Messages) != 0 {
		t.Fatal("delivered")
	}
	// DATA content that looks like a command is not touched.
	c = dial(t, addr)
	c.cmd("EHLO client.test", "250")
	c.cmd("MAIL FROM:<a@b>", "250 ")
	c.cmd("RCPT TO:<alice@x>", "250 ")
	c.cmd("DATA", "354 ")
	c.cmd("MAIL FROM:<x> SIZE=99999999999\r\nBDAT 99999999999\r\n.", "250 ")
	snap, _ := st.Snapshot("alice", "INBOX")
	if len(snap.Messages) != 1 || !strings.HasSuffix(string(snap.Messages[0].Raw), "\r\nMAIL FROM:<x> SIZE=99999999999\r\nBDAT 99999999999\r\n") {
		t.Fatalf("DATA changed: %+v", snap)
	}
	c.cmd("MAIL FROM:<a@b> SIZE=99999999999", "552 5.3.4 ")
}

// TestEarlyData: a client that sends its message right behind DATA, before
// the 354, has it stored unchanged (its lines are not taken for MAIL or
// BDAT commands); after a refused DATA, commands are followed again.
func TestEarlyData(t *testing.T) {
	addr, st := testServer(t)
	c := dial(t, addr)
	c.cmd("EHLO client.test", "250")
	body := "Subject: early\r\n\r\nMAIL FROM:<x> SIZE=99999999999\r\nBDAT 99999999999\r\n"
	c.c.Write([]byte("MAIL FROM:<a@b>\r\nRCPT TO:<alice@x>\r\nDATA\r\n" + body + ".\r\n"))
	c.expect("250 ")
	c.expect("250 ")
	c.expect("354 ")
	c.expect("250 ")
	snap, _ := st.Snapshot("alice", "INBOX")
	if len(snap.Messages) != 1 || !strings.HasSuffix(string(snap.Messages[0].Raw), body) {
		t.Fatalf("early data: %+v", snap)
	}
	// DATA without recipients is refused; the next line is a command.
	c.c.Write([]byte("DATA\r\nMAIL FROM:<a@b> SIZE=99999999999\r\n"))
	c.expect("50")
	c.expect("552 5.3.4 ")
	c.cmd("NOOP", "250 ")
}

// startTLS upgrades c after EHLO and checks go-smtp's rules for the new
// session: EHLO needed again, STARTTLS no longer offered.
func (c *client) startTLS() {
	c.t.Helper()
	c.cmd("STARTTLS", "220 2.0.0 ")
	c.c, c.br = srvtest.StartTLS(c.t, c.c)
	c.cmd("MAIL FROM:<a@b>", "502 5.5.1 Please introduce")
	if ehlo := c.cmd("EHLO client.test", "250"); strings.Contains(ehlo, "STARTTLS") || !strings.Contains(ehlo, "CHUNKING") {
		c.t.Fatalf("EHLO after STARTTLS:\n%s", ehlo)
	}
}

// TestStartTLSFixes: after STARTTLS the conn still sees the plaintext, so
// what it corrects before STARTTLS it corrects after it: SIZE= and BDAT
// sizes beyond 32 bits get 552 (go-smtp alone answered 501 and took the
// BDAT chunk for commands), MAIL, RCPT and AUTH get 2.1.0, 2.1.5 and
// 2.7.0, and the connection closes after an unframeable BDAT.
func TestStartTLSFixes(t *testing.T) {
	addr, st := testServer(t)
	c := dial(t, addr)
	c.cmd("EHLO client.test", "250")
	c.startTLS()
	c.cmd("STARTTLS", "502 5.5.1 ") // go-smtp: already under TLS
	c.cmd("MAIL FROM:<a@b> SIZE=99999999999", "552 5.3.4 ")
	c.cmd("MAIL FROM:<a@b> SIZE=12x", "501 ")
	c.c.Write([]byte("MAIL FROM:<a@b> SI"))
	time.Sleep(20 * time.Millisecond)
	c.cmd("ZE=4294967296", "552 5.3.4 ")
	c.cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA==", "235 2.7.0 ")
	c.cmd("MAIL FROM:<a@b> SIZE=100", "250 2.1.0 ")
	c.cmd("RCPT TO:<alice@x>", "250 2.1.5 ")
	c.c.Write([]byte("BDAT 5\r\nMAIL "))
	c.expect("250 ")
	c.c.Write([]byte("BDAT 2 LAST\r\n\r\n"))
	c.expect("250 ")
	snap, _ := st.Snapshot("alice", "INBOX")
	if len(snap.Messages) != 1 || !strings.HasSuffix(string(snap.Messages[0].Raw), "MAIL \r\n") ||
		!strings.Contains(string(snap.Messages[0].Raw), "with ESMTPSA") {
		t.Fatalf("BDAT under TLS: %+v", snap)
	}
	c.cmd("MAIL FROM:<a@b>", "250 2.1.0 ")
	c.cmd("RCPT TO:<alice@x>", "250 2.1.5 ")
	c.cmd("BDAT 99999999999", "552 5.3.4 ")
	if l, err := c.br.ReadString('\n'); err == nil {
		t.Fatalf("connection open after the unframeable BDAT: %q", l)
	}
	// DATA under TLS is passed through untouched.
	c = dial(t, addr)
	c.cmd("EHLO client.test", "250")
	c.startTLS()
	c.cmd("MAIL FROM:<a@b>", "250 2.1.0 ")
	c.cmd("RCPT TO:<alice@x>", "250 ")
	c.cmd("DATA", "354 ")
	c.cmd("MAIL FROM:<x> SIZE=99999999999\r\n.", "250 ")
	c.cmd("MAIL FROM:<a@b> SIZE=99999999999", "552 5.3.4 ")
	c.cmd("QUIT", "221 ")
	if snap, _ := st.Snapshot("alice", "INBOX"); len(snap.Messages) != 2 || !strings.HasSuffix(string(snap.Messages[1].Raw), "\r\nMAIL FROM:<x> SIZE=99999999999\r\n") {
		t.Fatalf("DATA under TLS: %+v", snap)
	}
}

// TestStartTLSInjection: commands pipelined in plaintext behind STARTTLS
// are discarded, never run in the TLS session (RFC 3207 5; the STARTTLS
// command injection of CVE-2011-0411).
func TestStartTLSInjection(t *testing.T) {
	addr, st := testServer(t)
	c := dial(t, addr)
	c.cmd("EHLO client.test", "250")
	c.c.Write([]byte("STARTTLS\r\nEHLO evil.test\r\nMAIL FROM:<evil@x>\r\nRCPT TO:<alice@x>\r\n"))
	c.expect("220 ")
	c.c, c.br = srvtest.StartTLS(t, c.c)
	c.cmd("MAIL FROM:<a@b>", "502 5.5.1 Please introduce") // the injected EHLO did not run
	c.cmd("EHLO client.test", "250")
	c.cmd("RCPT TO:<alice@x>", "502 5.5.1 Missing MAIL") // nor the injected MAIL
	c.cmd("DATA", "502 ")
	if snap, _ := st.Snapshot("alice", "INBOX"); len(snap.Messages) != 0 {
		t.Fatal("delivered")
	}
}

// TestStartTLSDripTimeout: under TLS too a command line left unfinished at
// the read timeout closes the connection without running, and an idle
// client gets go-smtp's 421.
func TestStartTLSDripTimeout(t *testing.T) {
	var logBuf syncLog
	addr, _ := testServer(t, func(o *Options) {
		o.ReadTimeout = 300 * time.Millisecond
		o.Logger = log.New(&logBuf, "", 0)
	})
	c := dial(t, addr)
	c.cmd("EHLO client.test", "250")
	c.startTLS()
	c.c.Write([]byte("QUIT"))
	if l, err := c.br.ReadString('\n'); err == nil {
		t.Fatalf("fragment QUIT answered: %q", l)
	}
	if !strings.Contains(logBuf.String(), "read timeout in the middle of a command line") {
		t.Fatalf("log:\n%s", logBuf.String())
	}
	c = dial(t, addr)
	c.cmd("EHLO client.test", "250")
	c.startTLS()
	if r, err := c.br.ReadString('\n'); !strings.HasPrefix(r, "421 ") {
		t.Fatalf("idle client: %q %v\n%s", r, err, logBuf.String())
	}
}

// TestStartTLSBadHandshake: a client that answers the 220 with something
// other than a TLS handshake loses the connection (the conn terminates the
// handshake; nothing more can be read in plaintext or in TLS).
func TestStartTLSBadHandshake(t *testing.T) {
	addr, _ := testServer(t)
	c := dial(t, addr)
	c.cmd("EHLO client.test", "250")
	c.cmd("STARTTLS", "220 ")
	c.c.Write([]byte("MAIL FROM:<a@b>\r\n"))
	c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if l, err := c.br.ReadString('\n'); err == nil {
		t.Fatalf("answered after a failed handshake: %q", l)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("connection left open after a failed handshake")
	}
}

// TestStartTLSClose: Close ends a session under TLS as one in plaintext:
// the client, blocked in a read, gets "421 4.4.2" over TLS at once.
func TestStartTLSClose(t *testing.T) {
	st, _ := mailstore.New(mailstore.Options{})
	s := New(&Options{Store: st, Hostname: "mx.test", TLSConfig: srvtest.TLS(t, "mx.test")})
	addr := srvtest.Serve(t, s)
	c := dial(t, addr)
	c.cmd("EHLO client.test", "250")
	c.startTLS()
	start := time.Now()
	go s.Close()
	c.expect("421 4.4.2 ")
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
}
