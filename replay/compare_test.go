package replay

import (
	"bytes"
	"crypto/tls"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailtap/mailtap/replay/server/mailstore"
)

// session loads the one session of a project capture.
func session(t *testing.T, pcap string) *Session {
	t.Helper()
	_, ss := loadPcap(t, pcap)
	if len(ss) != 1 {
		t.Fatalf("%s: %d sessions", pcap, len(ss))
	}
	return ss[0]
}

// compareEdited compares a captured session with itself after edit has
// changed the server bytes, as if a different server had answered.
func compareEdited(t *testing.T, s *Session, level string, ignores []string, edit func(server []byte) []byte) comparison {
	t.Helper()
	cc, err := NewCompareConfig(level, ignores, false)
	if err != nil {
		t.Fatal(err)
	}
	// The edit is applied to the greeting and to every turn's server
	// bytes, as a different server would have answered them.
	cp := *s
	changed := false
	cp.Greeting = edit(bytes.Clone(s.Greeting))
	changed = !bytes.Equal(cp.Greeting, s.Greeting)
	cp.Turns = nil
	for _, tr := range s.Turns {
		srv := edit(bytes.Clone(tr.Server))
		changed = changed || !bytes.Equal(srv, tr.Server)
		cp.Turns = append(cp.Turns, Turn{Client: tr.Client, Server: srv, At: tr.At})
	}
	if !changed {
		t.Fatal("the edit changed nothing")
	}
	want := observe(s, capturedEvents(s), true, nil)
	got := observe(&cp, capturedEvents(&cp), true, nil)
	return cc.compareObs(s.ID, string(s.Proto), want, got, nil, len(want)+len(got), newRunState())
}

// replaceOnce replaces old by new where found (at most once per turn).
func replaceOnce(t *testing.T, old, new string) func([]byte) []byte {
	return func(p []byte) []byte {
		if bytes.Count(p, []byte(old)) > 1 {
			t.Fatalf("%q found %d times in one turn", old, bytes.Count(p, []byte(old)))
		}
		return bytes.Replace(p, []byte(old), []byte(new), 1)
	}
}

// Unchanged server bytes compare equal at every level.
func TestCompareIdentical(t *testing.T) {
	for _, p := range []string{"real-dovecot-imaplib.pcap", "real-dovecot-poplib.pcap", "real-postfix-swaks-basic.pcap", "real-postfix-bdat.pcap"} {
		s := session(t, p)
		want := observe(s, capturedEvents(s), true, nil)
		cc, _ := NewCompareConfig(CompareFull, nil, false)
		c := cc.compareObs(s.ID, string(s.Proto), want, observe(s, capturedEvents(s), true, nil), nil, 1<<30, newRunState())
		if len(c.divs) != 0 || len(c.details) != 0 || c.matched != c.commands || c.commands != len(s.Commands)+1 {
			t.Errorf("%s: %+v", p, c)
		}
	}
}

// One byte of the attachment of message 2 changed in the FETCH BODY[]
// answer: the FETCH (command 6) diverges on that message's BODY[] hash,
// and nothing else does.
func TestCompareFetchBodyByte(t *testing.T) {
	s := session(t, "real-dovecot-imaplib.pcap")
	// The attachment is a base64 CSV part; change one character of it.
	c := compareEdited(t, s, CompareFull, nil, func(p []byte) []byte {
		i := bytes.Index(p, []byte("filename*=utf-8''%C3%9Cbersicht.csv"))
		if i < 0 {
			return p
		}
		j := i + bytes.Index(p[i:], []byte("\r\n\r\n")) + 4
		if p[j] == 'A' {
			p[j] = 'B'
		} else {
			p[j] = 'A'
		}
		return p
	})
	if len(c.divs) != 1 {
		t.Fatalf("%d divergences: %+v", len(c.divs), c.divs)
	}
	d := c.divs[0]
	if d.Index != 6 || d.Verb != "FETCH" || d.Field != "FETCH 2 BODY[]" || d.Kind != KindValue ||
		!strings.HasPrefix(d.Captured.(string), "sha256:2373f41ed130") || d.Replayed == d.Captured ||
		!strings.HasSuffix(d.Replayed.(string), "(1318 bytes)") {
		t.Errorf("%+v", d)
	}
	// --compare codes does not look at bodies.
	if c := compareEdited(t, s, CompareCodes, nil, replaceOnce(t, "Message three for bob.", "Message three for Bob.")); len(c.divs) != 0 {
		t.Errorf("codes: %+v", c.divs)
	}
}

