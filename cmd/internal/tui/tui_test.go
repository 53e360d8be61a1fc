package tui

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"

	"github.com/mailtap/mailtap/capture"
	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/dispatch"
	"github.com/mailtap/mailtap/decode/imap"
	"github.com/mailtap/mailtap/decode/pop3"
	"github.com/mailtap/mailtap/decode/smtp"
)

// repoPcap and corpusPcap locate real captures: the repo's pcaps/ and the
// shared third-party corpus (the test skips when it is absent).
func repoPcap(name string) string { return filepath.Join("..", "..", "..", "pcaps", name) }

func corpusPcap(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join("..", "..", "..", "..", "shared", "corpus", name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("third-party corpus not available: %v", err)
	}
	return p
}

// decodeFile runs the read pipeline (commands level, as mailtap tui does)
// over one capture into m, message bodies into m's spill.
func decodeFile(t *testing.T, path string, m *Model, showSecrets bool) {
	t.Helper()
	src, err := capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	o := decode.Options{Level: decode.LevelCommands, ShowSecrets: showSecrets}
	if sp := m.Spill(); sp != nil {
		o.Messages = sp
	}
	disp := dispatch.New(dispatch.Config{
		Sniff:   true,
		Sink:    m,
		Options: o,
		Protocols: map[decode.Proto]dispatch.NewFunc{
			decode.ProtoSMTP: func(c decode.ConnInfo, o decode.Options, s decode.Sink) decode.Decoder { return smtp.New(c, o, s) },
			decode.ProtoPOP3: func(c decode.ConnInfo, o decode.Options, s decode.Sink) decode.Decoder { return pop3.New(c, o, s) },
			decode.ProtoIMAP: func(c decode.ConnInfo, o decode.Options, s decode.Sink) decode.Decoder { return imap.New(c, o, s) },
		},
	})
	eng := capture.New(capture.Config{ServerPort: disp.IsServerPort}, disp)
	if err := eng.Run(src, nil); err != nil {
		t.Fatal(err)
	}
	m.SetStats(Stats{Packets: eng.Stats().Packets})
}

// loadModel decodes paths into a new model with a spill.
func loadModel(t *testing.T, paths ...string) *Model {
	t.Helper()
	m := NewModel(0, 0)
	sp, err := NewSpill(t.TempDir(), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	m.SetSpill(sp)
	for _, p := range paths {
		decodeFile(t, p, m, false)
	}
	m.Finish(nil)
	return m
}

func simScreen(t *testing.T, w, h int) tcell.SimulationScreen {
	t.Helper()
	s := tcell.NewSimulationScreen("UTF-8")
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Fini)
	s.SetSize(w, h)
	return s
}

// screenRows returns what s shows, one string per row. Call it only when
// nothing draws on s at the same time (see liveScreenRows).
func screenRows(s tcell.SimulationScreen) []string {
	cells, w, h := s.GetContents()
	return rowsOf(cells, w, h)
}

// liveScreenRows is screenRows while another goroutine may draw: the
// simulation screen hands out its live cell slice, so the cells are copied
// under the lock its Show holds while drawing.
func liveScreenRows(s tcell.SimulationScreen) []string {
	l, ok := s.(sync.Locker)
	if !ok {
		panic("the simulation screen has no lock")
	}
	cells, w, h := s.GetContents() // takes and releases the lock itself
	l.Lock()
	cp := append([]tcell.SimCell(nil), cells...)
	for i := range cp {
		cp[i].Runes = append([]rune(nil), cp[i].Runes...)
	}
	l.Unlock()
	return rowsOf(cp, w, h)
}

func rowsOf(cells []tcell.SimCell, w, h int) []string {
	rows := make([]string, h)
	for y := 0; y < h; y++ {
		var b strings.Builder
		for x := 0; x < w; x++ {
			c := cells[y*w+x]
			if len(c.Runes) == 0 {
				continue // the second cell of a wide character
			}
			b.WriteString(string(c.Runes))
		}
		rows[y] = b.String()
	}
	return rows
}

// cellStyle returns the style of the first cell of row y where sub
// starts.
func cellStyle(t *testing.T, s tcell.SimulationScreen, y int, sub string) tcell.Style {
	t.Helper()
	cells, w, _ := s.GetContents()
	var text strings.Builder
	var xs []int // cell of each byte of text
	for x := 0; x < w; x++ {
		c := cells[y*w+x]
		for _, r := range string(c.Runes) {
			n, _ := text.WriteRune(r)
			for k := 0; k < n; k++ {
				xs = append(xs, x)
			}
		}
	}
	i := strings.Index(text.String(), sub)
	if i < 0 {
		t.Fatalf("row %d has no %q", y, sub)
	}
	return cells[y*w+xs[i]].Style
}

// press sends a key through the screen's event queue and hands the event
// the UI loop would get to v, then redraws: no timing involved.
func press(t *testing.T, s tcell.SimulationScreen, v *View, k tcell.Key, r rune) {
	t.Helper()
	s.InjectKey(k, r, tcell.ModNone)
	ev, ok := s.PollEvent().(*tcell.EventKey)
	if !ok {
		t.Fatal("injected key did not come back as *tcell.EventKey")
	}
	v.HandleKey(ev)
	v.Draw(s)
}

