package server

import (
	"bytes"
	"fmt"
	"net/smtp"
	"strings"
	"sync"
	"testing"
	"time"
)

func sendMail(t testing.TB, s *Server, to []string, body string) {
	t.Helper()
	if err := plainSend(s.Addrs()["smtp"].String(), "sender@example.org", to, body); err != nil {
		t.Fatal(err)
	}
}

// plainSend is smtp.SendMail without the STARTTLS upgrade (our certificate
// is self-signed).
func plainSend(addr, from string, to []string, body string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return err
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(body)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// sendMany sends n messages to one recipient over one SMTP connection.
func sendMany(addr, to string, session, n int) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return err
	}
	for k := range n {
		if err := c.Mail("load@example.org"); err != nil {
			return err
		}
		if err := c.Rcpt(to); err != nil {
			return err
		}
		w, err := c.Data()
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "Subject: load %d.%d\r\nMessage-ID: <%d.%d@load>\r\n\r\nbody\r\n", session, k, session, k)
		if err := w.Close(); err != nil {
			return err
		}
		if err := c.Reset(); err != nil {
			return err
		}
	}
	return c.Quit()
}

func TestCrossProtocol(t *testing.T) {
	s := testServer(t)
	sendMail(t, s, []string{"alice@example.com"}, "Subject: one\r\n\r\nfirst\r\n")
	sendMail(t, s, []string{"alice@example.com"}, "Subject: two\r\n\r\nsecond\r\n")

	// IMAP sees both, flags one, moves the other to Trash.
	im := dial(t, s.Addrs()["imap"])
	im.line()
	im.send("a LOGIN alice secret")
	im.until("a OK")
	im.send("b SELECT INBOX")
	mustContain(t, im.until("b OK"), "* 2 EXISTS")
	im.send("c STORE 1 +FLAGS (\\Flagged)")
	mustContain(t, im.until("c OK"), `* 1 FETCH (FLAGS (\Flagged \Recent))`)
	im.send("d UID MOVE 2 Trash")
	lines := im.until("d OK")
	mustContain(t, lines, "[COPYUID 5 2 1]")
	mustContain(t, lines, "* 2 EXPUNGE")

	// POP3 sees only the first message and reads it; IMAP then sees \Seen.
	pop := dial(t, s.Addrs()["pop3"])
	pop.line()
	pop.send("USER alice")
	pop.line()
	pop.send("PASS secret")
	if l := pop.line(); !strings.HasPrefix(l, "+OK") {
		t.Fatal(l)
	}
	pop.send("STAT")
	if l := pop.line(); !strings.HasPrefix(l, "+OK 1 ") {
		t.Fatalf("STAT: %s", l)
	}
	pop.send("RETR 1")
	msg := pop.until(".")
	mustContain(t, msg, "Subject: one")
	im.send("e NOOP")
	mustContain(t, im.until("e OK"), `* 1 FETCH (UID 1 FLAGS (\Flagged \Seen \Recent))`)

	// POP3 deletes it at QUIT; IMAP is told.
	pop.send("DELE 1")
	pop.line()
	im.send("f NOOP")
	for _, l := range im.until("f OK") {
		if strings.Contains(l, "EXPUNGE") {
			t.Fatal("deletion visible before QUIT")
		}
	}
	pop.send("QUIT")
	pop.line()
	im.send("g NOOP")
	mustContain(t, im.until("g OK"), "* 1 EXPUNGE")
	im.send("h STATUS Trash (MESSAGES)")
	mustContain(t, im.until("h OK"), `* STATUS "Trash" (MESSAGES 1)`)
}

func TestIdleSeesSMTPDelivery(t *testing.T) {
	s := testServer(t)
	im := dial(t, s.Addrs()["imap"])
	im.line()
	im.send("a LOGIN alice secret")
	im.until("a OK")
	im.send("b SELECT INBOX")
	im.until("b OK")
	im.send("c IDLE")
	if l := im.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatal(l)
	}
	sendMail(t, s, []string{"alice@example.com"}, "Subject: during idle\r\n\r\nhi\r\n")
	if l := im.line(); l != "* 1 EXISTS" {
		t.Fatalf("IDLE: got %q", l)
	}
	im.send("DONE")
	im.until("c OK")
}