// The server stops advertising STARTTLS and 8BITMIME: EHLO set divergence
// naming both as removed; --ignore smtp:EHLO:STARTTLS leaves 8BITMIME.
func TestCompareEHLOSet(t *testing.T) {
	s := session(t, "real-postfix-swaks-basic.pcap")
	edit := func(p []byte) []byte {
		p = replaceOnce(t, "250-STARTTLS\r\n", "")(p)
		return replaceOnce(t, "250-8BITMIME\r\n", "")(p)
	}
	c := compareEdited(t, s, CompareFull, nil, edit)
	if len(c.divs) != 1 {
		t.Fatalf("%+v", c.divs)
	}
	d := c.divs[0]
	if d.Index != 1 || d.Verb != "EHLO" || d.Field != "EHLO" || d.Kind != KindSet || len(d.Added) != 0 ||
		!slices.Equal(d.Removed, []string{"8BITMIME", "STARTTLS"}) {
		t.Errorf("%+v", d)
	}
	c = compareEdited(t, s, CompareFull, []string{"smtp:EHLO:STARTTLS"}, edit)
	if len(c.divs) != 1 || !slices.Equal(c.divs[0].Removed, []string{"8BITMIME"}) {
		t.Errorf("with the ignore rule: %+v", c.divs)
	}
	// Status level: EHLO still 250, no divergence.
	if c := compareEdited(t, s, CompareStatus, nil, edit); len(c.divs) != 0 {
		t.Errorf("status: %+v", c.divs)
	}
}

// 550 5.1.1 captured, 550 5.7.1 replayed: an enhanced code divergence
// (codes and full), not a status one.
func TestCompareEnhancedCode(t *testing.T) {
	s := session(t, "real-postfix-swaks-basic.pcap")
	s.Turns = slices.Clone(s.Turns)
	// The capture itself is turned into a 5.1.1 refusal first.
	for i, tr := range s.Turns {
		if bytes.HasPrefix(tr.Server, []byte("250 2.1.5 Ok")) {
			s.Turns[i].Server = []byte("550 5.1.1 <carol@example.test>: Recipient address rejected: User unknown\r\n")
		}
	}
	edit := replaceOnce(t, "550 5.1.1 <carol@example.test>: Recipient address rejected: User unknown", "550 5.7.1 <carol@example.test>: Relay access denied")
	for _, level := range []string{CompareCodes, CompareFull} {
		c := compareEdited(t, s, level, nil, edit)
		if len(c.divs) != 1 {
			t.Fatalf("%s: %+v", level, c.divs)
		}
		d := c.divs[0]
		if d.Index != 3 || d.Verb != "RCPT" || d.Field != "code" || d.Captured != "5.1.1" || d.Replayed != "5.7.1" {
			t.Errorf("%s: %+v", level, d)
		}
		if len(c.details) == 0 || c.details[len(c.details)-1].Verb != "RCPT" {
			t.Errorf("%s: text detail missing: %+v", level, c.details)
		}
	}
	if c := compareEdited(t, s, CompareStatus, nil, edit); len(c.divs) != 0 || len(c.details) != 1 {
		t.Errorf("status: %+v %+v", c.divs, c.details)
	}
}

