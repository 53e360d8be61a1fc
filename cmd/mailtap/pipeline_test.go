package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailtap/mailtap/capture/synth"
)

// bigCapture writes a capture of n interleaved SMTP sessions, each with
// one message of about 3 kB sent in 536-byte segments (about 27 packets
// a session), and returns its path.
func bigCapture(t testing.TB, n int) string {
	t.Helper()
	c := synth.NewCapture(synth.LinkEthernet)
	srv := netip.MustParseAddrPort("198.51.100.25:25")
	body := strings.Repeat("The quick brown fox jumps over the lazy dog.\r\n", 64)
	for i := 0; i < n; i++ {
		cli := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), uint16(20000+i%40000))
		start := synth.DefaultStart.Add(time.Duration(i) * 5 * time.Millisecond)
		conn := c.Conn(cli, srv, synth.Options{Start: start, MSS: 536})
		conn.Server("220 mx.example.net ESMTP\r\n").
			Client("EHLO client.example.org\r\n").
			Server("250 mx.example.net\r\n").
			Client(fmt.Sprintf("MAIL FROM:<user%d@example.org>\r\n", i)).
			Server("250 2.1.0 Ok\r\n").
			Client("RCPT TO:<bob@example.net>\r\n").
			Server("250 2.1.5 Ok\r\n").
			Client("DATA\r\n").
			Server("354 go ahead\r\n").
			Client(fmt.Sprintf("Subject: load %d\r\n\r\n%s.\r\n", i, body)).
			Server(fmt.Sprintf("250 2.0.0 Ok: queued as Q%d\r\n", i)).
			Client("QUIT\r\n").
			Server("221 2.0.0 Bye\r\n").
			Close(synth.ClientSide)
	}
	path := filepath.Join(t.TempDir(), "big.pcap")
	if err := c.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestReadWorkersStatsRace: read with 4 workers on a capture of more than
// 100k packets calls the progress callback, which reads the engine's
// statistics while the workers run (every 64k packets). Under -race
// (.ci/run) this reported a data race before the statistics became safe to
// read at any time. The output must not depend on the worker count.
func TestReadWorkersStatsRace(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a 100k-packet capture")
	}
	const sessions = 4000
	path := bigCapture(t, sessions)
	four, errOut, code := runCLI("read", "--workers", "4", "--stats", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	m := regexp.MustCompile(`packets (\d+) `).FindSubmatch(errOut)
	if m == nil {
		t.Fatalf("no statistics on stderr: %s", errOut)
	}
	if n, _ := strconv.Atoi(string(m[1])); n < 100000 {
		t.Fatalf("only %d packets; the test wants >= 100k", n)
	}
	recs := parseRecords(t, string(four))
	if got := len(ofType(recs, "session")); got != sessions {
		t.Errorf("%d sessions, want %d", got, sessions)
	}
	mails := ofType(recs, "smtp.mail")
	if len(mails) != sessions {
		t.Fatalf("%d mails, want %d", len(mails), sessions)
	}
	for _, r := range mails {
		if r.str("status") != "accepted" {
			t.Fatalf("mail %v", r)
		}
	}
	one, _, _ := runCLI("read", "--workers", "1", path)
	if !bytes.Equal(one, four) {
		t.Errorf("4 workers and 1 give different records:\n%s", firstDiff(string(one), string(four)))
	}
}

// TestReadSignal: SIGINT or SIGTERM while read decodes (here from a pipe
// that stalls half way) ends it with every record written whole, and exit
// status 130 or 143.
func TestReadSignal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "mailtap")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bigCapture(t, 1000))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sig  os.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		cmd := exec.Command(bin, "read", "--workers", "2", "-")
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Half the capture, cut inside a packet record; then silence.
		if _, err := in.Write(data[:len(data)/2+7]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		cmd.Process.Signal(c.sig)
		kill := time.AfterFunc(20*time.Second, func() { cmd.Process.Kill() })
		err = cmd.Wait()
		kill.Stop()
		in.Close()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != c.code {
			t.Fatalf("%v: %v, want exit %d; stderr: %s", c.sig, err, c.code, stderr.String())
		}
		out := stdout.String()
		if !strings.HasSuffix(out, "\n") {
			t.Fatalf("%v: output ends in a partial line: %q", c.sig, out[max(0, len(out)-80):])
		}
		recs := parseRecords(t, out)
		sessions := ofType(recs, "session")
		if len(sessions) < 100 || len(sessions) >= 1000 {
			t.Errorf("%v: %d sessions of 1000 written (half the capture was read)", c.sig, len(sessions))
		}
	}
}

// TestMaxConnsEvicted: past --max-conns (for the whole process, whatever
// the worker count) the least recently active connection is closed with
// close_reason evicted and the evicted anomaly, and --stats counts them.
func TestMaxConnsEvicted(t *testing.T) {
	path := bigCapture(t, 200) // sessions 5 ms apart, each about 30 ms long
	for _, workers := range []string{"1", "2"} {
		out, errOut, code := runCLI("read", "--max-conns", "2", "--workers", workers, "--stats", path)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		m := regexp.MustCompile(`evicted (\d+),`).FindSubmatch(errOut)
		if m == nil {
			t.Fatalf("no statistics: %s", errOut)
		}
		want, _ := strconv.Atoi(string(m[1]))
		evicted := 0
		for _, s := range ofType(parseRecords(t, string(out)), "session") {
			if s.str("close_reason") != "evicted" {
				continue
			}
			evicted++
			if a := s.list("anomalies"); s.str("state") == "complete" || len(a) == 0 || a[len(a)-1] != "evicted" {
				t.Errorf("workers %s: evicted session %v", workers, s)
			}
		}
		// Evicted connections that had carried no byte yet (a SYN) make
		// no record.
		if evicted == 0 || evicted > want {
			t.Errorf("workers %s: %d sessions closed as evicted, stats say %d", workers, evicted, want)
		}
	}
}
