package main

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/mailtap/mailtap/capture"
	"github.com/mailtap/mailtap/capture/synth"
)

// smallMailCapture writes a capture shaped like real mail traffic (what
// pcaps/record/load.sh records): many sessions of small messages, plain
// text and MIME with a small base64 attachment, some dot-stuffed lines, in
// 1460-byte segments. Returns its path and size.
func smallMailCapture(t testing.TB) (string, int64) {
	t.Helper()
	c := synth.NewCapture(synth.LinkEthernet)
	srv := netip.MustParseAddrPort("198.51.100.25:25")
	words := strings.Fields("the quarterly figures are attached please review before friday meeting invoice shipment delayed")
	for i := 0; i < 300; i++ {
		cli := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + i%200)}), uint16(30000+i))
		conn := c.Conn(cli, srv, synth.Options{Start: synth.DefaultStart.Add(time.Duration(i) * 20 * time.Millisecond)})
		conn.Server("220 mx.example.test ESMTP Postfix\r\n").
			Client("EHLO client.example\r\n").
			Server("250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n")
		for m := 0; m < 1+i%4; m++ {
			var sb strings.Builder
			fmt.Fprintf(&sb, "From: Sender <s%d@example.org>\r\nTo: Rcpt <r@example.test>\r\nSubject: load %d-%d\r\nDate: Mon, 3 Mar 2025 09:30:00 +0000\r\nMessage-ID: <%d.%d@example.org>\r\nMIME-Version: 1.0\r\n", i, i, m, i, m)
			attach := (i+m)%3 == 0
			if attach {
				sb.WriteString("Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
			} else {
				sb.WriteString("Content-Type: text/plain; charset=utf-8\r\n\r\n")
			}
			for n := 0; n < 10+(i*7+m)%60; n++ {
				if n%17 == 5 {
					sb.WriteString("..a dot-stuffed line\r\n")
				}
				for w := 0; w < 10; w++ {
					sb.WriteString(words[(i+n+w)%len(words)])
					sb.WriteByte(' ')
				}
				sb.WriteString("\r\n")
			}
			if attach {
				sb.WriteString("--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"a.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
				for n := 0; n < 40; n++ {
					sb.WriteString("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n")
				}
				sb.WriteString("--b--\r\n")
			}
			conn.Client("MAIL FROM:<s" + fmt.Sprint(i) + "@example.org>\r\nRCPT TO:<r@example.test>\r\nDATA\r\n").
				Server("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n").
				Client(sb.String() + ".\r\n").
				Server("250 2.0.0 Ok: queued\r\n")
		}
		conn.Client("QUIT\r\n").Server("221 2.0.0 Bye\r\n")
		if i%2 == 0 {
			conn.Close(synth.ClientSide)
		} else {
			conn.Reset(synth.ClientSide)
		}
	}
	path := filepath.Join(t.TempDir(), "small-mail.pcap")
	if err := c.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, st.Size()
}

// readOnce runs the read path (one worker, JSON to nowhere) on path and
// returns the records written.
func readOnce(t testing.TB, path string) uint64 {
	var df decodeFlags
	fs := pflag.NewFlagSet("alloc", pflag.ContinueOnError)
	df.register(fs)
	df.workers = 1
	o, err := df.options()
	if err != nil {
		t.Fatal(err)
	}
	src, err := capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	out, _ := df.openOutput(io.Discard)
	eng := df.engine(o, out.sink)
	if err := eng.Run(src, nil); err != nil {
		t.Fatal(err)
	}
	out.flush()
	return eng.Stats().Packets
}

// Allocation budgets of the whole read path per MB of capture, on traffic
// of small messages (smallMailCapture: per MB about 75 sessions, 185
// messages, 2,200 packets and 9,000 lines). Measured: 10,200 allocations
// and 2.3 MB allocated per MB, down from 32,800 and 10.1 MB before the
// preview stopped keeping up to 64 KiB per message, body parts stopped
// allocating 11 KB of decoder buffers, header fields, packets and
// segments stopped allocating, header values came to share one string
// per header block, records stopped going through encoding/json and
// formatting their endpoints each time, and the SMTP decoder came to
// reuse its reply lines and commands, then (13,700 -> 12,800) endpoint
// strings came to be formatted into one string per connection, closed
// SMTP sessions to be reused and the sniffer to classify in place, then
// (12,800 -> 10,200) message parsers came to be reused with their header
// and preview buffers, and header blocks to share pooled buffers, then
// (10,200 -> 4,140) address values came to be cached and message parsers
// to keep their hash. The warm-up run leaves this capture's 301 address
// values in the cache, as on traffic whose correspondents repeat; with
// every value new, net/mail's parsing and the storing add about 6,600
// (TestAllocBudget would fail at 10,800). What is left is
// per message, per command and per record. One more allocation per packet
// or segment would add 2,200 per MB and break the budget; one per line,
// far more.
const (
	allocBudgetPerMB      = 6000
	allocBytesBudgetPerMB = 3 << 20
)

// TestAllocBudget: allocations of the read path per MB of capture stay
// within the budgets. Not a timing: the counts are the same on a busy
// machine.
func TestAllocBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a capture")
	}
	path, size := smallMailCapture(t)
	packets := readOnce(t, path) // warm-up: one-time allocations
	if packets == 0 {
		t.Fatal("no packets read")
	}
	const runs = 2
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		readOnce(t, path)
	}
	runtime.ReadMemStats(&after)
	mb := float64(size) / 1e6
	allocs := float64(after.Mallocs-before.Mallocs) / runs / mb
	bytes := float64(after.TotalAlloc-before.TotalAlloc) / runs / mb
	t.Logf("%.2f MB capture, %.0f packets per MB: %.0f allocations and %.2f MB allocated per MB (budgets %d, %.1f MB)",
		mb, float64(packets)/mb, allocs, bytes/1e6, allocBudgetPerMB, float64(allocBytesBudgetPerMB)/1e6)
	if allocs > allocBudgetPerMB {
		t.Errorf("%.0f allocations per MB of capture, budget %d", allocs, allocBudgetPerMB)
	}
	if bytes > allocBytesBudgetPerMB {
		t.Errorf("%.0f bytes allocated per MB of capture, budget %d", bytes, allocBytesBudgetPerMB)
	}
}

// BenchmarkReadSmallMessages: the read path on traffic of small messages
// (run with -benchmem); allocs/MB is reported too.
func BenchmarkReadSmallMessages(b *testing.B) {
	path, size := smallMailCapture(b)
	benchRead(b, path, size)
}

// benchRead runs readOnce on path (size bytes) in a loop and reports
// bytes/s, allocations and allocations per MB of capture.
func benchRead(b *testing.B, path string, size int64) {
	b.SetBytes(size)
	b.ReportAllocs()
	var ms1, ms2 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	for b.Loop() {
		readOnce(b, path)
	}
	runtime.ReadMemStats(&ms2)
	b.ReportMetric(float64(ms2.Mallocs-ms1.Mallocs)/float64(b.N)/(float64(size)/1e6), "allocs/MB")
}

// BenchmarkReadFile: the read path (one worker, JSON to io.Discard) on
// the capture named by MAILTAP_BENCH_FILE, e.g. a real-traffic capture
// recorded by pcaps/record/load.sh; skipped without it. With -benchmem
// and -memprofile it shows where a real capture's allocations come from.
func BenchmarkReadFile(b *testing.B) {
	path := os.Getenv("MAILTAP_BENCH_FILE")
	if path == "" {
		b.Skip("MAILTAP_BENCH_FILE not set")
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	benchRead(b, path, st.Size())
}
