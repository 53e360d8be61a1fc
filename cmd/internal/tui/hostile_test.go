package tui

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/gdamore/tcell/v2"

	"github.com/mailtap/mailtap/capture/synth"
)

// hostile holds what an attacker can put on the wire to reach a
// terminal: ANSI colour, an OSC window-title sequence ended by BEL, a
// bare CR, NUL, a C1 CSI, a right-to-left override and isolate, and
// zero-width characters.
const hostile = "\x1b[31mRED\x1b]0;pwned-title\x07 cr\rnul\x00 c1\u009b2J rlo\u202egnp.exe lri\u2066x\u2069 zw\u200b\ufeff"

// hostileCapture writes a capture whose HELO, AUTH user, MAIL FROM,
// RCPT TO, From, Subject and attachment filename, and a POP3 USER,
// carry hostile strings, and returns its path.
func hostileCapture(t *testing.T) string {
	t.Helper()
	c := synth.NewCapture(synth.LinkEthernet)
	smtpConn := c.Conn(netip.MustParseAddrPort("192.0.2.10:49152"), netip.MustParseAddrPort("198.51.100.25:25"), synth.Options{})
	// Line-based protocols end a line at LF: the hostile text cannot
	// hold one, nor a CR before it; everything else goes through.
	h := strings.ReplaceAll(hostile, "\r", "\rx")
	plain := base64.StdEncoding.EncodeToString([]byte("\x00mallory" + strings.ReplaceAll(h, "\x00", "") + "\x00secret"))
	body := "From: \"Mal " + h + "\" <mal@example.test>\r\n" +
		"To: victim@example.test\r\n" +
		"Subject: invoice " + h + "\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nbody " + h + "\r\n" +
		"--b1\r\nContent-Type: application/octet-stream\r\n" +
		"Content-Disposition: attachment; filename=\"../../" + h + ".exe\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + base64.StdEncoding.EncodeToString([]byte("MZ payload")) + "\r\n" +
		"--b1--\r\n"
	smtpConn.Server("220 mx.example.test ESMTP " + h + "\r\n").
		Client("EHLO helo" + h + "\r\n").
		Server("250-mx.example.test\r\n250 AUTH PLAIN\r\n").
		Client("AUTH PLAIN " + plain + "\r\n").
		Server("535 5.7.8 bad " + h + "\r\n").
		Client("AUTH PLAIN " + plain + "\r\n").
		Server("235 2.7.0 ok\r\n").
		Client("MAIL FROM:<mal" + h + "@example.test>\r\n").
		Server("250 2.1.0 Ok\r\n").
		Client("RCPT TO:<victim" + h + "@example.test>\r\n").
		Server("250 2.1.5 Ok\r\n").
		Client("DATA\r\n").
		Server("354 go\r\n").
		Client(body + ".\r\n").
		Server("250 2.0.0 queued\r\n").
		Client("QUIT\r\n").
		Server("221 bye\r\n").
		Close(synth.ClientSide)
	pop := c.Conn(netip.MustParseAddrPort("192.0.2.11:49153"), netip.MustParseAddrPort("198.51.100.25:110"), synth.Options{})
	pop.Server("+OK ready " + h + "\r\n").
		Client("USER pop" + h + "\r\n").
		Server("+OK\r\n").
		Client("PASS x\r\n").
		Server("-ERR [AUTH] " + h + "\r\n").
		Client("QUIT\r\n").
		Server("+OK\r\n").
		Close(synth.ClientSide)
	path := filepath.Join(t.TempDir(), "hostile.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Write(f, synth.FormatPcap); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// rawControls lists every cell of s holding a rune that must not reach
// a terminal. It does not use safeText's own predicate, so that a gap in
// it would show.
func rawControls(s tcell.SimulationScreen) []string {
	cells, w, _ := s.GetContents()
	var bad []string
	for i, c := range cells {
		for _, r := range c.Runes {
			switch {
			case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0,
				r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069,
				r >= 0x200b && r <= 0x200f, r == 0x2060, r == 0xfeff:
				bad = append(bad, fmt.Sprintf("(%d,%d) %U", i%w, i/w, r))
			}
		}
	}
	return bad
}

func TestHostileStrings(t *testing.T) {
	// Ours, and the project's hostile-strings capture (IMAP mailbox
	// names, encoded words that decode to ESC, invalid UTF-8 too).
	for i, path := range []string{hostileCapture(t), repoPcap("gen-hostile-strings.pcap")} {
		for _, secrets := range []bool{false, true} {
			hostileViews(t, path, secrets, i == 0)
		}
	}
}

// hostileViews opens every view of every session of the capture at
// path, at both sizes, and checks that no raw control reaches the screen
// and (ours: for each kind the capture carries) that its escape shows.
func hostileViews(t *testing.T, path string, secrets, ours bool) {
	t.Helper()
	m := NewModel(0, 0)
	m.SetShowSecrets(secrets)
	sp, err := NewSpill(t.TempDir(), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	m.SetSpill(sp)
	decodeFile(t, path, m, secrets)
	m.Finish(nil)
	sn := m.Snapshot(nil, 0)
	if ours && (len(sn.Sessions) != 2 || !strings.Contains(sn.Sessions[0].Subject, "\x1b]0;") || !strings.Contains(sn.Sessions[0].User, "\u202e")) {
		t.Fatalf("the capture did not carry the hostile strings through: %+v", sn.Sessions)
	}
	for _, sz := range sizes {
		s := simScreen(t, sz.w, sz.h)
		v := NewView(m)
		v.Draw(s)
		seen := map[string]bool{}
		check := func(what string) {
			t.Helper()
			if bad := rawControls(s); len(bad) > 0 {
				t.Errorf("%dx%d %s: raw control runes on screen: %v\n%s", sz.w, sz.h, what, bad, strings.Join(screenRows(s), "\n"))
			}
			text := strings.Join(screenRows(s), "\n")
			for _, esc := range []string{`\x1b`, `\x07`, `\u202e`, `\u2066`, `\x00`, `\u200b`, `\u009b`} {
				if strings.Contains(text, esc) {
					seen[esc] = true
				}
			}
		}
		check("sessions")
		for _, k := range []rune{'2', '3', '?'} {
			press(t, s, v, tcell.KeyRune, k)
			check(string(k))
			press(t, s, v, tcell.KeyEsc, 0)
		}
		for i := range sn.Sessions {
			press(t, s, v, tcell.KeyRune, '1')
			press(t, s, v, tcell.KeyHome, 0)
			for j := 0; j < i; j++ {
				press(t, s, v, tcell.KeyDown, 0)
			}
			press(t, s, v, tcell.KeyEnter, 0)
			check("transcript")
			// Open every fold, scroll through.
			for j := 0; j < 40; j++ {
				press(t, s, v, tcell.KeyDown, 0)
				press(t, s, v, tcell.KeyEnter, 0)
				check("transcript, folds open")
			}
			press(t, s, v, tcell.KeyRune, 'm')
			for j := 0; j < 12; j++ {
				check("message")
				press(t, s, v, tcell.KeyPgDn, 0)
			}
			// The attachment's offered name is made safe.
			press(t, s, v, tcell.KeyRune, 's')
			check("save prompt")
			if v.prompt != nil && strings.ContainsAny(v.prompt.input, "/\x1b\x07\u202e") {
				t.Errorf("offered name %q", v.prompt.input)
			}
			press(t, s, v, tcell.KeyEsc, 0)
		}
		for _, esc := range []string{`\x1b`, `\x07`, `\u202e`, `\u2066`, `\x00`, `\u200b`, `\u009b`} {
			if !seen[esc] && ours || !seen[`\x1b`] {
				t.Errorf("%dx%d: the escape %s was never shown", sz.w, sz.h, esc)
			}
		}
	}
}

// TestMemoryBounded: the model keeps summaries, not bodies. 200 mails of
// 50 kB each (10 MB) must leave well under 4 MB of heap behind: bodies
// are in the spill, and no kept string pins a decoder's buffer.
func TestMemoryBounded(t *testing.T) {
	c := synth.NewCapture(synth.LinkEthernet)
	body := strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n", 700)
	const n = 200
	for i := 0; i < n; i++ {
		conn := c.Conn(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), uint16(40000+i)),
			netip.MustParseAddrPort("192.0.2.25:25"), synth.Options{})
		conn.Server("220 mx ESMTP\r\n").Client("EHLO c\r\n").Server("250 mx\r\n").
			Client(fmt.Sprintf("MAIL FROM:<u%d@example.org>\r\n", i)).Server("250 ok\r\n").
			Client("RCPT TO:<rcpt@example.test>\r\n").Server("250 ok\r\n").
			Client("DATA\r\n").Server("354 go\r\n").
			Client(fmt.Sprintf("From: u%d@example.org\r\nSubject: big %d\r\n\r\n", i, i) + body + ".\r\n").Server("250 queued\r\n").
			Client("QUIT\r\n").Server("221 bye\r\n").Close(synth.ClientSide)
	}
	path := filepath.Join(t.TempDir(), "big.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Write(f, synth.FormatPcap); err != nil {
		t.Fatal(err)
	}
	f.Close()
	c = nil
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	m := loadModel(t, path)
	runtime.GC()
	runtime.ReadMemStats(&after)
	if m.Len() != n || m.Spill().Size() < n*int64(len(body)) {
		t.Fatalf("%d sessions, spill %d bytes", m.Len(), m.Spill().Size())
	}
	kept := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("heap kept for %d sessions: %d kB (bodies: %d kB in the spill)", n, kept>>10, m.Spill().Size()>>10)
	if kept > 4<<20 {
		t.Errorf("model keeps %d kB of heap for %d sessions", kept>>10, n)
	}
	runtime.KeepAlive(m)
}
