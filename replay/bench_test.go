package replay

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailtap/mailtap/capture/synth"
	"github.com/mailtap/mailtap/decode"
)

// writeLoadCapture writes a capture of n short sessions, a third each of
// SMTP (one delivery), POP3 (login, STAT, QUIT; one user per session, as
// POP3 locks the maildrop) and IMAP (login, SELECT, LOGOUT), answered as
// the built-in server answers them, 1 ms apart.
func writeLoadCapture(tb testing.TB, n int) string {
	tb.Helper()
	c := synth.NewCapture(synth.LinkEthernet)
	start := time.Date(2025, 3, 3, 10, 0, 0, 0, time.UTC)
	for i := range n {
		client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + i%200)}), uint16(20000+i))
		opts := synth.Options{Start: start.Add(time.Duration(i) * time.Millisecond)}
		switch i % 3 {
		case 0:
			cn := c.Conn(client, netip.MustParseAddrPort("198.51.100.25:25"), opts)
			cn.Server("220 mailtap.test ESMTP Service Ready\r\n").
				Client("EHLO load.example.org\r\n").
				Server("250-Hello load.example.org\r\n250 8BITMIME\r\n").
				Client("MAIL FROM:<load@example.org>\r\n").Server("250 2.0.0 OK\r\n").
				Client("RCPT TO:<bob@example.test>\r\n").Server("250 2.0.0 OK\r\n").
				Client("DATA\r\n").Server("354 Go ahead\r\n").
				Client(fmt.Sprintf("Subject: load %d\r\n\r\nmessage %d\r\n.\r\n", i, i)).Server("250 2.0.0 OK: queued\r\n").
				Client("QUIT\r\n").Server("221 2.0.0 Bye\r\n").Close(synth.ClientSide)
		case 1:
			cn := c.Conn(client, netip.MustParseAddrPort("198.51.100.110:110"), opts)
			cn.Server("+OK POP3 ready\r\n").
				Client(fmt.Sprintf("USER user%d\r\n", i)).Server("+OK\r\n").
				Client("PASS secret\r\n").Server("+OK Logged in\r\n").
				Client("STAT\r\n").Server("+OK 0 0\r\n").
				Client("QUIT\r\n").Server("+OK Bye\r\n").Close(synth.ClientSide)
		default:
			cn := c.Conn(client, netip.MustParseAddrPort("198.51.100.143:143"), opts)
			cn.Server("* OK IMAP ready\r\n").
				Client("a1 LOGIN alice secret\r\n").Server("a1 OK Logged in\r\n").
				Client("a2 SELECT Drafts\r\n").Server("* 0 EXISTS\r\na2 OK [READ-WRITE] done\r\n").
				Client("a3 LOGOUT\r\n").Server("* BYE\r\na3 OK done\r\n").Close(synth.ClientSide)
		}
	}
	path := filepath.Join(tb.TempDir(), "load.pcap")
	if err := c.WriteFile(path); err != nil {
		tb.Fatal(err)
	}
	return path
}

// replayLoad loads a capture and replays it against the built-in server
// with --pace fast and the given concurrency.
func replayLoad(tb testing.TB, path string, level string, conc int) (*Summary, []*Result) {
	tb.Helper()
	rec, ss, err := LoadFile(path, LoadConfig{Sniff: true})
	if err != nil {
		tb.Fatal(err)
	}
	srv, addrs, err := StartServer(rec.Seed(ss), Protos(ss)...)
	if err != nil {
		tb.Fatal(err)
	}
	defer srv.Close()
	cc, err := NewCompareConfig(level, nil, false)
	if err != nil {
		tb.Fatal(err)
	}
	var rs []*Result
	sm, err := Run(ss, RunConfig{Options: Options{Compare: cc}, Speed: 0, Concurrency: conc,
		Target: func(s *Session) Target { return Target{Addr: addrs[s.Proto], Store: srv.Store()} }},
		func(r *Result) error { rs = append(rs, r); return nil })
	if err != nil {
		tb.Fatal(err)
	}
	return sm, rs
}

// Many short sessions replayed concurrently, fast: every one compared
// and matched at the status level, reported in capture order.
func TestReplayManySessions(t *testing.T) {
	sm, rs := replayLoad(t, writeLoadCapture(t, 90), CompareStatus, 16)
	if sm.Sessions != 90 || sm.Compared != 90 || sm.Matched != 90 || len(rs) != 90 {
		t.Fatalf("%+v", sm)
	}
	for i := 1; i < len(rs); i++ {
		if rs[i].Session <= rs[i-1].Session {
			t.Fatalf("results out of capture order at %d", i)
		}
	}
	for _, p := range []string{"smtp", "pop3", "imap"} {
		if l := sm.Latency[decodeProto(p)]; l == nil || l.Commands == 0 {
			t.Errorf("%s latency %+v", p, l)
		}
	}
}

// BenchmarkReplayFast: 1,600 short sessions against the built-in server,
// --pace fast --concurrency 64, full comparison (docs/performance.md).
// go test ./replay -run '^$' -bench ReplayFast -benchtime 3x
func BenchmarkReplayFast(b *testing.B) {
	path := writeLoadCapture(b, 1600)
	var rate float64
	for b.Loop() {
		sm, _ := replayLoad(b, path, CompareFull, 64)
		if sm.Compared != 1600 {
			b.Fatalf("%+v", sm)
		}
		rate = sm.SessionsPerSec
	}
	b.ReportMetric(rate, "sessions/s")
}

func decodeProto(s string) decode.Proto { return decode.Proto(s) }