func typeString(t *testing.T, s tcell.SimulationScreen, v *View, str string) {
	t.Helper()
	for _, r := range str {
		press(t, s, v, tcell.KeyRune, r)
	}
}

// mouse sends a mouse event through the queue to v, then redraws.
func mouse(t *testing.T, s tcell.SimulationScreen, v *View, x, y int, b tcell.ButtonMask) {
	t.Helper()
	s.InjectMouse(x, y, b, tcell.ModNone)
	ev, ok := s.PollEvent().(*tcell.EventMouse)
	if !ok {
		t.Fatal("injected mouse event did not come back as *tcell.EventMouse")
	}
	v.HandleMouse(ev)
	v.Draw(s)
}

// rowWith returns the first row containing sub, or -1.
func rowWith(rows []string, sub string) int {
	for i, r := range rows {
		if strings.Contains(r, sub) {
			return i
		}
	}
	return -1
}

func mustShow(t *testing.T, rows []string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if rowWith(rows, sub) < 0 {
			t.Errorf("screen does not show %q:\n%s", sub, strings.Join(rows, "\n"))
		}
	}
}

func mustNotShow(t *testing.T, rows []string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if i := rowWith(rows, sub); i >= 0 {
			t.Errorf("screen shows %q on row %d:\n%s", sub, i, strings.Join(rows, "\n"))
		}
	}
}

// selectSession moves the table's selection to the session with id.
func selectSession(t *testing.T, s tcell.SimulationScreen, v *View, id uint64) {
	t.Helper()
	press(t, s, v, tcell.KeyHome, 0)
	for i := 0; i < len(v.rows); i++ {
		if sel := v.Selected(); sel != nil && sel.ID == id {
			return
		}
		press(t, s, v, tcell.KeyDown, 0)
	}
	t.Fatalf("session #%d not in the table", id)
}

// scrollUntil presses key until the screen shows sub (at most n times)
// and returns the row.
func scrollUntil(t *testing.T, s tcell.SimulationScreen, v *View, k tcell.Key, sub string, n int) int {
	t.Helper()
	for i := 0; i <= n; i++ {
		if y := rowWith(screenRows(s), sub); y >= 0 {
			return y
		}
		press(t, s, v, k, 0)
	}
	t.Fatalf("%q not reached after %d presses:\n%s", sub, n, strings.Join(screenRows(s), "\n"))
	return -1
}

var sizes = []struct{ w, h int }{{80, 24}, {200, 60}}

