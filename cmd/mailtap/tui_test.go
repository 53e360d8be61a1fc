package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"
	"github.com/spf13/pflag"
)

// quitWhenDone is a simulation screen that presses Ctrl-C once a frame
// shows the end of decoding, and keeps that frame.
type quitWhenDone struct {
	tcell.SimulationScreen
	mu      sync.Mutex
	frame   string
	message string // the message view opened after the end
	fini    int
}

func (q *quitWhenDone) Show() {
	q.SimulationScreen.Show()
	text := screenText(q.SimulationScreen)
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.frame == "" && strings.Contains(text, " done |"):
		q.frame = text
		// Not from this goroutine: it is the one that drains the queue.
		// Open the second session's message: its body comes back from
		// the spill the command set up.
		go func() {
			for _, k := range "jm" {
				q.InjectKey(tcell.KeyRune, k, tcell.ModNone)
			}
		}()
	case q.frame != "" && q.message == "" && strings.Contains(text, "MIME tree"):
		q.message = text
		go q.InjectKey(tcell.KeyCtrlC, 0, tcell.ModNone)
	}
}

func (q *quitWhenDone) Init() error {
	err := q.SimulationScreen.Init()
	q.SetSize(160, 40)
	return err
}

func (q *quitWhenDone) Fini() {
	q.mu.Lock()
	q.fini++
	q.mu.Unlock()
	q.SimulationScreen.Fini()
}

// parseTUIFlags parses the decoding flags as tui registers them.
func parseTUIFlags(t *testing.T, args ...string) (*decodeFlags, int) {
	t.Helper()
	var df decodeFlags
	fs := pflag.NewFlagSet("tui", pflag.ContinueOnError)
	df.register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return &df, 100
}

func TestTUIFile(t *testing.T) {
	scr := &quitWhenDone{SimulationScreen: tcell.NewSimulationScreen("UTF-8")}
	df, maxSessions := parseTUIFlags(t, "--workers", "2")
	path := filepath.Join("..", "..", "pcaps", "real-postfix-auth.pcap")
	err := tuiFile(path, df, maxSessions, spillFlags{dir: t.TempDir()}, func() (tcell.Screen, error) { return scr, nil })
	if err != nil {
		t.Fatal(err)
	}
	if scr.fini != 1 {
		t.Errorf("Fini called %d times", scr.fini)
	}
	for _, want := range []string{"Sessions 3", "127.0.0.1:44316 → 127.0.0.1:25 carol ✗",
		"done | 3 sessions, 2 messages"} {
		if !strings.Contains(scr.frame, want) {
			t.Errorf("final frame lacks %q:\n%s", want, scr.frame)
		}
	}
	for _, want := range []string{"Subject: sent after AUTH PLAIN", "MIME tree: 1 parts", "AUTH PLAIN worked."} {
		if !strings.Contains(scr.message, want) {
			t.Errorf("message view lacks %q:\n%s", want, scr.message)
		}
	}
}

func TestTUIErrors(t *testing.T) {
	df, _ := parseTUIFlags(t)
	noScreen := func() (tcell.Screen, error) { return nil, errors.New("no tty") }
	err := tuiFile(filepath.Join("..", "..", "pcaps", "real-postfix-auth.pcap"), df, 10, spillFlags{}, noScreen)
	if err == nil || !strings.Contains(err.Error(), "needs a terminal: no tty") {
		t.Errorf("without a screen: %v", err)
	}
	err = tuiFile(filepath.Join("..", "..", "pcaps", "no-such.pcap"), df, 10, spillFlags{}, noScreen)
	if err == nil || !strings.Contains(err.Error(), "no-such.pcap") {
		t.Errorf("missing file: %v", err)
	}
	c := tuiCommand()
	for _, args := range [][]string{{}, {"-o", "x", "f.pcap"}, {"--max-sessions", "0", "f.pcap"}, {"--spill-max", "0", "f.pcap"}, {"a", "b"}} {
		fs := c.flags()
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		var ue usageError
		if err := c.run(fs, fs.Args(), nil, nil); !errors.As(err, &ue) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}

// liveScreen sends mails once the UI is up and presses Ctrl-C when a
// frame lists every session as complete.
type liveScreen struct {
	quitWhenDone
	send func()
	want string
	n    int
}

func (l *liveScreen) Init() error {
	err := l.quitWhenDone.Init()
	go l.send()
	return err
}

func (l *liveScreen) Show() {
	l.SimulationScreen.Show()
	text := screenText(l.SimulationScreen)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.frame == "" && strings.Count(text, l.want) == l.n {
		l.frame = text
		go l.InjectKey(tcell.KeyCtrlC, 0, tcell.ModNone)
	}
}

func screenText(s tcell.SimulationScreen) string {
	cells, w, h := s.GetContents()
	var b strings.Builder
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if r := cells[y*w+x].Runes; len(r) > 0 {
				b.WriteString(string(r))
			} else {
				b.WriteByte(' ')
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func TestTUILive(t *testing.T) {
	needRoot(t)
	srv := startSMTP(t)
	const n = 5
	df, _ := parseTUIFlags(t, "--workers", "1", "--ports", fmt.Sprintf("smtp=%d", srv.port))
	scr := &liveScreen{
		quitWhenDone: quitWhenDone{SimulationScreen: tcell.NewSimulationScreen("UTF-8")},
		send:         func() { sendMails(t, srv.port, n, 1, "tui") },
		want:         " complete ",
		n:            n,
	}
	done := make(chan error, 1)
	go func() { done <- tuiLive("lo", df, 100, spillFlags{}, func() (tcell.Screen, error) { return scr, nil }) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("no frame with %d complete sessions; last screen:\n%s", n, screenText(scr.SimulationScreen))
	}
	if scr.fini != 1 {
		t.Errorf("Fini called %d times", scr.fini)
	}
	for _, want := range []string{fmt.Sprintf("Sessions %d", n), "decoding live on lo", "smtp   127.0.0.1:"} {
		if !strings.Contains(scr.frame, want) {
			t.Errorf("frame lacks %q:\n%s", want, scr.frame)
		}
	}
}

// TestTUIExtract: with --extract the spill sits in front of the
// extractor, which still gets every message and attachment.
func TestTUIExtract(t *testing.T) {
	dir := t.TempDir()
	scr := &quitWhenDone{SimulationScreen: tcell.NewSimulationScreen("UTF-8")}
	df, maxSessions := parseTUIFlags(t, "--extract", dir)
	path := filepath.Join("..", "..", "pcaps", "real-postfix-swaks-basic.pcap")
	if err := tuiFile(path, df, maxSessions, spillFlags{dir: t.TempDir()}, func() (tcell.Screen, error) { return scr, nil }); err != nil {
		t.Fatal(err)
	}
	idx, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	att, _ := filepath.Glob(filepath.Join(dir, "attachments", "*quarterly-report.csv"))
	eml, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(att) != 1 || len(eml) != 1 || !strings.Contains(string(idx), "quarterly-report.csv") {
		t.Errorf("extracted %v %v, index:\n%s", eml, att, idx)
	}
	if !strings.Contains(scr.message, "quarterly-report.csv") {
		t.Errorf("message view lacks the attachment:\n%s", scr.message)
	}
}
