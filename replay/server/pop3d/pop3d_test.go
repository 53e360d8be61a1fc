package pop3d

import (
	"bufio"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailtap/mailtap/replay/server/internal/netsrv"
	"github.com/mailtap/mailtap/replay/server/internal/sasl"
	"github.com/mailtap/mailtap/replay/server/internal/srvtest"
	"github.com/mailtap/mailtap/replay/server/mailstore"
)

func testServer(t *testing.T, mod ...func(*Options)) (string, *mailstore.Store) {
	t.Helper()
	st, _ := mailstore.New(mailstore.Options{Deterministic: true})
	st.AddUser("alice", "secret")
	st.Deliver("alice", []byte("Subject: one\r\n\r\nline1\r\n.dot\r\nline3\r\n"))
	st.Deliver("alice", []byte("Subject: two\r\n\r\nbody two\r\n"))
	o := &Options{Store: st, Hostname: "pop.test", TLSConfig: srvtest.TLS(t, "pop.test"),
		Clock: func() time.Time { return time.Unix(1700000000, 0) }, Throttle: &netsrv.AuthThrottle{Delay: time.Millisecond}}
	for _, m := range mod {
		m(o)
	}
	return srvtest.Serve(t, New(o)), st
}

type client struct {
	t        *testing.T
	c        net.Conn
	br       *bufio.Reader
	greeting string
}

func dial(t *testing.T, addr string) *client {
	c, br := srvtest.Dial(t, addr)
	cl := &client{t: t, c: c, br: br}
	cl.greeting = cl.line()
	return cl
}

func (c *client) line() string {
	c.t.Helper()
	return srvtest.Line(c.t, c.br)
}

func (c *client) cmd(line, want string) string {
	c.t.Helper()
	c.c.Write([]byte(line + "\r\n"))
	got := c.line()
	if !strings.HasPrefix(got, want) {
		c.t.Fatalf("%s: want %q, got %q", line, want, got)
	}
	return got
}

// multi reads a multi-line body up to the "." line.
func (c *client) multi() []string {
	c.t.Helper()
	var out []string
	for {
		l := c.line()
		if l == "." {
			return out
		}
		out = append(out, l)
	}
}

func login(t *testing.T, addr string) *client {
	c := dial(t, addr)
	c.cmd("USER alice", "+OK")
	c.cmd("PASS secret", "+OK")
	return c
}

func TestTransaction(t *testing.T) {
	addr, st := testServer(t)
	c := dial(t, addr)
	if !regexp.MustCompile(`^\+OK pop\.test POP3 server ready <\d+\.\d+@pop\.test>$`).MatchString(c.greeting) {
		t.Fatalf("greeting %q", c.greeting)
	}
	c.cmd("CAPA", "+OK")
	capa := strings.Join(c.multi(), ",")
	for _, w := range []string{"TOP", "UIDL", "USER", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE", "STLS", "SASL PLAIN LOGIN CRAM-MD5"} {
		if !strings.Contains(capa, w) {
			t.Errorf("CAPA lacks %s: %s", w, capa)
		}
	}
	c.cmd("STAT", "-ERR")
	c.cmd("PASS secret", "-ERR")
	c.cmd("USER alice", "+OK")
	c.cmd("PASS wrong", "-ERR [AUTH]")
	c.cmd("USER alice", "+OK")
	c.cmd("PASS secret", "+OK")
	c.cmd("STLS", "-ERR")
	c.cmd("STAT", "+OK 2 ")
	c.cmd("LIST", "+OK")
	if got := c.multi(); len(got) != 2 || !strings.HasPrefix(got[0], "1 ") {
		t.Fatalf("LIST: %q", got)
	}
	c.cmd("LIST 2", "+OK 2 ")
	c.cmd("LIST 3", "-ERR")
	c.cmd("LIST x", "-ERR")
	c.cmd("UIDL", "+OK")
	if got := c.multi(); strings.Join(got, ",") != "1 1.1,2 1.2" {
		t.Fatalf("UIDL: %q", got)
	}
	c.cmd("UIDL 2", "+OK 2 1.2")
	c.cmd("RETR 1", "+OK")
	if got := strings.Join(c.multi(), "|"); got != "Subject: one||line1|..dot|line3" {
		t.Fatalf("RETR (dot-stuffed): %q", got)
	}
	c.cmd("TOP 1 1", "+OK")
	if got := strings.Join(c.multi(), "|"); got != "Subject: one||line1" {
		t.Fatalf("TOP: %q", got)
	}
	c.cmd("TOP 1", "-ERR")
	c.cmd("DELE 1", "+OK")
	c.cmd("DELE 1", "-ERR")
	c.cmd("RETR 1", "-ERR")
	c.cmd("STAT", "+OK 1 ")
	c.cmd("RSET", "+OK")
	c.cmd("STAT", "+OK 2 ")
	c.cmd("DELE 2", "+OK")
	c.cmd("NOOP", "+OK")
	c.cmd("FROB", "-ERR")
	// Nothing is deleted before QUIT.
	if snap, _ := st.Snapshot("alice", "INBOX"); len(snap.Messages) != 2 {
		t.Fatal("deleted before QUIT")
	}
	c.cmd("QUIT", "+OK")
	snap, _ := st.Snapshot("alice", "INBOX")
	if len(snap.Messages) != 1 || snap.Messages[0].UID != 1 {
		t.Fatalf("after QUIT: %+v", snap.Messages)
	}
	if strings.Join(snap.Messages[0].Flags, " ") != `\Seen` {
		t.Fatalf("RETR did not set \\Seen: %v", snap.Messages[0].Flags)
	}
}