func TestModelSessions(t *testing.T) {
	m := loadModel(t, repoPcap("real-postfix-auth.pcap"))
	sn := m.Snapshot(nil, 18)
	if sn.Total != 3 || len(sn.Sessions) != 3 || !sn.Done || sn.Messages != 2 {
		t.Fatalf("total %d, listed %d, done %v, messages %d; want 3 sessions, 2 messages, done", sn.Total, len(sn.Sessions), sn.Done, sn.Messages)
	}
	want := []struct {
		id      uint64
		fail    bool
		what    string
		subject string
	}{
		{1, true, "", ""},
		{18, false, "carol@example.test → carol@example.test", "sent after AUTH PLAIN"},
		{47, false, "carol@example.test → carol@example.test", "sent after AUTH LOGIN"},
	}
	for i, w := range want {
		s := sn.Sessions[i]
		if s.ID != w.id || s.User != "carol" || s.AuthFailed != w.fail || s.State != decode.StateComplete ||
			!strings.HasPrefix(s.What, w.what) || s.Subject != w.subject || s.Start.IsZero() {
			t.Errorf("session %d = id %d user %q failed %v state %q what %q subject %q start %v", i, s.ID, s.User, s.AuthFailed, s.State, s.What, s.Subject, s.Start)
		}
	}
	sel := sn.Sessions[sn.Selected]
	if sel.ID != 18 || len(sel.Messages) != 1 || !sel.Messages[0].Body.Kept() || len(sel.Steps) < 6 {
		t.Fatalf("selected #%d: %d messages, %d steps", sel.ID, len(sel.Messages), len(sel.Steps))
	}
	raw, err := m.Spill().Read(sel.Messages[0].Body, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != sel.Messages[0].SHA256 {
		t.Errorf("spilled body sha256 %x, record says %s", sum, sel.Messages[0].SHA256)
	}
}

func TestModelWhat(t *testing.T) {
	m := loadModel(t, repoPcap("real-dovecot-pop3-fetchmail.pcap"), repoPcap("real-dovecot-imaplib.pcap"))
	var pop, im *Session
	sn := m.Snapshot(nil, 0)
	for i := range sn.Sessions {
		s := &sn.Sessions[i]
		if s.Proto == decode.ProtoPOP3 {
			pop = s
		}
		if s.Proto == decode.ProtoIMAP && strings.Contains(s.What, "SELECT") {
			im = s
		}
	}
	// fetchmail fetches with TOP.
	if pop == nil || !strings.HasPrefix(pop.What, "top 1 dele 1 top 2") {
		t.Errorf("no POP3 session with \"top 1 dele 1 top 2 ...\": %+v", sn.Sessions)
	}
	if im == nil || !strings.Contains(im.What, "SELECT INBOX") || !strings.Contains(im.What, "FETCH") {
		t.Errorf("no IMAP session with \"SELECT INBOX, ... FETCH\": %+v", sn.Sessions)
	}
}

func TestFilter(t *testing.T) {
	m := loadModel(t, repoPcap("real-postfix-auth.pcap"), repoPcap("gen-pop3-auth.pcap"),
		repoPcap("real-dovecot-imaplib.pcap"), repoPcap("real-postfix-swaks-basic.pcap"), repoPcap("gen-smtp-smuggle.pcap"))
	count := func(f string) int { return len(m.Snapshot(ParseFilter(f), 0).Sessions) }
	total := m.Len()
	for _, tc := range []struct {
		f    string
		want func(s *Session) bool
	}{
		{"proto:imap", func(s *Session) bool { return s.Proto == decode.ProtoIMAP }},
		{"proto:pop3 auth:fail", func(s *Session) bool { return s.Proto == decode.ProtoPOP3 && s.AuthFailed }},
		{"user:carol", func(s *Session) bool { return strings.Contains(s.User, "carol") }},
		{"auth:fail", func(s *Session) bool { return s.AuthFailed }},
		{"-auth:fail proto:smtp", func(s *Session) bool { return !s.AuthFailed && s.Proto == decode.ProtoSMTP }},
		{"has:attachment", func(s *Session) bool { return s.HasAttachment }},
		{"has:anomaly", func(s *Session) bool { return s.NAnomalies > 0 }},
		{"subject:\"after AUTH\"", func(s *Session) bool { return strings.Contains(s.Subject, "after AUTH") }},
	} {
		want := 0
		sn := m.Snapshot(nil, 0)
		for i := range sn.Sessions {
			if tc.want(&sn.Sessions[i]) {
				want++
			}
		}
		if got := count(tc.f); got != want || want == 0 || want == total {
			t.Errorf("%q matches %d of %d, want %d (and some, not all)", tc.f, got, total, want)
		}
	}
	if n := count("state:complete"); n != total {
		t.Errorf("state:complete matches %d of %d", n, total)
	}
	if n := count("state:open"); n != 0 {
		t.Errorf("state:open matches %d after the end", n)
	}
	if n := count("from:carol@example.test to:carol@example.test"); n != 2 {
		t.Errorf("from:/to: carol matches %d, want the 2 mails", n)
	}
	if n := count("carol proto:smtp auth:ok"); n != 2 {
		t.Errorf("free word + keys match %d, want 2", n)
	}
	var anom string
	for _, a := range m.Anomalies(nil) {
		anom = a.Text
	}
	word := strings.FieldsFunc(anom, func(r rune) bool { return r == ' ' || r == ':' || r == '(' })[0]
	if n := count("anomaly:" + word); n == 0 || n == total {
		t.Errorf("anomaly:%s matches %d of %d", word, n, total)
	}
	if f := ParseFilter("auth:maybe"); len(f.Errs) != 1 {
		t.Errorf("auth:maybe: errs %v", f.Errs)
	}
}

func TestModelBounded(t *testing.T) {
	m := NewModel(2, 5)
	decodeFile(t, repoPcap("real-postfix-auth.pcap"), m, false)
	sn := m.Snapshot(nil, 47)
	if sn.Total != 2 || sn.Dropped != 1 || sn.Sessions[0].ID != 18 {
		t.Fatalf("total %d dropped %d first #%d; want the 2 newest", sn.Total, sn.Dropped, sn.Sessions[0].ID)
	}
	sel := sn.Sessions[sn.Selected]
	if len(sel.Steps) != 5 || sel.DroppedSteps == 0 {
		t.Errorf("steps %d dropped %d; want 5 kept", len(sel.Steps), sel.DroppedSteps)
	}
}

func TestSpillBounded(t *testing.T) {
	m := NewModel(0, 0)
	sp, err := NewSpill(t.TempDir(), 300, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	m.SetSpill(sp)
	decodeFile(t, repoPcap("real-postfix-auth.pcap"), m, false)
	if sp.Size() > 300 || sp.Full() != 1 {
		t.Fatalf("spill %d bytes, %d not kept; want <= 300 and the second 208-byte body refused", sp.Size(), sp.Full())
	}
	sn := m.Snapshot(nil, 47)
	msg := sn.Sessions[sn.Selected].Messages[0]
	if msg.Body.Kept() || !msg.Body.Cut {
		t.Fatalf("second body: kept %v cut %v", msg.Body.Kept(), msg.Body.Cut)
	}
	s := simScreen(t, 80, 24)
	v := NewView(m)
	v.Draw(s)
	selectSession(t, s, v, 47)
	press(t, s, v, tcell.KeyRune, 'm')
	mustShow(t, screenRows(s), "spill was full", "1 bodies not kept")
}

func TestModelSignalCoalesces(t *testing.T) {
	m := NewModel(0, 0)
	decodeFile(t, repoPcap("real-postfix-auth.pcap"), m, false)
	select {
	case <-m.Changed():
	default:
		t.Fatal("no change signalled")
	}
	select {
	case <-m.Changed():
		t.Fatal("changes not coalesced into one token")
	default:
	}
}

// TestSessionTable: the table at both sizes, user column whole, failed
// logins marked in red, the address never cut.
func TestSessionTable(t *testing.T) {
	m := loadModel(t, repoPcap("real-postfix-auth.pcap"), corpusPcap(t, "zeek/pop3/pop3.pcap"))
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d", sz.w, sz.h), func(t *testing.T) {
			s := simScreen(t, sz.w, sz.h)
			v := NewView(m)
			v.Draw(s)
			rows := screenRows(s)
			mustShow(t, rows, "proto", "client", "user", "Sessions 8")
			addr := "127.0.0.1:44316 → 127.0.0.1:25"
			if sz.w < 100 {
				addr = "127.0.0.1:44316 " // the client column only: whole
			}
			y := rowWith(rows, addr)
			if y < 0 || !strings.Contains(rows[y], "carol ✗") {
				t.Fatalf("session #1 row lacks the whole address or \"carol ✗\":\n%s", strings.Join(rows, "\n"))
			}
			// Selected rows are reversed: look at one that is not.
			if fg, _, _ := cellStyle(t, s, y, "carol").Decompose(); fg != tcell.ColorRed {
				t.Errorf("failed login not red: %v", fg)
			}
			// The POP3 user is 35 characters: whole at 80 columns too.
			long := "digitalinvestigator@networksims.com"
			n := 0
			for _, r := range rows {
				if strings.Contains(r, long+" ✓") || strings.Contains(r, long+" ✗") {
					n++
				}
			}
			if n == 0 {
				t.Errorf("POP3 user not whole:\n%s", strings.Join(rows, "\n"))
			}
			// The POP3 session whose PLAIN login failed is marked.
			if y := rowWith(rows, "192.168.0.4:26284"); y < 0 || !strings.Contains(rows[y], long+" ✗") {
				t.Errorf("failed POP3 PLAIN login not marked:\n%s", strings.Join(rows, "\n"))
			}
			if sz.w >= 200 {
				mustShow(t, rows, "what happened", "subject", "state", "anom", "carol@example.test → carol@example.test", "sent after AUTH PLAIN", "retr 1")
			}
			for _, r := range rows {
				if len([]rune(r)) > sz.w {
					t.Errorf("row wider than the screen: %q", r)
				}
			}
		})
	}
}

