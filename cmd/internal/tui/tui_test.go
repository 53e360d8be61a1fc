package tui

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// decodeCapture runs the read pipeline over one capture of the repo's
// pcaps/ into s.
func decodeCapture(t *testing.T, name string, s decode.Sink) {
	t.Helper()
	path := filepath.Join("..", "..", "..", "pcaps", name)
	src, err := capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	disp := dispatch.New(dispatch.Config{
		Sniff: true,
		Sink:  s,
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
}

func loadModel(t *testing.T, maxSessions int, names ...string) *Model {
	t.Helper()
	m := NewModel(maxSessions, 0)
	for _, n := range names {
		decodeCapture(t, n, m)
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

// screenRows returns what s shows, one string per row.
func screenRows(s tcell.SimulationScreen) []string {
	cells, w, h := s.GetContents()
	rows := make([]string, h)
	for y := 0; y < h; y++ {
		var b strings.Builder
		for x := 0; x < w; x++ {
			c := cells[y*w+x]
			if len(c.Runes) == 0 {
				b.WriteByte(' ')
				continue
			}
			b.WriteString(string(c.Runes))
		}
		rows[y] = b.String()
	}
	return rows
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
	for _, r := range str {
		press(t, s, v, tcell.KeyRune, r)
	}
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

func TestModelSessions(t *testing.T) {
	m := loadModel(t, 0, "real-postfix-auth.pcap")
	sn := m.Snapshot("", 0, 0)
	if sn.Total != 3 || len(sn.Sessions) != 3 || !sn.Done || sn.Dropped != 0 {
		t.Fatalf("total %d, listed %d, done %v, dropped %d; want 3 sessions, done", sn.Total, len(sn.Sessions), sn.Done, sn.Dropped)
	}
	want := []struct {
		id     uint64
		client string
		tx     int
		from   string
	}{
		{1, "127.0.0.1:44316", 0, ""},
		{18, "127.0.0.1:50862", 1, "carol@example.test"},
		{47, "127.0.0.1:50868", 1, "carol@example.test"},
	}
	for i, w := range want {
		s := sn.Sessions[i]
		if s.ID != w.id || s.Proto != decode.ProtoSMTP || s.Client != w.client || s.Server != "127.0.0.1:25" ||
			s.State != decode.StateComplete || !s.Closed || s.Transactions != w.tx || s.User != "carol" {
			t.Errorf("session %d = %+v", i, s)
		}
		full := m.Snapshot("", w.id, 0)
		sel := full.Sessions[full.Selected]
		if sel.ID != w.id {
			t.Fatalf("selected %d, want %d", sel.ID, w.id)
		}
		if w.from == "" {
			if len(sel.Messages) != 0 {
				t.Errorf("session %d: messages %+v", w.id, sel.Messages)
			}
			continue
		}
		if len(sel.Messages) != 1 || sel.Messages[0].MailFrom != w.from || sel.Messages[0].Message == nil {
			t.Fatalf("session %d: messages %+v", w.id, sel.Messages)
		}
		if !strings.Contains(strings.Join(sel.Lines, "\n"), "from: <"+w.from+">") {
			t.Errorf("session %d lines lack MAIL FROM:\n%s", w.id, strings.Join(sel.Lines, "\n"))
		}
		// Only the selected session carries its content.
		for j, o := range full.Sessions {
			if j != full.Selected && (o.Lines != nil || o.Messages != nil) {
				t.Errorf("unselected session %d carries content", o.ID)
			}
		}
	}
}

func TestModelFilter(t *testing.T) {
	m := loadModel(t, 0, "real-postfix-auth.pcap", "real-dovecot-pop3-curl.pcap")
	cases := []struct {
		filter string
		ids    string
	}{
		{"", "1 18 47 1 23"},
		{"pop3", "1 23"},
		{"CAROL@example.test", "18 47"}, // MAIL FROM, case-insensitive
		{"carol", "1 18 47"},            // #1: the AUTH user only
		{"auth login", "47"},            // subject
		{"50862", "18"},                 // client port
		{"sent after auth plain", "18"}, // subject
		{"no such thing", ""},
	}
	for _, c := range cases {
		sn := m.Snapshot(c.filter, 0, 0)
		var ids []string
		for _, s := range sn.Sessions {
			ids = append(ids, fmt.Sprint(s.ID))
		}
		if got := strings.Join(ids, " "); got != c.ids {
			t.Errorf("filter %q: sessions %q, want %q", c.filter, got, c.ids)
		}
		if sn.Total != 5 {
			t.Errorf("filter %q: total %d, want 5", c.filter, sn.Total)
		}
	}
}

func TestModelBounded(t *testing.T) {
	m := NewModel(2, 5)
	decodeCapture(t, "real-postfix-auth.pcap", m)
	sn := m.Snapshot("", 47, 0)
	if sn.Total != 2 || sn.Dropped != 1 || sn.Sessions[0].ID != 18 || sn.Sessions[1].ID != 47 {
		t.Fatalf("total %d dropped %d sessions %+v; want 18 and 47 kept, 1 dropped", sn.Total, sn.Dropped, sn.Sessions)
	}
	sel := sn.Sessions[sn.Selected]
	if len(sel.Lines) != 5 || sel.DroppedLines == 0 {
		t.Errorf("lines %d (dropped %d), want the last 5", len(sel.Lines), sel.DroppedLines)
	}
	// The last line kept is the session record's last one.
	if !strings.Contains(sel.Lines[4], "community_id") {
		t.Errorf("last line %q", sel.Lines[4])
	}
	// The dropped session's records no longer reach it, a record for it
	// now opens a new one.
	if sn.Records == 0 {
		t.Error("no records counted")
	}
}

func TestModelSignalCoalesces(t *testing.T) {
	m := NewModel(0, 0)
	for i := 0; i < 1000; i++ { // would block if signals were not coalesced
		h := decode.NewHeader(decode.TypeCommand, decode.ProtoSMTP, decode.ConnInfo{ID: uint64(i%3 + 1)}, time.Unix(0, 0))
		m.Emit(&decode.CommandRecord{Header: h, Verb: "NOOP", Status: 250})
	}
	select {
	case <-m.Changed():
	default:
		t.Fatal("no change signalled")
	}
	select {
	case <-m.Changed():
		t.Fatal("a second token for changes already signalled")
	default:
	}
	if sn := m.Snapshot("", 2, 0); sn.Total != 3 || sn.Records != 1000 || sn.Sessions[sn.Selected].State != "open" {
		t.Errorf("snapshot %+v", sn)
	}
	if sn := m.Snapshot("OPEN", 0, 0); len(sn.Sessions) != 3 {
		t.Errorf("filter open: %d sessions, want 3", len(sn.Sessions))
	}
}

func TestDrawSessionsAndRecords(t *testing.T) {
	m := loadModel(t, 0, "real-postfix-auth.pcap")
	s := simScreen(t, 160, 40)
	v := NewView(m)
	v.Draw(s)
	rows := screenRows(s)
	mustShow(t, rows, "Sessions 3", "smtp 127.0.0.1:44316 -> 127.0.0.1:25 complete 0tx carol",
		"smtp 127.0.0.1:50868 -> 127.0.0.1:25 complete 1tx carol",
		"auth: PLAIN user=\"carol\" password=<redacted> FAILED", // session #1's records
		"Message: none in this session", "done | 3 sessions", "q quit")
	mustNotShow(t, rows, "from: <carol@example.test>")
	// The selected row is drawn reversed.
	y := rowWith(rows, "127.0.0.1:44316 ->")
	cells, w, _ := s.GetContents()
	if _, _, attr := cells[y*w].Style.Decompose(); attr&tcell.AttrReverse == 0 {
		t.Errorf("selected row %d not reversed", y)
	}

	press(t, s, v, tcell.KeyRune, 'j')
	rows = screenRows(s)
	mustShow(t, rows, "#18 smtp 127.0.0.1:50862 -> 127.0.0.1:25", "from: <carol@example.test>",
		"Message 1/1: MAIL #1 accepted", "envelope: <carol@example.test> -> <carol@example.test>",
		"Subject: sent after AUTH PLAIN", "sha256 c44dc6f6072a53b757ef13e36fa5c133e289cf9645a05bf095787489418bb7e5")
	press(t, s, v, tcell.KeyDown, 0)
	rows = screenRows(s)
	mustShow(t, rows, "#47 smtp 127.0.0.1:50868", "from: <carol@example.test>", "Subject: sent after AUTH LOGIN")
	mustNotShow(t, rows, "Subject: sent after AUTH PLAIN")
	press(t, s, v, tcell.KeyDown, 0) // already at the end
	mustShow(t, screenRows(s), "#47 smtp 127.0.0.1:50868")
	press(t, s, v, tcell.KeyRune, 'k')
	press(t, s, v, tcell.KeyRune, 'k')
	mustShow(t, screenRows(s), "#1 smtp 127.0.0.1:44316")
	press(t, s, v, tcell.KeyPgDn, 0)
	mustShow(t, screenRows(s), "#47 smtp 127.0.0.1:50868")
	if v.Quit() {
		t.Fatal("quit without q")
	}
	press(t, s, v, tcell.KeyRune, 'q')
	if !v.Quit() {
		t.Fatal("q did not quit")
	}
}

func TestDrawFilter(t *testing.T) {
	m := loadModel(t, 0, "real-postfix-auth.pcap", "real-dovecot-pop3-curl.pcap")
	s := simScreen(t, 160, 40)
	v := NewView(m)
	v.Draw(s)
	mustShow(t, screenRows(s), "Sessions 5", "pop3 ")

	press(t, s, v, tcell.KeyRune, '/')
	typeString(t, s, v, "50868")
	rows := screenRows(s)
	mustShow(t, rows, "filter: 50868", `Sessions 1 of 5 matching "50868"`, "#47 smtp 127.0.0.1:50868", "Subject: sent after AUTH LOGIN")
	mustNotShow(t, rows, "127.0.0.1:44316", "pop3 ")
	press(t, s, v, tcell.KeyEnter, 0)
	rows = screenRows(s)
	mustNotShow(t, rows, "filter: 50868")
	mustShow(t, rows, `matching "50868"`)
	// q typed outside the filter quits; inside it is text.
	press(t, s, v, tcell.KeyRune, '/')
	press(t, s, v, tcell.KeyBackspace2, 0)
	press(t, s, v, tcell.KeyBackspace2, 0)
	press(t, s, v, tcell.KeyBackspace2, 0)
	press(t, s, v, tcell.KeyBackspace2, 0)
	press(t, s, v, tcell.KeyBackspace2, 0)
	typeString(t, s, v, "pop3q")
	if v.Quit() {
		t.Fatal("q in the filter quit")
	}
	mustShow(t, screenRows(s), "no session matches the filter")
	press(t, s, v, tcell.KeyBackspace2, 0)
	press(t, s, v, tcell.KeyEnter, 0)
	rows = screenRows(s)
	mustShow(t, rows, `Sessions 2 of 5 matching "pop3"`)
	mustNotShow(t, rows, "smtp 127.0.0.1")
	// The selection (#47) left the list: the nearest remaining one is taken.
	if sel := v.Selected(); sel == nil || sel.Proto != decode.ProtoPOP3 {
		t.Fatalf("selected %+v", sel)
	}
	press(t, s, v, tcell.KeyEsc, 0)
	mustShow(t, screenRows(s), "Sessions 5")
}

func TestDrawMessagePane(t *testing.T) {
	m := loadModel(t, 0, "real-postfix-swaks-basic.pcap")
	s := simScreen(t, 200, 30)
	v := NewView(m)
	v.Draw(s)
	rows := screenRows(s)
	mustShow(t, rows, "Message 1/1: MAIL #1 accepted", "From:    sender@example.org", "Subject: Quartalsbericht für März",
		"attachment quarterly-report.csv text/csv 122 bytes sha256 aded6412e257b33d25d33b08fca096f21f3f34855fc12564331fb51cd7ac3d63",
		"size 848 sha256 42ae2f14502381aae59cd23a9cc3c0351646e17a93b9851a4e9321533ac0d05e")
	// Tab cycles the focus: sessions -> records -> message -> sessions;
	// the focused pane's title is reversed.
	for _, want := range []Pane{PaneRecords, PaneMessage, PaneSessions} {
		press(t, s, v, tcell.KeyTab, 0)
		if v.Focus != want {
			t.Fatalf("focus %v, want %v", v.Focus, want)
		}
	}
	press(t, s, v, tcell.KeyEnter, 0)
	if v.Focus != PaneRecords {
		t.Fatalf("Enter: focus %v", v.Focus)
	}
	// Scrolling the records pane moves its window (16 lines, 12 shown).
	s.SetSize(200, 20)
	v.Draw(s)
	first := rowWith(screenRows(s), "MAIL #1 ACCEPTED via DATA")
	if first != 1 {
		t.Fatalf("first record line on row %d", first)
	}
	press(t, s, v, tcell.KeyRune, 'j')
	if r := rowWith(screenRows(s), "MAIL #1 ACCEPTED via DATA"); r >= 0 {
		t.Errorf("after scrolling, first line still on row %d", r)
	}
	mustShow(t, screenRows(s), "lines 2-")
}

func TestDrawSmallAndHostile(t *testing.T) {
	m := NewModel(0, 0)
	h := decode.NewHeader(decode.TypeCommand, decode.ProtoSMTP, decode.ConnInfo{ID: 7}, time.Unix(0, 0))
	m.Emit(&decode.CommandRecord{Header: h, Verb: "MAIL", Args: "FROM:<x\x1b[2Jy>\ttab", Status: 250})
	s := simScreen(t, 200, 12)
	v := NewView(m)
	v.Draw(s)
	rows := screenRows(s)
	mustShow(t, rows, `FROM:<x\x1b[2Jy>\ttab`, "decoding | 1 sessions") // text sink escapes (textsafe)
	s.SetSize(20, 5)
	v.Draw(s)
	mustShow(t, screenRows(s), "mailtap tui: termina")
}

func TestRunQuitsAndWakes(t *testing.T) {
	m := loadModel(t, 0, "real-postfix-auth.pcap")
	s := simScreen(t, 160, 40)
	// The events are queued before Run starts; Run handles them in order
	// and returns at Ctrl-C. (It draws once per batch of pending events,
	// so the screen still shows the first frame: draw the final state.)
	s.InjectKey(tcell.KeyRune, 'j', tcell.ModNone)
	s.InjectKey(tcell.KeyRune, 'j', tcell.ModNone)
	s.InjectKey(tcell.KeyCtrlC, 0, tcell.ModNone)
	v := NewView(m)
	if err := v.Run(s); err != nil {
		t.Fatal(err)
	}
	if sel := v.Selected(); !v.Quit() || sel == nil || sel.ID != 47 {
		t.Fatalf("quit %v, selected %+v", v.Quit(), sel)
	}
	v.Draw(s)
	mustShow(t, screenRows(s), "#47 smtp 127.0.0.1:50868", "Subject: sent after AUTH LOGIN")
}

func TestWakePostsInterrupt(t *testing.T) {
	s := simScreen(t, 80, 24)
	m := NewModel(0, 0)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		wake(s, m.Changed(), stop, time.Millisecond)
		close(done)
	}()
	m.Finish(nil)
	if _, ok := s.PollEvent().(*tcell.EventInterrupt); !ok {
		t.Fatal("no interrupt after a change")
	}
	close(stop)
	<-done
}

func TestMain(m *testing.M) {
	if _, err := os.Stat(filepath.Join("..", "..", "..", "pcaps")); err != nil {
		fmt.Println("pcaps/ not found:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}