func TestDropDeletesNothingAndLock(t *testing.T) {
	addr, st := testServer(t)
	c := login(t, addr)
	c.cmd("DELE 1", "+OK")
	d := dial(t, addr)
	d.cmd("USER alice", "+OK")
	d.cmd("PASS secret", "-ERR [IN-USE]")
	c.c.Close()
	time.Sleep(50 * time.Millisecond)
	if snap, _ := st.Snapshot("alice", "INBOX"); len(snap.Messages) != 2 {
		t.Fatal("a dropped session deleted mail")
	}
	d.cmd("USER alice", "+OK")
	d.cmd("PASS secret", "+OK") // the lock went with the session
}

// TestLoginWaitsForDrop: a login while another session holds the
// maildrop waits for that session to end (up to lockWait) instead of
// failing at once: replay opens a session right after dropping the
// previous one, before the server has read the drop.
func TestLoginWaitsForDrop(t *testing.T) {
	addr, _ := testServer(t)
	c := login(t, addr)
	d := dial(t, addr)
	d.cmd("USER alice", "+OK")
	go func() {
		time.Sleep(100 * time.Millisecond)
		c.c.Close()
	}()
	d.cmd("PASS secret", "+OK")
	d.cmd("QUIT", "+OK")
}

func TestAPOPAndSASL(t *testing.T) {
	addr, _ := testServer(t)
	c := dial(t, addr)
	ts := regexp.MustCompile(`<[^>]+>`).FindString(c.greeting)
	sum := md5.Sum([]byte(ts + "secret"))
	c.cmd("APOP alice 0123", "-ERR [AUTH]")
	c.cmd("APOP alice "+hex.EncodeToString(sum[:]), "+OK")
	c.cmd("QUIT", "+OK")

	c = dial(t, addr)
	c.cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA==", "+OK")
	c.cmd("QUIT", "+OK")
	c = dial(t, addr)
	c.cmd("AUTH PLAIN", "+ ")
	c.cmd("AGFsaWNlAHdyb25n", "-ERR [AUTH]")
	c.cmd("AUTH LOGIN", "+ VXNlcm5hbWU6")
	c.cmd("YWxpY2U=", "+ UGFzc3dvcmQ6")
	c.cmd("c2VjcmV0", "+OK")
	c.cmd("QUIT", "+OK")

	c = dial(t, addr)
	c.cmd("AUTH CRAM-MD5", "+ ")
	c.cmd("*", "-ERR")
	ch := c.cmd("AUTH CRAM-MD5", "+ ")
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(ch, "+ "))
	c.cmd(base64.StdEncoding.EncodeToString([]byte("alice "+sasl.CRAMDigest("secret", string(raw)))), "+OK")
	c.cmd("QUIT", "+OK")
	c = dial(t, addr)
	c.cmd("AUTH X-UNKNOWN", "-ERR")
	c.cmd("AUTH", "+OK")
	if got := c.multi(); strings.Join(got, " ") != "PLAIN LOGIN CRAM-MD5" {
		t.Fatalf("AUTH list: %q", got)
	}
}