// POP3 maildrop with messages 1 and 2 swapped on the built-in server
// (message 2, never retrieved in the capture, made a real message of
// its size first): RETR 1 and TOP 2 diverge on their hash, LIST on the
// sizes. Left a placeholder, message 2 served as RETR 1 is unverifiable.
func TestReplayPOP3Swapped(t *testing.T) {
	rs := replayAll(t, "real-dovecot-poplib.pcap", func(sd *Seed) {
		box := sd.Boxes["alice"]["INBOX"].Msgs
		m2 := bytes.Replace(box[0].Raw, []byte("Subject: "), []byte("Subject: [other] "), 1)
		box[1].Raw = m2
		box[0], box[1] = box[1], box[0]
	})
	r := rs[0]
	if !r.Failed() {
		t.Fatalf("%+v", r)
	}
	var retr, top bool
	for _, d := range r.Diverged {
		if d.Verb == "RETR" && d.Field == "RETR sha256" && d.Index == 6 && d.Kind == KindValue && d.Captured != d.Replayed {
			retr = true
		}
		if d.Verb == "TOP" && d.Field == "TOP sha256" && d.Index == 7 && d.Kind == KindValue {
			top = true
		}
	}
	if !retr || !top || r.Unverifiable != 0 {
		t.Errorf("no RETR/TOP hash divergence: %+v", r)
	}
	// As seeded, message 2 is a placeholder: TOP 2 is unverifiable, not
	// matched and not a divergence.
	r = replayAll(t, "real-dovecot-poplib.pcap", nil)[0]
	if r.Unverifiable != 2 || r.Unverified[0].Verb != "TOP" || r.Matched != r.Commands-1 {
		t.Errorf("placeholder: %+v", r)
	}
}

// IMAP untagged responses: a changed UIDVALIDITY is masked (the same
// within the session) unless --no-default-ignores; a SEARCH result and
// a LIST entry differences are named.
func TestCompareIMAPFields(t *testing.T) {
	s := session(t, "real-dovecot-imaplib.pcap")
	var uv string
	for _, l := range strings.Split(string(bytes.Join(turnsServer(s), nil)), "\r\n") {
		if strings.HasPrefix(l, "* OK [UIDVALIDITY ") && uv == "" {
			uv = strings.Fields(l)[3]
			uv = strings.TrimSuffix(uv, "]")
		}
	}
	if uv == "" {
		t.Fatal("no UIDVALIDITY")
	}
	edit := func(p []byte) []byte {
		return bytes.ReplaceAll(p, []byte(" "+uv), []byte(" 42"))
	}
	if c := compareEdited(t, s, CompareFull, nil, edit); len(c.divs) != 0 {
		t.Errorf("UIDVALIDITY changed the same way everywhere: %+v", c.divs)
	}
	cc, _ := NewCompareConfig(CompareFull, nil, true)
	want := observe(s, capturedEvents(s), true, nil)
	cp := *s
	cp.Turns = nil
	for _, tr := range s.Turns {
		cp.Turns = append(cp.Turns, Turn{Client: tr.Client, Server: edit(bytes.Clone(tr.Server))})
	}
	got := observe(&cp, capturedEvents(&cp), true, nil)
	c := cc.compareObs(1, "imap", want, got, nil, 1<<30, newRunState())
	if len(c.divs) == 0 || c.divs[0].Field != "UIDVALIDITY" || c.divs[0].Replayed != "42" {
		t.Errorf("--no-default-ignores: %+v", c.divs)
	}

	c = compareEdited(t, s, CompareFull, nil, replaceOnce(t, "* SEARCH 1 2 3\r\n", "* SEARCH 1 3 4\r\n"))
	if len(c.divs) != 1 || c.divs[0].Verb != "SEARCH" || c.divs[0].Field != "SEARCH" || c.divs[0].Index != 7 ||
		!slices.Equal(c.divs[0].Added, []string{"4"}) || !slices.Equal(c.divs[0].Removed, []string{"2"}) {
		t.Errorf("SEARCH: %+v", c.divs)
	}
	c = compareEdited(t, s, CompareFull, nil, replaceOnce(t, `* LIST (\HasNoChildren \Trash) "/" Trash`, `* LIST (\HasNoChildren) "/" Trash`))
	if len(c.divs) != 1 || c.divs[0].Field != "LIST Trash" || c.divs[0].Kind != KindSet {
		t.Errorf("LIST: %+v", c.divs)
	}
}