func TestSort(t *testing.T) {
	m := loadModel(t, repoPcap("real-postfix-auth.pcap"), repoPcap("gen-pop3-auth.pcap"))
	s := simScreen(t, 200, 60)
	v := NewView(m)
	v.Draw(s)
	// Click the "user" header: sort by user, then again: reversed.
	x := strings.Index(screenRows(s)[1], "user")
	mouse(t, s, v, len([]rune(screenRows(s)[1][:x])), 1, tcell.Button1)
	users := func() []string {
		var out []string
		for _, r := range v.rows {
			out = append(out, r.User)
		}
		return out
	}
	u := users()
	for i := 1; i < len(u); i++ {
		if u[i-1] > u[i] {
			t.Fatalf("not sorted by user: %q", u)
		}
	}
	if !strings.Contains(screenRows(s)[1], "user▲") {
		t.Errorf("header lacks the sort mark: %q", screenRows(s)[1])
	}
	mouse(t, s, v, len([]rune(screenRows(s)[1][:x])), 1, tcell.Button1)
	u = users()
	for i := 1; i < len(u); i++ {
		if u[i-1] < u[i] {
			t.Fatalf("not reverse sorted by user: %q", u)
		}
	}
	// The selection follows its session through a sort.
	selectSession(t, s, v, 1)
	press(t, s, v, tcell.KeyRune, 's')
	if v.Selected().ID != 1 {
		t.Errorf("selection moved to #%d", v.Selected().ID)
	}
}

func TestFilterBox(t *testing.T) {
	m := loadModel(t, repoPcap("real-postfix-auth.pcap"), repoPcap("gen-pop3-auth.pcap"))
	s := simScreen(t, 80, 24)
	v := NewView(m)
	v.Draw(s)
	press(t, s, v, tcell.KeyRune, '/')
	typeString(t, s, v, "auth:fail")
	rows := screenRows(s)
	n := m.Len()
	mustShow(t, rows, "filter: auth:fail", fmt.Sprintf(" 2 of %d ", n))
	mustNotShow(t, rows, "bob ✓")
	press(t, s, v, tcell.KeyEnter, 0)
	mustShow(t, screenRows(s), fmt.Sprintf(`filter "auth:fail": 2 of %d`, n))
	press(t, s, v, tcell.KeyEsc, 0)
	mustShow(t, screenRows(s), fmt.Sprintf("Sessions %d", n), "bob ✓")
}