func TestPersistence(t *testing.T) {
	dir := t.TempDir()
	withDir := func(o *Options) { o.StoreDir = dir }
	s := testServer(t, withDir)
	sendMail(t, s, []string{"alice@example.com"}, "Subject: kept\r\n\r\nbody\r\n")
	sendMail(t, s, []string{"bob@example.com"}, "Subject: for bob\r\n\r\nbody\r\n")
	im := dial(t, s.Addrs()["imap"])
	im.line()
	im.send("a LOGIN alice secret")
	im.send("b CREATE Projects/2024")
	im.send("c SELECT INBOX")
	im.send("d STORE 1 +FLAGS (\\Answered $Work)")
	im.send("e COPY 1 Projects/2024")
	im.send("f LOGOUT")
	im.until("f OK")
	before, _ := s.Store().Snapshot("alice", "INBOX")
	beforeRaw, err := before.Messages[0].Body()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := testServer(t, withDir)
	after, err := s2.Store().Snapshot("alice", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(before.UIDValidity, before.UIDNext, len(after.Messages)) != fmt.Sprint(after.UIDValidity, after.UIDNext, 1) {
		t.Fatalf("INBOX changed across restart: %+v vs %+v", before, after)
	}
	afterRaw, err := after.Messages[0].Body()
	if err != nil {
		t.Fatal(err)
	}
	if len(afterRaw) == 0 || !bytes.Equal(afterRaw, beforeRaw) || !after.Messages[0].InternalDate.Equal(before.Messages[0].InternalDate) {
		t.Fatal("message bytes or date changed")
	}
	if got := strings.Join(after.Messages[0].Flags, " "); got != `$Work \Answered` {
		t.Fatalf("flags after restart: %q", got)
	}
	p, err := s2.Store().Snapshot("alice", "Projects/2024")
	if err != nil || len(p.Messages) != 1 {
		t.Fatalf("copied message lost: %v %+v", err, p)
	}
	b, _ := s2.Store().Snapshot("bob", "INBOX")
	if len(b.Messages) != 1 {
		t.Fatal("bob's mail lost")
	}
	// New deliveries continue the UID sequence.
	sendMail(t, s2, []string{"alice@example.com"}, "Subject: after\r\n\r\nx\r\n")
	a2, _ := s2.Store().Snapshot("alice", "INBOX")
	if a2.Messages[len(a2.Messages)-1].UID != before.UIDNext {
		t.Fatalf("UID after restart = %d, want %d", a2.Messages[len(a2.Messages)-1].UID, before.UIDNext)
	}
}

// TestLoad runs 200 concurrent SMTP sessions while POP3 and IMAP clients
// read, and checks that every message arrived exactly once.
func TestLoad(t *testing.T) {
	s := testServer(t, func(o *Options) { o.Logger = nil })
	// 1,000 concurrent sessions, each sending 20 messages in one
	// connection (MAIL, RCPT, DATA, RSET between them): 20,000 messages.
	const senders, perSession = 1000, 20
	deadline := time.Now().Add(60 * time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, senders+10)
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			to := "alice@example.com"
			if i%2 == 1 {
				to = "bob@example.com"
			}
			if err := sendMany(s.Addrs()["smtp"].String(), to, i, perSession); err != nil {
				errs <- err
			}
		}()
	}
	// Readers poll while deliveries run.
	stop := make(chan struct{})
	var rwg sync.WaitGroup
	for r := range 4 {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			for time.Now().Before(deadline) {
				select {
				case <-stop:
					return
				default:
				}
				if r%2 == 0 {
					im := dial(t, s.Addrs()["imap"])
					im.line()
					im.send("a LOGIN bob hunter2")
					im.send("b EXAMINE INBOX")
					im.send("c FETCH 1:* (UID FLAGS)")
					im.send("d LOGOUT")
					im.until("d OK")
					im.c.Close()
				} else {
					pc := dial(t, s.Addrs()["pop3"])
					pc.line()
					pc.send("USER alice")
					pc.line()
					pc.send("PASS secret")
					pc.line() // +OK or -ERR [IN-USE]
					pc.send("UIDL")
					pc.line()
					pc.send("QUIT")
					pc.c.Close()
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	rwg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	seen := make(map[string]bool)
	for _, u := range []string{"alice", "bob"} {
		snap, err := s.Store().Snapshot(u, "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range snap.Messages {
			i := strings.Index(string(m.Raw), "Message-ID: <")
			j := strings.IndexByte(string(m.Raw[i:]), '>')
			id := string(m.Raw[i : i+j])
			if seen[id] {
				t.Fatalf("duplicate %s", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != senders*perSession {
		t.Fatalf("delivered %d messages, want %d", len(seen), senders*perSession)
	}
	if time.Now().After(deadline) {
		t.Fatal("load test too slow")
	}
}

// TestCloseRightAfterStart: Close does not wait for ever when the servers'
// goroutines have not run yet.
func TestCloseRightAfterStart(t *testing.T) {
	for i := 0; i < 50; i++ {
		s, err := New(Options{SMTPAddr: "127.0.0.1:0", POP3Addr: "127.0.0.1:0", IMAPAddr: "127.0.0.1:0", Deterministic: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { s.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("Close hung on round %d", i)
		}
	}
}

// TestAuthBudgetAcrossProtocols: failed IMAP logins spend the address's
// budget for POP3 and SMTP too; after it, the right password is refused.
func TestAuthBudgetAcrossProtocols(t *testing.T) {
	s := testServer(t, func(o *Options) { o.AuthFailuresPerIP = 3 })
	a := s.Addrs()
	imap := dial(t, a["imap"])
	imap.line()
	for i := range 3 {
		imap.send(fmt.Sprintf("a%d LOGIN alice wrong", i))
		if l := imap.line(); !strings.HasPrefix(l, fmt.Sprintf("a%d NO [AUTHENTICATIONFAILED]", i)) {
			t.Fatal(l)
		}
	}
	imap.send("b LOGIN alice secret")
	if l := imap.line(); !strings.HasPrefix(l, "b NO [UNAVAILABLE]") {
		t.Fatalf("IMAP login after the budget: %q", l)
	}
	pop := dial(t, a["pop3"])
	pop.line()
	pop.send("USER alice")
	pop.line()
	pop.send("PASS secret")
	if l := pop.line(); !strings.HasPrefix(l, "-ERR [SYS/TEMP]") {
		t.Fatalf("POP3 login after the budget: %q", l)
	}
	smtp := dial(t, a["smtp"])
	smtp.line()
	smtp.send("EHLO x")
	for l := smtp.line(); strings.HasPrefix(l, "250-"); l = smtp.line() {
	}
	smtp.send("AUTH PLAIN AGFsaWNlAHNlY3JldA==")
	if l := smtp.line(); !strings.HasPrefix(l, "421 4.7.0") {
		t.Fatalf("SMTP AUTH after the budget: %q", l)
	}
}

// TestQuotaReplies: over a user's quota SMTP answers 552 5.2.2 (at RCPT
// when SIZE= says so, else after DATA) and IMAP NO [OVERQUOTA].
func TestQuotaReplies(t *testing.T) {
	s := testServer(t, func(o *Options) { o.QuotaBytes = 600 })
	a := s.Addrs()
	sm := dial(t, a["smtp"])
	sm.line()
	sm.send("EHLO x")
	sm.until("250 ")
	sm.send("MAIL FROM:<s@x> SIZE=700")
	sm.until("250 ")
	sm.send("RCPT TO:<alice@x>")
	if l := sm.line(); !strings.HasPrefix(l, "552 5.2.2") {
		t.Fatalf("RCPT with SIZE over quota: %q", l)
	}
	sm.send("RSET")
	sm.line()
	sm.send("MAIL FROM:<s@x>")
	sm.line()
	sm.send("RCPT TO:<alice@x>")
	sm.line()
	sm.send("DATA")
	sm.line()
	sm.send("Subject: big\r\n\r\n%s\r\n.", strings.Repeat("y", 600))
	if l := sm.line(); !strings.HasPrefix(l, "552 5.2.2") {
		t.Fatalf("DATA over quota: %q", l)
	}
	im := dial(t, a["imap"])
	im.line()
	im.send("a LOGIN alice secret")
	im.until("a OK")
	im.send("b APPEND INBOX {700+}\r\n%s", strings.Repeat("z", 700))
	if l := im.until("b "); !strings.HasPrefix(l[len(l)-1], "b NO [OVERQUOTA]") {
		t.Fatalf("APPEND over quota: %q", l)
	}
	im.send("c APPEND INBOX {400+}\r\n%s", strings.Repeat("z", 400))
	im.until("c OK")
	im.send("d SELECT INBOX")
	im.until("d OK")
	im.send("e COPY 1 Trash")
	if l := im.until("e "); !strings.HasPrefix(l[len(l)-1], "e NO [OVERQUOTA]") {
		t.Fatalf("COPY over quota: %q", l)
	}
}
