package smtpd

import (
	"bufio"
	"bytes"
	"net"
	"net/mail"
	"net/smtp"
	"os/exec"
	"strings"
	"testing"
	"time"

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
		TLSConfig: srvtest.TLS(t, "mx.test")}
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
	c.cmd("RCPT TO:<alice@example.com>", "502 5.5.1") // go-smtp; RFC 5321 suggests 503
	c.cmd("MAIL FROM:<s@example.org> BODY=8BITMIME", "250 ")
	c.cmd("RCPT TO:<nobody@example.com>", "550 5.1.1 ")
	c.cmd("RCPT TO:<relay@elsewhere.example>", "550 5.1.1 ")
	c.cmd("RCPT TO:<alice@example.com>", "250 ")
	c.cmd("DATA", "354 ")
	c.cmd("Subject: t\r\n\r\n..dotted\r\nlast\r\n.", "250 ")
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
	c.expect("250 ")
	c.expect("250 ")
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
	c.cmd("c2VjcmV0", "235 ")
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
