package main

import (
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/mailtap/mailtap/capture/synth"
)

// TestHostileInputs: an endless SMTP line (line_too_long), huge IMAP
// literal sizes (literal_size_invalid) and parentheses nested 10000 deep
// (list_too_deep), an unterminated POP3 body (message_truncated) and a
// DATA body of junk decode without a crash, each session with the
// anomalies named here, and without holding the 12 MB of junk.
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
	anomalies := map[string]map[string]bool{} // by protocol
	for _, s := range ofType(recs, "session") {
		p := s.str("proto")
		if anomalies[p] != nil {
			t.Errorf("two %s sessions", p)
		}
		anomalies[p] = map[string]bool{}
		for _, a := range s.list("anomalies") {
			anomalies[p][a.(string)] = true
		}
	}
	want := map[string][]string{
		"smtp": {"line_too_long"},
		"imap": {"literal_size_invalid", "list_too_deep"},
		"pop3": {"message_truncated"},
	}
	if len(anomalies) != len(want) {
		t.Errorf("sessions for %v, want smtp, imap and pop3", anomalies)
	}
	for p, kinds := range want {
		for _, k := range kinds {
			if !anomalies[p][k] {
				t.Errorf("%s session: anomalies %v lack %s", p, anomalies[p], k)
			}
		}
	}
	if n, k := len(ofType(recs, "smtp.mail")), len(ofType(recs, "pop3.message")); n != 1 || k != 1 {
		t.Errorf("%d smtp.mail and %d pop3.message records, want 1 and 1", n, k)
	}
	for _, m := range ofType(recs, "smtp.mail") {
		if msg := m.obj("message"); msg == nil || msg["truncated"] != true {
			t.Errorf("the junk DATA body cut by the close is not a truncated message: %v", m)
		}
	}
	for _, m := range ofType(recs, "pop3.message") {
		if msg := m.obj("message"); msg == nil || msg["truncated"] != true {
			t.Errorf("the unterminated RETR body is not a truncated message: %v", m)
		}
	}
	for _, r := range recs {
		if len(r.str("args")) > 64<<10 || len(r.str("helo")) > 64<<10 {
			t.Errorf("a record carries %d bytes of a hostile line", max(len(r.str("args")), len(r.str("helo"))))
		}
	}
	t.Logf("anomalies: %v", anomalies)
}