func TestSTLS(t *testing.T) {
	addr, _ := testServer(t, func(o *Options) { o.RequireTLSForAuth = true })
	c := dial(t, addr)
	c.cmd("USER alice", "-ERR [AUTH]")
	c.cmd("STLS", "+OK")
	c.c, c.br = srvtest.StartTLS(t, c.c)
	c.cmd("CAPA", "+OK")
	if capa := strings.Join(c.multi(), ","); strings.Contains(capa, "STLS") || !strings.Contains(capa, "USER") {
		t.Fatalf("CAPA after STLS: %s", capa)
	}
	c.cmd("STLS", "-ERR")
	c.cmd("USER alice", "+OK")
	c.cmd("PASS secret", "+OK Logged in, 2 messages")
}

func TestPipeliningAndLimits(t *testing.T) {
	addr, _ := testServer(t, func(o *Options) { o.MaxBadCommands = 3; o.MaxLineLength = 100 })
	c := login(t, addr)
	c.c.Write([]byte("STAT\r\nLIST 1\r\nUIDL 1\r\nNOOP\r\n"))
	for _, w := range []string{"+OK 2 ", "+OK 1 ", "+OK 1 1.1", "+OK"} {
		if l := c.line(); !strings.HasPrefix(l, w) {
			t.Fatalf("pipelined: want %q got %q", w, l)
		}
	}
	c.cmd(strings.Repeat("x", 200), "-ERR")
	c.cmd("BOGUS", "-ERR")
	c.cmd("BOGUS", "-ERR Too many")
	if _, err := c.br.ReadString('\n'); err == nil {
		t.Fatal("still open after too many bad commands")
	}
}

// UIDL answers the unique id a message was seeded with (mailtap replay
// seeds the captured server's), in the listing and for one message; a
// seeded id RFC 1939 7 does not allow (a space, a control character, over
// 70 characters) is ignored for UIDVALIDITY.UID, as is a missing one.
func TestSeededUIDL(t *testing.T) {
	addr, st := testServer(t)
	raw := []byte("Subject: s\r\n\r\nx\r\n")
	err := st.SeedMailbox("alice", mailstore.Inbox, "", 7, 0, []mailstore.SeedMessage{
		{UID: 1, Raw: raw, UIDL: "000000014f2d8e1a"},
		{UID: 2, Raw: raw, UIDL: "has space"},
		{UID: 3, Raw: raw, UIDL: strings.Repeat("u", 71)},
		{UID: 4, Raw: raw},
		{UID: 5, Raw: raw, UIDL: strings.Repeat("~", 70)},
		{UID: 6, Raw: raw, UIDL: "tab\there"},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := login(t, addr)
	c.cmd("UIDL", "+OK")
	want := "1 000000014f2d8e1a,2 7.2,3 7.3,4 7.4,5 " + strings.Repeat("~", 70) + ",6 7.6"
	if got := strings.Join(c.multi(), ","); got != want {
		t.Fatalf("UIDL:\n got %q\nwant %q", got, want)
	}
	c.cmd("UIDL 1", "+OK 1 000000014f2d8e1a")
	c.cmd("UIDL 2", "+OK 2 7.2")
	c.cmd("DELE 1", "+OK")
	c.cmd("UIDL 1", "-ERR")
	c.cmd("UIDL", "+OK")
	if got := c.multi(); len(got) != 5 || got[0] != "2 7.2" {
		t.Fatalf("UIDL after DELE 1: %q", got)
	}
}