func turnsServer(s *Session) [][]byte {
	out := [][]byte{s.Greeting}
	for _, t := range s.Turns {
		out = append(out, t.Server)
	}
	return out
}

func TestIgnoreRules(t *testing.T) {
	for _, bad := range []string{"", "imap:", "a:b:c:d", "text:nosuchmask", "imap:CAPABILITY:"} {
		if _, err := NewCompareConfig(CompareFull, []string{bad}, false); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := NewCompareConfig("all", nil, false); err == nil {
		t.Error("--compare all accepted")
	}
	s := session(t, "real-dovecot-imaplib.pcap")
	edit := func(p []byte) []byte { return bytes.ReplaceAll(p, []byte(" ID ENABLE "), []byte(" ENABLE ")) }
	if c := compareEdited(t, s, CompareFull, nil, edit); len(c.divs) == 0 || !slices.Equal(c.divs[0].Removed, []string{"ID"}) {
		t.Errorf("CAPABILITY without ID: %+v", c.divs)
	}
	if c := compareEdited(t, s, CompareFull, []string{"imap:CAPABILITY:ID"}, edit); len(c.divs) != 0 {
		t.Errorf("ignored: %+v", c.divs)
	}
	// text masks: a timing in a reply text is no detail by default.
	c := compareEdited(t, s, CompareFull, nil, replaceOnce(t, "Search completed (0.001 + 0.000 secs).", "Search completed (0.009 + 0.000 secs)."))
	if len(c.divs) != 0 || len(c.details) != 0 {
		t.Errorf("timing masked: %+v %+v", c.divs, c.details)
	}
	c = compareEdited(t, s, CompareFull, []string{"text"}, replaceOnce(t, "Search completed", "Searched"))
	if len(c.details) != 0 {
		t.Errorf("--ignore text: %+v", c.details)
	}
}

// A server that answers later than the timeout: a timeout divergence on
// that command; one that never answers: the session is abandoned and
// nothing more is sent.
func TestReplayTimeout(t *testing.T) {
	s := session(t, "real-postfix-swaks-basic.pcap")
	for _, delay := range []time.Duration{300 * time.Millisecond, 1500 * time.Millisecond} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		received := make(chan []byte, 1)
		go slowSMTP(ln, delay, received)
		// Late: answered 200 ms after the timeout, waited for up to 1.5 s
		// more. Never (for this session): 1.4 s late, waited for 300 ms.
		abandon := 1500 * time.Millisecond
		if delay > time.Second {
			abandon = 300 * time.Millisecond
		}
		r := Replay(s, ln.Addr().String(), Options{Timeout: 100 * time.Millisecond, Abandon: abandon})
		ln.Close()
		if !r.Failed() || r.Timeouts != 1 || len(r.Diverged) == 0 {
			t.Fatalf("delay %s: %+v", delay, r)
		}
		d := r.Diverged[0]
		if d.Kind != KindTimeout || d.Verb != "MAIL" || d.Index != 2 {
			t.Errorf("delay %s: first divergence %+v", delay, d)
		}
		got := <-received
		if delay > time.Second {
			if !r.Abandoned || bytes.Contains(got, []byte("RCPT")) {
				t.Errorf("abandoned session sent on: %q %+v", got, r)
			}
		} else if r.Abandoned || !bytes.Contains(got, []byte("QUIT")) {
			t.Errorf("late answer: the session must go on: %q %+v", got, r)
		}
	}
}

