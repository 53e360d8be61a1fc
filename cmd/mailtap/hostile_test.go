package main

import (
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/mailtap/mailtap/capture/synth"
)

// TestHostileInputs: an endless SMTP line, a huge IMAP literal size, an
// unterminated POP3 body and a DATA body of junk decode without a crash,
// with the anomalies named, and without holding the 12 MB of junk.
func TestHostileInputs(t *testing.T) {
	c := synth.NewCapture(synth.LinkEthernet)
	srv := func(port uint16) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr("198.51.100.7"), port) }
	cli := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.MustParseAddr("192.0.2.7"), uint16(40000+i))
	}
	endless := strings.Repeat("A", 4<<20) // 4 MiB, no line end
	c.Conn(cli(1), srv(25), synth.Options{}).
		Server("220 mx ESMTP\r\n").Client("EHLO " + endless + "\r\n").Server("500 line too long\r\n").
		Client("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n").Server("250 ok\r\n250 ok\r\n354 go\r\n").
		Client(strings.Repeat("\x00\xff junk ", 1<<19)).Close(synth.ClientSide)
	c.Conn(cli(2), srv(143), synth.Options{}).
		Server("* OK IMAP4rev1\r\n").Client("a1 APPEND INBOX {99999999999}\r\n").Server("a1 NO too big\r\n").
		Client("a2 APPEND INBOX {18446744073709551615+}\r\n").Client(strings.Repeat("x", 1<<20)).
		Client("a3 LOGOUT\r\n" + strings.Repeat("((((((((((", 1000) + "\r\n").Close(synth.ClientSide)
	c.Conn(cli(3), srv(110), synth.Options{}).
		Server("+OK pop\r\n").Client("USER a\r\nPASS b\r\nRETR 1\r\n").Server("+OK\r\n+OK\r\n+OK 999 octets\r\n").
		Server(strings.Repeat("line without end ", 1<<18)).Reset(synth.ServerSide)
	path := filepath.Join(t.TempDir(), "hostile.pcap")
	if err := c.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	recs := decodeFile(t, path, "--level", "commands", "--max-line", "4096")
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 8<<20 {
		t.Errorf("heap grew by %d bytes after decoding", grew)
	}
	anomalies := map[string]bool{}
	protos := map[string]bool{}
	for _, s := range ofType(recs, "session") {
		protos[s.str("proto")] = true
		for _, a := range s.list("anomalies") {
			anomalies[a.(string)] = true
		}
	}
	if len(protos) != 3 {
		t.Errorf("sessions for %v, want smtp, imap and pop3", protos)
	}
	if !anomalies["line_too_long"] {
		t.Errorf("anomalies %v lack line_too_long", anomalies)
	}
	for _, r := range recs {
		if len(r.str("args")) > 64<<10 || len(r.str("helo")) > 64<<10 {
			t.Errorf("a record carries %d bytes of a hostile line", max(len(r.str("args")), len(r.str("helo"))))
		}
	}
	t.Logf("anomalies: %v", anomalies)
}