// TestTranscript: the ladder, pipelined marks, latencies, and a folded
// message that opens.
func TestTranscript(t *testing.T) {
	m := loadModel(t, repoPcap("real-postfix-swaks-pipelining.pcap"))
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d", sz.w, sz.h), func(t *testing.T) {
			s := simScreen(t, sz.w, sz.h)
			v := NewView(m)
			v.Draw(s)
			press(t, s, v, tcell.KeyEnter, 0)
			rows := screenRows(s)
			y := rowWith(rows, "MAIL FROM:")
			if y < 0 {
				t.Fatalf("no MAIL FROM in the ladder:\n%s", strings.Join(rows, "\n"))
			}
			if !strings.Contains(rows[y], "┃") || !strings.Contains(rows[y], "250") {
				t.Errorf("pipelined MAIL FROM row lacks the mark or the reply: %q", rows[y])
			}
			// The client's line is left of the server's.
			if strings.Index(rows[y], "MAIL FROM") > strings.Index(rows[y], "250") {
				t.Errorf("client not left of server: %q", rows[y])
			}
			if sz.w >= 200 && !strings.Contains(rows[y], "ms") {
				t.Errorf("no latency on %q", rows[y])
			}
			fy := rowWith(rows, "▸ MAIL #1")
			if fy < 0 {
				t.Fatalf("no folded message:\n%s", strings.Join(rows, "\n"))
			}
			// Click the fold twice: select, then open.
			mouse(t, s, v, 12, fy, tcell.Button1)
			mouse(t, s, v, 12, fy, tcell.Button1)
			rows = screenRows(s)
			mustShow(t, rows, "▾ MAIL #1", "Subject:")
			press(t, s, v, tcell.KeyRune, 'm')
			mustShow(t, screenRows(s), "MIME tree", "MAIL FROM")
		})
	}
}

// TestMessageView: headers, every part of the MIME tree, the decoded text,
// the attachment reachable by scrolling at 80x24, and saving it.
func TestMessageView(t *testing.T) {
	m := loadModel(t, corpusPcap(t, "zeek/smtp/smtp.pcap"))
	var id uint64
	var rec *Message
	sn := m.Snapshot(nil, 0)
	for _, s := range sn.Sessions {
		if s.HasAttachment {
			id = s.ID
		}
	}
	sn = m.Snapshot(nil, id)
	for i := range sn.Sessions[sn.Selected].Messages {
		if mm := &sn.Sessions[sn.Selected].Messages[i]; mm.Message != nil && len(mm.Attachments) > 0 {
			rec = mm
		}
	}
	if rec == nil {
		t.Fatal("no message with an attachment in zeek/smtp")
	}
	att := rec.Attachments[0]
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d", sz.w, sz.h), func(t *testing.T) {
			dir := t.TempDir()
			s := simScreen(t, sz.w, sz.h)
			v := NewView(m)
			v.Draw(s)
			selectSession(t, s, v, id)
			press(t, s, v, tcell.KeyRune, 'm')
			rows := screenRows(s)
			mustShow(t, rows, "Subject: "+rec.Subject, "MAIL FROM")
			// Every part: the parse lists them; each has its line.
			p, err := v.parse()
			if err != nil {
				t.Fatal(err)
			}
			// The Wireshark-wiki mail: multipart/mixed of a
			// multipart/alternative (text, html) and NEWS.txt.
			var tree []string
			for _, pt := range p.Parts {
				tree = append(tree, pt.Path+" "+pt.ContentType+" "+pt.Filename)
			}
			want := "1 multipart/mixed |1.1 multipart/alternative |1.1.1 text/plain |1.1.2 text/html |1.2 text/plain NEWS.txt"
			if got := strings.Join(tree, "|"); got != want {
				t.Errorf("MIME tree\n%s\nwant\n%s", got, want)
			}
			for _, pt := range p.Parts {
				scrollUntil(t, s, v, tcell.KeyPgDn, pt.Path+" ", 40)
				press(t, s, v, tcell.KeyHome, 0)
			}
			// The mouse wheel reaches the attachment line too.
			for i := 0; i < 40 && rowWith(screenRows(s), "file "+att.Filename) < 0; i++ {
				mouse(t, s, v, 5, 5, tcell.WheelDown)
			}
			mustShow(t, screenRows(s), "file "+att.Filename)
			press(t, s, v, tcell.KeyHome, 0)
			// The attachment line, by scrolling: its sha256 equals the
			// record's.
			y := scrollUntil(t, s, v, tcell.KeyPgDn, "file "+att.Filename, 40)
			if !strings.Contains(strings.Join(screenRows(s)[y:], ""), att.SHA256[:40]) {
				t.Errorf("attachment line lacks the record's sha256 %s", att.SHA256)
			}
			// Put the cursor on it with a click, save it.
			mouse(t, s, v, 2, y, tcell.Button1)
			press(t, s, v, tcell.KeyRune, 's')
			mustShow(t, screenRows(s), "save part", att.Filename)
			press(t, s, v, tcell.KeyCtrlU, 0)
			out := filepath.Join(dir, "saved-"+att.Filename)
			typeString(t, s, v, out)
			press(t, s, v, tcell.KeyEnter, 0)
			mustShow(t, screenRows(s), "saved ")
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != att.SHA256 {
				t.Errorf("saved attachment sha256 %x, record says %s", sum, att.SHA256)
			}
			// The decoded text: quoted-printable undone.
			press(t, s, v, tcell.KeyHome, 0)
			scrollUntil(t, s, v, tcell.KeyPgDn, "decoded:", 40)
			if strings.Contains(strings.Join(screenRows(s), "\n"), "=20\n") {
				t.Error("quoted-printable soft breaks shown raw")
			}
			// Save the message: the .eml bytes hash to the record's sha256.
			press(t, s, v, tcell.KeyRune, 'e')
			press(t, s, v, tcell.KeyCtrlU, 0)
			eml := filepath.Join(dir, "m.eml")
			typeString(t, s, v, eml)
			press(t, s, v, tcell.KeyEnter, 0)
			b, err = os.ReadFile(eml)
			if err != nil {
				t.Fatal(err)
			}
			if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != rec.SHA256 {
				t.Errorf("saved message sha256 %x, record says %s", sum, rec.SHA256)
			}
			// Saving never overwrites.
			press(t, s, v, tcell.KeyRune, 'e')
			press(t, s, v, tcell.KeyCtrlU, 0)
			typeString(t, s, v, eml)
			press(t, s, v, tcell.KeyEnter, 0)
			mustShow(t, screenRows(s), "not saved")
		})
	}
}