// slowSMTP answers one connection like a small SMTP server, but delays
// the answer to MAIL; it reports what the client sent.
func slowSMTP(ln net.Listener, delay time.Duration, received chan<- []byte) {
	c, err := ln.Accept()
	if err != nil {
		received <- nil
		return
	}
	defer c.Close()
	var all []byte
	c.Write([]byte("220 mail.example.test ESMTP Postfix\r\n"))
	buf := make([]byte, 4096)
	data := false
	c.SetDeadline(time.Now().Add(10 * time.Second))
	for {
		n, err := c.Read(buf)
		all = append(all, buf[:n]...)
		for _, l := range strings.Split(string(buf[:n]), "\r\n") {
			switch {
			case data:
				if l == "." {
					data = false
					c.Write([]byte("250 2.0.0 Ok: queued as ABC\r\n"))
				}
			case strings.HasPrefix(l, "EHLO"):
				c.Write([]byte("250-mail.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"))
			case strings.HasPrefix(l, "MAIL"):
				time.Sleep(delay)
				c.Write([]byte("250 2.1.0 Ok\r\n"))
			case strings.HasPrefix(l, "RCPT"):
				c.Write([]byte("250 2.1.5 Ok\r\n"))
			case l == "DATA":
				data = true
				c.Write([]byte("354 End data with <CR><LF>.<CR><LF>\r\n"))
			case l == "QUIT":
				c.Write([]byte("221 2.0.0 Bye\r\n"))
				received <- all
				return
			}
		}
		if err != nil {
			received <- all
			return
		}
	}
}

