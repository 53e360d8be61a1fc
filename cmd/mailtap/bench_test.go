package main

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/mailtap/mailtap/capture"
	"github.com/mailtap/mailtap/capture/synth"
)

var (
	benchOnce sync.Once
	benchPath string
	benchErr  error
)

// benchCapture generates (once per process) a capture of at least 100 MB
// of mixed SMTP traffic: many sessions, pipelined and not, messages from
// 1 KB to 2 MB with base64 attachments, 1460-byte segments.
func benchCapture(b *testing.B) string {
	benchOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mailtap-bench")
		if err != nil {
			benchErr = err
			return
		}
		benchPath = filepath.Join(dir, "mixed-smtp.pcap")
		c := synth.NewCapture(synth.LinkEthernet)
		start := synth.DefaultStart
		total := 0
		sizes := []int{1 << 10, 8 << 10, 64 << 10, 512 << 10, 2 << 20}
		for i := 0; total < 100<<20; i++ {
			cli := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + i%200)}), uint16(20000+i%40000))
			srv := netip.MustParseAddrPort("198.51.100.25:25")
			conn := c.Conn(cli, srv, synth.Options{Start: start.Add(time.Duration(i) * 50 * time.Millisecond)})
			conn.Server("220 mx.example.test ESMTP Postfix\r\n").
				Client("EHLO client" + fmt.Sprint(i) + ".example\r\n").
				Server("250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n250 CHUNKING\r\n")
			for m := 0; m < 1+i%3; m++ {
				msg := benchMessage(i, m, sizes[(i+m)%len(sizes)])
				total += len(msg)
				conn.Client("MAIL FROM:<sender" + fmt.Sprint(i) + "@example.org> SIZE=" + fmt.Sprint(len(msg)) + "\r\nRCPT TO:<rcpt@example.test>\r\nDATA\r\n").
					Server("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n").
					Client(msg + ".\r\n").
					Server("250 2.0.0 Ok: queued as ABC" + fmt.Sprint(i) + "\r\n")
			}
			conn.Client("QUIT\r\n").Server("221 2.0.0 Bye\r\n").Close(synth.ClientSide)
		}
		benchErr = c.WriteFile(benchPath)
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchPath
}

func benchMessage(i, m, size int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "From: Sender %d <sender%d@example.org>\r\nTo: rcpt@example.test\r\nSubject: =?UTF-8?B?QmVuY2htYXJr?= %d/%d\r\nDate: Mon, 3 Mar 2025 09:30:00 +0000\r\nMessage-ID: <%d.%d@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nHello.\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"data.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", i, i, i, m, i, m)
	line := "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n"
	for sb.Len() < size {
		sb.WriteString(line)
	}
	sb.WriteString("--b--\r\n")
	return sb.String()
}

// BenchmarkReadSMTP measures the whole decode path (file read, link/IP/TCP
// parsing, reassembly, SMTP decoding, message summaries, JSON output) on a
// generated capture of at least 100 MB, with one worker and with one per
// CPU. MB/s is of the capture file.
func BenchmarkReadSMTP(b *testing.B) {
	path := benchCapture(b)
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	for _, workers := range []int{1, runtime.NumCPU()} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			b.SetBytes(st.Size())
			var packets uint64
			for i := 0; i < b.N; i++ {
				var df decodeFlags
				fs := pflag.NewFlagSet("bench", pflag.ContinueOnError)
				df.register(fs)
				df.workers = workers
				o, err := df.options()
				if err != nil {
					b.Fatal(err)
				}
				src, err := capture.OpenFile(path)
				if err != nil {
					b.Fatal(err)
				}
				out, _ := df.openOutput(io.Discard)
				eng := df.engine(o, out.sink)
				if err := eng.Run(src, nil); err != nil {
					b.Fatal(err)
				}
				out.flush()
				src.Close()
				packets = eng.Stats().Packets
			}
			b.ReportMetric(float64(packets)*float64(b.N)/b.Elapsed().Seconds(), "packets/s")
		})
	}
}