// TestSaveDefaultName: the name offered comes from SafeName.
func TestSaveDefaultName(t *testing.T) {
	p := ParseMessage([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\n" +
		"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"../../etc/\x1b]0;x\x07pass\u202ewd\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--b--\r\n"))
	if len(p.Parts) != 3 || string(p.Parts[2].Data) != "hello" || p.Text != 1 {
		t.Fatalf("parts %+v text %d", p.Parts, p.Text)
	}
	v := &View{m: NewModel(0, 0), parsed: p, parsedOf: msgKey{0, 0, true}, snap: Snapshot{Selected: 0,
		Sessions: []Session{{Messages: []Message{{Message: &decode.Message{}}}}}}}
	v.savePartPrompt()
	if v.prompt == nil || strings.ContainsAny(v.prompt.input, "/\x1b\x07\u202e") || v.prompt.input == "" {
		t.Fatalf("offered name %q", v.prompt.input)
	}
}

func TestCredentialsView(t *testing.T) {
	for _, secrets := range []bool{false, true} {
		m := NewModel(0, 0)
		m.SetShowSecrets(secrets)
		path := corpusPcap(t, "zeek/pop3/pop3.pcap")
		decodeFile(t, path, m, secrets)
		decodeFile(t, repoPcap("real-postfix-auth.pcap"), m, secrets)
		m.Finish(nil)
		for _, sz := range sizes {
			s := simScreen(t, sz.w, sz.h)
			v := NewView(m)
			v.Draw(s)
			mouse(t, s, v, v.tabs[ModeCreds].x0+1, 0, tcell.Button1)
			rows := screenRows(s)
			mustShow(t, rows, "authentication attempts", "PLAIN", "digitalinvestigator@networksims.com", "✗ FAILED", "✓ ok", "carol")
			if secrets {
				mustShow(t, rows, "napier123")
			} else {
				mustShow(t, rows, "secrets hidden")
				mustNotShow(t, rows, "napier")
			}
			// Enter opens the credential's session.
			press(t, s, v, tcell.KeyEnter, 0)
			if v.Mode != ModeTranscript {
				t.Errorf("Enter on a credential: mode %v", v.Mode)
			}
		}
	}
}

func TestAnomaliesView(t *testing.T) {
	m := loadModel(t, repoPcap("gen-smtp-smuggle.pcap"), repoPcap("real-postfix-auth.pcap"))
	an := m.Anomalies(nil)
	if len(an) == 0 {
		t.Fatal("no anomalies in gen-smtp-smuggle")
	}
	for _, sz := range sizes {
		s := simScreen(t, sz.w, sz.h)
		v := NewView(m)
		v.Draw(s)
		press(t, s, v, tcell.KeyRune, '3')
		rows := screenRows(s)
		mustShow(t, rows, fmt.Sprintf("%d anomalies", len(an)), fmt.Sprintf("#%d", an[0].Session))
		mustShow(t, rows, strings.Fields(safeText(an[0].Text))[0])
		press(t, s, v, tcell.KeyEnter, 0)
		if v.Mode != ModeTranscript || v.Selected().ID != an[0].Session {
			t.Errorf("Enter on an anomaly: mode %v session %v", v.Mode, v.Selected())
		}
		// The table marks the session's anomaly count.
		press(t, s, v, tcell.KeyRune, '1')
		y := rowWith(screenRows(s), fmt.Sprintf(" %d smtp", an[0].Session))
		if sz.w >= 200 && y < 0 {
			t.Errorf("no row for #%d", an[0].Session)
		}
	}
}

func TestHelpScrolls(t *testing.T) {
	m := loadModel(t, repoPcap("smtp-basic.pcap"))
	s := simScreen(t, 80, 24)
	v := NewView(m)
	v.Draw(s)
	press(t, s, v, tcell.KeyRune, '?')
	mustShow(t, screenRows(s), "mailtap tui keys", "PgUp PgDn")
	mustNotShow(t, screenRows(s), "has:attachment")
	// The wheel and PgDn scroll it.
	mouse(t, s, v, 10, 10, tcell.WheelDown)
	scrollUntil(t, s, v, tcell.KeyPgDn, "anomaly:gap", 10)
	press(t, s, v, tcell.KeyEsc, 0)
	mustShow(t, screenRows(s), "client → server")
	// At 200x60 it fits without scrolling; a click on "? keys" opens it.
	s = simScreen(t, 200, 60)
	v.Draw(s)
	mouse(t, s, v, 197, 0, tcell.Button1)
	mustShow(t, screenRows(s), "mailtap tui keys", "has:attachment", "anomaly:gap", "pipelined commands")
}

// TestLiveUpdates: a session shows "open" while its records arrive and is
// updated in place when its session record comes.
func TestLiveUpdates(t *testing.T) {
	var recs []decode.Record
	all := NewModel(0, 0)
	decodeFile(t, repoPcap("real-postfix-auth.pcap"), all, false)
	collect := decode.SinkFunc(func(r decode.Record) { recs = append(recs, r) })
	src, _ := capture.OpenFile(repoPcap("real-postfix-auth.pcap"))
	defer src.Close()
	disp := dispatch.New(dispatch.Config{Sink: collect, Options: decode.Options{Level: decode.LevelCommands},
		Protocols: map[decode.Proto]dispatch.NewFunc{decode.ProtoSMTP: func(c decode.ConnInfo, o decode.Options, s decode.Sink) decode.Decoder { return smtp.New(c, o, s) }}})
	if err := capture.New(capture.Config{ServerPort: disp.IsServerPort}, disp).Run(src, nil); err != nil {
		t.Fatal(err)
	}
	m := NewModel(0, 0)
	s := simScreen(t, 200, 60)
	v := NewView(m)
	v.Draw(s)
	mustShow(t, screenRows(s), "no sessions yet")
	var sessionRec decode.Record
	for _, r := range recs {
		if r.Head().Session == 18 && r.Head().Type == decode.TypeSession {
			sessionRec = r
			continue
		}
		if r.Head().Session == 18 {
			m.Emit(r)
		}
	}
	m.SetStats(Stats{Packets: 40, Drops: 2})
	v.Refresh()
	v.Draw(s)
	rows := screenRows(s)
	y := rowWith(rows, "127.0.0.1:50862")
	if y < 0 || !strings.Contains(rows[y], " open") {
		t.Fatalf("no open row for #18:\n%s", strings.Join(rows, "\n"))
	}
	mustShow(t, rows, "decoding", "1 sessions, 1 messages, 40 packets", "2 drops")
	// A session whose mail has not ended yet: its commands tell who
	// writes to whom.
	for _, r := range recs {
		if c, ok := r.(*decode.CommandRecord); ok && r.Head().Session == 47 && (c.Verb == "MAIL" || c.Verb == "RCPT") {
			m.Emit(r)
		}
	}
	v.Refresh()
	v.Draw(s)
	rows = screenRows(s)
	if y := rowWith(rows, "127.0.0.1:50868"); y < 0 || !strings.Contains(rows[y], "carol@example.test → carol@example.test") || !strings.Contains(rows[y], " open") {
		t.Errorf("open session without its envelope:\n%s", strings.Join(rows, "\n"))
	}
	m.Emit(sessionRec)
	v.Refresh()
	v.Draw(s)
	rows = screenRows(s)
	if y2 := rowWith(rows, "127.0.0.1:50862"); y2 != y || !strings.Contains(rows[y2], "complete") || !strings.Contains(rows[y2], "carol ✓") {
		t.Errorf("row not updated in place (row %d, was %d): %q", y2, y, rows[max(y2, 0)])
	}
}

// TestRun drives the event loop: the decoder side wakes it, q quits.
func TestRun(t *testing.T) {
	m := NewModel(0, 0)
	s := simScreen(t, 80, 24)
	errc := make(chan error, 1)
	go func() { errc <- Run(s, m) }()
	decodeFile(t, repoPcap("real-postfix-auth.pcap"), m, false)
	m.Finish(nil)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(strings.Join(liveScreenRows(s), "\n"), "done | 3 sessions") {
		if time.Now().After(deadline) {
			t.Fatalf("the loop did not redraw after the model changed:\n%s", strings.Join(liveScreenRows(s), "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.InjectKey(tcell.KeyRune, 'q', tcell.ModNone)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestTooSmall(t *testing.T) {
	m := loadModel(t, repoPcap("smtp-basic.pcap"))
	s := simScreen(t, 20, 4)
	v := NewView(m)
	v.Draw(s)
	mustShow(t, screenRows(s), "too small")
}

// TestLadderOrder: a message's fold follows the command that carried it,
// although POP3 emits its messages at the end of the session and IMAP
// before the tagged reply.
func TestLadderOrder(t *testing.T) {
	for _, tc := range []struct{ pcap, cmd, title string }{
		{"real-dovecot-poplib.pcap", "RETR 1", "RETR 1"},
		{"real-dovecot-poplib.pcap", "TOP 2 5", "TOP 2"},
		{"real-dovecot-imaplib.pcap", "FETCH 1:3", "FETCH BODY[] uid 1 INBOX"},
		{"real-postfix-smtplib-multi.pcap", "DATA", "MAIL #1 accepted"},
	} {
		m := loadModel(t, repoPcap(tc.pcap))
		sn := m.Snapshot(nil, 1)
		s := sn.Sessions[sn.Selected]
		found := false
		for i, st := range s.Steps {
			if st.Msg < 0 && strings.Contains(st.Client, tc.cmd) && i+1 < len(s.Steps) {
				next := s.Steps[i+1]
				found = next.Msg >= 0 && s.Messages[next.Msg].Title == tc.title
				break
			}
		}
		if !found {
			t.Errorf("%s: %q is not followed by the fold of %q", tc.pcap, tc.cmd, tc.title)
		}
	}
}

// TestColours: a rejected recipient and anomalies stand out in the table.
func TestColours(t *testing.T) {
	m := loadModel(t, repoPcap("real-postfix-swaks-pipelining.pcap"), repoPcap("gen-smtp-smuggle.pcap"))
	s := simScreen(t, 200, 60)
	v := NewView(m)
	v.Draw(s)
	rows := screenRows(s)
	y := rowWith(rows, "sender@example.org → carol@example.test (+1)")
	if y < 0 {
		t.Fatalf("no row for the pipelined mail with a refused recipient:\n%s", strings.Join(rows, "\n"))
	}
	press(t, s, v, tcell.KeyEnd, 0) // the selected row is reversed: select another
	if fg, _, _ := cellStyle(t, s, y, "sender").Decompose(); fg != tcell.ColorYellow {
		t.Errorf("rejected mail not yellow: %v", fg)
	}
	n := 0
	for y, r := range screenRows(s) {
		if y < 2 || !strings.Contains(r, "smtp") {
			continue
		}
		f := strings.Fields(r)
		last := f[len(f)-1]
		if last == "·" {
			continue
		}
		n++
		if fg, _, _ := cellStyle(t, s, y, last).Decompose(); fg != tcell.ColorFuchsia && y != v.panes[ModeSessions].cur+2 {
			t.Errorf("anomaly count %s on row %d not magenta: %v", last, y, fg)
		}
	}
	if n == 0 {
		t.Error("no session with anomalies in the table")
	}
}

// TestEverySizeEveryView: no view panics or draws past the screen at any
// size from tiny to wide.
func TestEverySizeEveryView(t *testing.T) {
	m := loadModel(t, corpusPcap(t, "zeek/smtp/smtp.pcap"))
	for _, sz := range [][2]int{{1, 1}, {20, 4}, {30, 6}, {31, 7}, {45, 9}, {60, 12}, {80, 24}, {300, 80}} {
		s := simScreen(t, sz[0], sz[1])
		v := NewView(m)
		v.Draw(s)
		for _, k := range []rune{'1', '2', '3', 't', 'm', '?'} {
			press(t, s, v, tcell.KeyRune, k)
			press(t, s, v, tcell.KeyPgDn, 0)
			press(t, s, v, tcell.KeyEnter, 0)
			press(t, s, v, tcell.KeyEnd, 0)
			mouse(t, s, v, sz[0]/2, sz[1]/2, tcell.WheelDown)
			mouse(t, s, v, sz[0]/2, sz[1]/2, tcell.Button1)
			press(t, s, v, tcell.KeyEsc, 0)
		}
	}
}

// TestStepBounded: a 64 kB command line costs a transcript step 2 kB.
func TestStepBounded(t *testing.T) {
	m := NewModel(0, 0)
	h := decode.NewHeader(decode.TypeCommand, decode.ProtoIMAP, decode.ConnInfo{ID: 7}, time.Unix(0, 0))
	m.Emit(&decode.CommandRecord{Header: h, Tag: "a1", Verb: "FETCH", Args: strings.Repeat("1,", 32<<10) + "ü", Status: "OK", Text: strings.Repeat("done ", 20000)})
	sn := m.Snapshot(nil, 7)
	st := sn.Sessions[sn.Selected].Steps[0]
	if len(st.Client) > maxStepText+40 || len(st.Server) > maxStepText+40 || !strings.HasSuffix(st.Client, "more bytes)") || !strings.HasPrefix(st.Client, "a1 FETCH 1,1,") {
		t.Errorf("step: client %d bytes, server %d bytes", len(st.Client), len(st.Server))
	}
	if len(sn.Sessions[sn.Selected].search) > maxSearch+maxTerm+1 {
		t.Errorf("search text %d bytes", len(sn.Sessions[sn.Selected].search))
	}
}

// TestLongUser: a hostile 3000-character user is cut at maxFixedWidth and
// leaves room for the other columns.
func TestLongUser(t *testing.T) {
	m := NewModel(0, 0)
	ok := true
	for i, u := range []string{strings.Repeat("x", 3000), "carol"} {
		h := decode.NewHeader(decode.TypeSession, decode.ProtoSMTP, decode.ConnInfo{ID: uint64(i + 1),
			Client: netip.MustParseAddrPort("192.0.2.1:1000"), Server: netip.MustParseAddrPort("192.0.2.2:25")}, time.Unix(0, 0))
		m.Emit(&decode.SessionRecord{Header: h, State: "complete", Auth: &decode.Auth{Mechanism: "PLAIN", User: u, Success: &ok}})
	}
	s := simScreen(t, 200, 20)
	v := NewView(m)
	v.Draw(s)
	rows := screenRows(s)
	mustShow(t, rows, "192.0.2.1:1000 → 192.0.2.2:25 carol ✓", "complete", strings.Repeat("x", 90)+"…")
}