func TestParsePace(t *testing.T) {
	for in, want := range map[string]float64{"original": 1, "fast": 0, "2x": 2, "0.5x": 0.5} {
		if got, err := ParsePace(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	for _, bad := range []string{"2", "x", "-1x", "slow"} {
		if _, err := ParsePace(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// --skip DELE: the DELE is not sent (the message stays on the server),
// and the rest of the session matches, QUIT's deleted set included.
func TestReplaySkipVerb(t *testing.T) {
	rec, ss := loadPcap(t, "real-dovecot-poplib.pcap")
	srv, addrs, err := StartServer(rec.Seed(ss), Protos(ss)...)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cc, _ := NewCompareConfig(CompareCodes, nil, false)
	r := Replay(ss[0], addrs[ss[0].Proto], Options{Compare: cc, Skip: map[string]bool{"DELE": true}})
	if r.Failed() || r.Commands != 9 || r.Matched != 9 {
		t.Errorf("%+v", r)
	}
	snap, err := srv.Store().Snapshot("alice", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Messages) != 3 {
		t.Errorf("%d messages left, want 3 (DELE skipped)", len(snap.Messages))
	}
}

// Sessions run at their captured times: the IMAP IDLE of session 1 sees
// the EXISTS of the delivery SMTP session 15 made during it. Sent as
// fast as possible one at a time, the IDLE is over before the delivery.
func TestRunPaceIDLE(t *testing.T) {
	for _, speed := range []float64{1, 0} {
		rec, ss := loadPcap(t, "real-dovecot-imap-idle.pcap")
		srv, addrs, err := StartServer(rec.Seed(ss), Protos(ss)...)
		if err != nil {
			t.Fatal(err)
		}
		var rs []*Result
		conc := 8
		if speed == 0 {
			conc = 1
		}
		sm, err := Run(ss, RunConfig{Speed: speed, Concurrency: conc, Target: func(s *Session) Target { return Target{Addr: addrs[s.Proto]} }},
			func(r *Result) error { rs = append(rs, r); return nil })
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		if sm.Sessions != 3 || sm.Compared != 3 || len(rs) != 3 || rs[0].Session != 1 || rs[1].Session != 15 || rs[2].Session != 39 {
			t.Fatalf("speed %v: %+v", speed, sm)
		}
		var idleExists bool
		for _, d := range rs[0].Diverged {
			if d.Verb == "IDLE" && d.Field == "untagged" && d.Kind == KindMissing {
				idleExists = true
			}
		}
		if speed == 1 && idleExists {
			t.Errorf("paced: IDLE saw no untagged response: %+v", rs[0].Diverged)
		}
		if speed == 0 && !idleExists {
			t.Errorf("fast: IDLE saw the delivery anyway: %+v", rs[0].Diverged)
		}
		if l := sm.Latency["imap"]; l == nil || l.Commands == 0 || l.CapturedP99 < 1000 {
			t.Errorf("latency %+v", sm.Latency)
		}
	}
}

// Against the built-in server, an accepted DATA is checked to have
// delivered the captured message (the server's Received line aside).
func TestCompareDelivered(t *testing.T) {
	rec, ss := loadPcap(t, "real-postfix-swaks-basic.pcap")
	s := ss[0]
	raw := rec.message(s.mails[0].Message.SHA256)
	if raw == nil {
		t.Fatal("captured message not kept")
	}
	cc, _ := NewCompareConfig(CompareFull, nil, false)
	for _, tc := range []struct {
		delivered []byte
		ok        bool
	}{
		{append([]byte("Received: from client.example.org\r\n\tby mailtap.test with ESMTP id 1\r\n"), raw...), true},
		{append([]byte("Received: from client.example.org\r\n"), bytes.Replace(raw, []byte("Subject:"), []byte("Subject: [changed]"), 1)...), false},
	} {
		st, err := mailstore.New(mailstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.AddUser("carol", "x"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Deliver("carol", tc.delivered); err != nil {
			t.Fatal(err)
		}
		want := observe(s, capturedEvents(s), true, nil)
		got := observe(s, capturedEvents(s), true, nil)
		checkDelivered(s, want, got, st)
		c := cc.compareObs(s.ID, "smtp", want, got, nil, 1<<30, newRunState())
		if tc.ok && len(c.divs) != 0 {
			t.Errorf("delivered intact: %+v", c.divs)
		}
		if !tc.ok && (len(c.divs) != 1 || c.divs[0].Field != "delivered sha256" || c.divs[0].Verb != "DATA" || c.divs[0].Index != 4 ||
			c.divs[0].Captured != "sha256:"+s.mails[0].Message.SHA256) {
			t.Errorf("delivered changed: %+v", c.divs)
		}
	}
}

// A STARTTLS session replays its cleartext part, upgrades with the
// target, and stops there: tls_not_decrypted, what came before compared.
func TestReplaySTARTTLSStops(t *testing.T) {
	for _, pcap := range []string{"gen-smtp-starttls.pcap", "gen-pop3-stls.pcap", "gen-imap-starttls.pcap"} {
		rec, ss := loadPcap(t, pcap)
		srv, addrs, err := StartServer(rec.Seed(ss), Protos(ss)...)
		if err != nil {
			t.Fatal(err)
		}
		cc, _ := NewCompareConfig(CompareStatus, nil, false)
		r := Replay(ss[0], addrs[ss[0].Proto], Options{Compare: cc, TLSConfig: &tls.Config{InsecureSkipVerify: true}})
		srv.Close()
		if r.Stopped != "tls_not_decrypted" || r.Error != "" || r.Skipped != "" || r.Commands < 2 || r.Failed() {
			t.Errorf("%s: %+v", pcap, r)
		}
		sm := NewSummary(1)
		sm.Add(r)
		if sm.Compared != 1 || sm.Stopped["tls_not_decrypted"] != 1 {
			t.Errorf("%s: summary %+v", pcap, sm)
		}
		// The built-in server's certificate is not trusted by default.
		srv, addrs, err = StartServer(rec.Seed(ss), Protos(ss)...)
		if err != nil {
			t.Fatal(err)
		}
		r = Replay(ss[0], addrs[ss[0].Proto], Options{Compare: cc})
		srv.Close()
		if !strings.Contains(r.Error, "certificate") || !r.Failed() {
			t.Errorf("%s: unchecked certificate accepted: %+v", pcap, r)
		}
	}
}
