package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mailtap/mailtap/capture/bpfexpr"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("sniff needs root (or CAP_NET_RAW)")
	}
}

// lockedBuffer is a bytes.Buffer safe for one writer and polling readers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// smtpResponder is a minimal SMTP server on a loopback port: enough for
// net/smtp and smtp-source, accepting every message.
type smtpResponder struct {
	ln       net.Listener
	port     int
	accepted atomic.Int64
}

func startSMTP(t *testing.T) *smtpResponder {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpResponder{ln: ln, port: ln.Addr().(*net.TCPAddr).Port}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return s
}

func (s *smtpResponder) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	reply := func(lines ...string) bool {
		for _, l := range lines {
			w.WriteString(l + "\r\n")
		}
		// Answer pipelined commands in one write, as Postfix does.
		if r.Buffered() > 0 {
			return true
		}
		return w.Flush() == nil
	}
	reply("220 mx.test ESMTP mailtap-test")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb := strings.ToUpper(strings.TrimSpace(line))
		if i := strings.IndexAny(verb, " :"); i >= 0 {
			verb = verb[:i]
		}
		switch verb {
		case "EHLO":
			reply("250-mx.test", "250-PIPELINING", "250 8BITMIME")
		case "HELO", "RSET", "NOOP":
			reply("250 2.0.0 Ok")
		case "MAIL":
			reply("250 2.1.0 Ok")
		case "RCPT":
			reply("250 2.1.5 Ok")
		case "DATA":
			w.WriteString("354 End data with <CR><LF>.<CR><LF>\r\n")
			w.Flush()
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
			}
			n := s.accepted.Add(1)
			reply(fmt.Sprintf("250 2.0.0 Ok: queued as Q%d", n))
		case "QUIT":
			reply("221 2.0.0 Bye")
			w.Flush()
			return
		default:
			reply("502 5.5.2 Error: command not recognized")
		}
	}
}

// sniffRun is a running "mailtap sniff" inside the test process.
type sniffRun struct {
	stdout, stderr *lockedBuffer
	done           chan error
	cancel         context.CancelFunc
}

// startSniff runs sniff with args until stop. It returns once the capture
// is open.
func startSniff(t *testing.T, args ...string) *sniffRun {
	t.Helper()
	fs, sf, df := sniffFlagSet()
	if err := fs.Parse(args); err != nil || len(fs.Args()) > 0 {
		t.Fatalf("flags %q: %v (left %q)", args, err, fs.Args())
	}
	r := &sniffRun{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- sniff(ctx, sf, df, r.stdout, r.stderr) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(r.stderr.String(), "capturing on") {
		select {
		case err := <-r.done:
			t.Fatalf("sniff ended before capturing: %v\n%s", err, r.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sniff did not start:\n%s", r.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return r
}

// stop ends the capture and returns the records and the summary.
func (r *sniffRun) stop(t *testing.T) ([]record, string) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("sniff: %v\n%s", err, r.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("sniff did not stop:\n%s", r.stderr)
	}
	return parseRecords(t, r.stdout.String()), r.stderr.String()
}

var dropsRE = regexp.MustCompile(`(\d+) dropped \(ring full`)

func kernelDrops(t *testing.T, summary string) int {
	t.Helper()
	m := dropsRE.FindStringSubmatch(summary)
	if m == nil {
		t.Fatalf("no kernel drop count in the summary:\n%s", summary)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func sendMails(t *testing.T, port, n, parallel int, prefix string) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var wg sync.WaitGroup
	next := atomic.Int64{}
	var failed atomic.Int64
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				from := fmt.Sprintf("%s-%d@client.test", prefix, i)
				msg := fmt.Sprintf("From: <%s>\r\nTo: <rcpt@mx.test>\r\nSubject: test %d\r\nMessage-ID: <%s-%d@client.test>\r\n\r\nbody of message %d\r\n%s\r\n",
					from, i, prefix, i, i, strings.Repeat("0123456789abcdef", i%64))
				if err := smtp.SendMail(addr, nil, from, []string{"rcpt@mx.test"}, []byte(msg)); err != nil {
					if failed.Add(1) == 1 {
						t.Errorf("send %d: %v", i, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d sends failed", f, n)
	}
}

// checkMails asserts that every sender prefix-0..n-1 appears in exactly one
// accepted smtp.mail record. With slack > 0 (packets were dropped), up to
// slack mails may be missing or damaged.
func checkMails(t *testing.T, recs []record, prefix string, n, slack int) {
	t.Helper()
	seen := map[string]int{}
	bad := 0
	for _, r := range recs {
		if r.str("type") != "smtp.mail" {
			continue
		}
		from := r.str("mail_from")
		if !strings.HasPrefix(from, prefix+"-") {
			continue
		}
		seen[from]++
		rc := r.list("rcpt_to")
		ok := r.str("status") == "accepted" && len(rc) == 1 && record(rc[0].(map[string]any)).str("addr") == "rcpt@mx.test"
		if !ok {
			bad++
			if slack == 0 {
				b, _ := json.Marshal(r)
				t.Errorf("damaged mail record: %s", b)
			}
		}
	}
	missing := 0
	for i := range n {
		from := fmt.Sprintf("%s-%d@client.test", prefix, i)
		switch seen[from] {
		case 0:
			missing++
			if missing <= 5 && slack == 0 {
				t.Errorf("no smtp.mail record for %s", from)
			}
		case 1:
		default:
			t.Errorf("%s decoded %d times", from, seen[from])
		}
	}
	if missing+bad > slack {
		t.Errorf("%d of %d mails not decoded and %d damaged (reported drops allow %d)", missing, n, bad, slack)
	}
	if slack > 0 {
		t.Logf("%d packets dropped: %d of %d mails missing, %d damaged", slack, missing, n, bad)
	}
}

func TestSniffLoopbackSMTP(t *testing.T) {
	needRoot(t)
	srv := startSMTP(t)
	pcap := filepath.Join(t.TempDir(), "out.pcapng")
	ex := filepath.Join(t.TempDir(), "extract")
	// Other mail traffic on lo (Postfix, Dovecot on 110/143, which the
	// default port map decodes) must not reach the test: it filters to
	// its own port. The POP3 chatter on a mapped port stands for it.
	noise := popNoise(t)
	run := startSniff(t, "-i", "lo", "--workers", "2", "--ports", fmt.Sprintf("smtp=%d", srv.port),
		"--ports", fmt.Sprintf("pop3=%d", noise.port), "--port-filter", strconv.Itoa(srv.port), "-w", pcap, "--extract", ex)
	const n = 50
	noise.talk(t)
	sendMails(t, srv.port, n, 4, "small")
	noise.talk(t)
	recs, summary := run.stop(t)
	t.Logf("summary:\n%s", summary)
	checkMails(t, recs, "small", n, 0)
	sessions := 0
	for _, r := range recs {
		if r.str("type") == "session" && r.str("proto") == "smtp" {
			sessions++
			if r.str("state") != "complete" {
				t.Errorf("session %v: state %q", r["session"], r.str("state"))
			}
		}
	}
	if sessions != n {
		t.Errorf("%d smtp sessions, want %d", sessions, n)
	}
	ids := map[float64]bool{}
	for _, r := range recs {
		if r.str("type") == "session" {
			if ids[r.num("session")] {
				t.Errorf("session id %v used twice", r["session"])
			}
			ids[r.num("session")] = true
		}
	}
	if !strings.Contains(summary, fmt.Sprintf("sessions %d (smtp %d, pop3 0, imap 0)", n, n)) ||
		!strings.Contains(summary, fmt.Sprintf("transactions %d (smtp mails %d,", n, n)) {
		t.Errorf("summary does not count %d sessions and mails:\n%s", n, summary)
	}
	if d := kernelDrops(t, summary); d != 0 {
		t.Errorf("%d kernel drops for %d small sessions", d, n)
	}
	// Every mail was extracted, and indexed once sniff ended.
	emls, _ := filepath.Glob(filepath.Join(ex, "*.eml"))
	idx, err := os.ReadFile(filepath.Join(ex, "index.json"))
	if len(emls) != n || err != nil || strings.Count(string(idx), `"file":`) != n {
		t.Errorf("extracted %d .eml files, index.json (%v) lists %d; want %d", len(emls), err, strings.Count(string(idx), `"file":`), n)
	}
	// The pcapng file decodes to the same mails.
	again := decodeFile(t, pcap, "--ports", fmt.Sprintf("smtp=%d", srv.port), "--workers", "1")
	checkMails(t, again, "small", n, 0)
}

// popNoise is a POP3-speaking listener on 127.0.0.1: other mail traffic
// on lo while a sniff test runs.
type noiseServer struct{ port int }

func popNoise(t *testing.T) *noiseServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "+OK noise\r\n")
			bufio.NewReader(c).ReadString('\n')
			fmt.Fprintf(c, "+OK bye\r\n")
			c.Close()
		}
	}()
	return &noiseServer{port: l.Addr().(*net.TCPAddr).Port}
}

// talk runs one POP3 session against the noise server.
func (n *noiseServer) talk(t *testing.T) {
	t.Helper()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", n.port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	r.ReadString('\n')
	fmt.Fprintf(c, "QUIT\r\n")
	r.ReadString('\n')
}

func TestSniffBurst(t *testing.T) {
	needRoot(t)
	if testing.Short() {
		t.Skip("burst of 2000 sessions skipped with -short")
	}
	srv := startSMTP(t)
	run := startSniff(t, "-i", "lo", "--workers", "2", "--ports", fmt.Sprintf("smtp=%d", srv.port), "--stats", "1s")
	const n = 2000
	start := time.Now()
	sendMails(t, srv.port, n, 32, "burst")
	elapsed := time.Since(start)
	recs, summary := run.stop(t)
	drops := kernelDrops(t, summary)
	t.Logf("%d sessions in %v (%.0f/s), kernel drops %d; summary:\n%s", n, elapsed, float64(n)/elapsed.Seconds(), drops, summary)
	if elapsed > 2*time.Second && !strings.Contains(summary, " new), ") {
		t.Errorf("no periodic statistics in %v with --stats 1s", elapsed)
	}
	// A session needs at least one lost packet to go missing.
	checkMails(t, recs, "burst", n, drops)
	if srv.accepted.Load() < n {
		t.Errorf("server accepted %d of %d", srv.accepted.Load(), n)
	}
}

func TestSniffDuration(t *testing.T) {
	needRoot(t)
	fs, sf, df := sniffFlagSet()
	if err := fs.Parse([]string{"-i", "lo", "--duration", "300ms", "--workers", "1"}); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	start := time.Now()
	if err := sniff(context.Background(), sf, df, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 5*time.Second {
		t.Errorf("--duration 300ms ran %v", d)
	}
	if !strings.Contains(errb.String(), "sessions 0 (smtp 0, pop3 0, imap 0)") {
		t.Errorf("summary:\n%s", errb.String())
	}
}

// TestSniffSignal runs the built binary, stops it with SIGINT and expects a
// summary and exit 0.
func TestSniffSignal(t *testing.T) {
	needRoot(t)
	if find("sniff") == nil {
		t.Skip("sniff is not in the command list yet")
	}
	bin := filepath.Join(t.TempDir(), "mailtap")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	srv := startSMTP(t)
	cmd := exec.Command(bin, "sniff", "-i", "lo", "--workers", "1", "--ports", fmt.Sprintf("smtp=%d", srv.port))
	var stdout bytes.Buffer
	stderr := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; !strings.Contains(stderr.String(), "capturing on"); i++ {
		if i > 500 {
			cmd.Process.Kill()
			t.Fatalf("did not start:\n%s", stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	sendMails(t, srv.port, 3, 1, "sig")
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr)
	}
	checkMails(t, parseRecords(t, stdout.String()), "sig", 3, 0)
	if !strings.Contains(stderr.String(), "transactions 3 (smtp mails 3,") {
		t.Errorf("summary:\n%s", stderr)
	}
}

func TestSniffErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-i", "mailtap-nope0"}, `no such interface: "mailtap-nope0"`},
		{nil, "no interface given"},
		{[]string{"-i", "lo", "--workers", "0"}, "--workers 0"},
		{[]string{"-i", "lo", "--snaplen", "10"}, "--snaplen 10"},
	} {
		fs, sf, df := sniffFlagSet()
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		err := sniff(context.Background(), sf, df, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("sniff %v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestSniffFlags checks that sniff takes read's decode flags, and its own
// --workers and --stats (a duration).
func TestSniffFlags(t *testing.T) {
	fs, sf, df := sniffFlagSet()
	err := fs.Parse([]string{"-i", "any", "--stats", "10s", "--workers", "3", "-f", "text", "--ports", "smtp=2525", "--level", "commands", "-w", "x.pcapng", "--bpf-ports=false"})
	if err != nil {
		t.Fatal(err)
	}
	if sf.every != 10*time.Second || sf.workers != 3 || sf.iface != "any" || sf.write != "x.pcapng" || sf.bpfPorts {
		t.Errorf("sniff flags %+v", *sf)
	}
	if df.format != "text" || df.level != "commands" || len(df.ports.ports) != 5 {
		t.Errorf("decode flags: format %q level %q ports %v", df.format, df.level, df.ports.ports)
	}
	if got := sniffPorts(df); fmt.Sprint(got) != "[110 143 993 995 2525]" {
		t.Errorf("kernel filter ports %v", got)
	}
	fs, sf, _ = sniffFlagSet()
	if err := fs.Parse([]string{"--stats=2s", "--duration", "1m"}); err != nil || len(fs.Args()) != 0 {
		t.Errorf("parse: %v, args %q", err, fs.Args())
	}
	if sf.every != 2*time.Second || sf.duration != time.Minute {
		t.Errorf("--stats=2s --duration 1m: %+v", *sf)
	}
}

// TestSniffSMTPSource pushes Postfix's smtp-source against smtp-sink on
// loopback while sniffing, and checks that every message was decoded or
// that the drops reported account for the missing ones. It runs only when
// MAILTAP_SMTP_SOURCE is set to the number of messages (e.g. 20000).
func TestSniffSMTPSource(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("MAILTAP_SMTP_SOURCE"))
	if n <= 0 {
		t.Skip("set MAILTAP_SMTP_SOURCE=<messages> to run smtp-source against smtp-sink")
	}
	needRoot(t)
	source, err1 := exec.LookPath("smtp-source")
	sinkBin, err2 := exec.LookPath("smtp-sink")
	if err1 != nil || err2 != nil {
		for _, dir := range []string{"/usr/sbin", "/usr/lib/postfix/sbin"} {
			if source == "" || err1 != nil {
				if _, err := os.Stat(dir + "/smtp-source"); err == nil {
					source, err1 = dir+"/smtp-source", nil
				}
			}
			if sinkBin == "" || err2 != nil {
				if _, err := os.Stat(dir + "/smtp-sink"); err == nil {
					sinkBin, err2 = dir+"/smtp-sink", nil
				}
			}
		}
	}
	if err1 != nil || err2 != nil {
		t.Skip("smtp-source / smtp-sink not installed (Postfix)")
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	sink := exec.Command(sinkBin, "-u", "nobody", fmt.Sprintf("127.0.0.1:%d", port), "1024")
	var sinkErr bytes.Buffer
	sink.Stderr = &sinkErr
	if err := sink.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sink.Process.Kill(); sink.Wait() }()
	for i := 0; ; i++ {
		c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			break
		}
		if i > 100 {
			t.Fatalf("smtp-sink did not start: %s", sinkErr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, mode := range []struct {
		name  string
		extra []string
	}{
		{"session-per-message", nil},
		{"reused-sessions", []string{"-d"}}, // smtp-source -d: many messages per connection
	} {
		t.Run(mode.name, func(t *testing.T) { smtpSourceRun(t, source, port, n, mode.extra) })
	}
}

func smtpSourceRun(t *testing.T, source string, port, n int, extra []string) {
	run := startSniff(t, "-i", "lo", "--ports", fmt.Sprintf("smtp=%d", port), "--stats", "2s")
	start := time.Now()
	args := append([]string{"-s", "40", "-m", strconv.Itoa(n), "-N", "-f", "load@source.test", "-t", "rcpt@sink.test"}, extra...)
	src := exec.Command(source, append(args, fmt.Sprintf("127.0.0.1:%d", port))...)
	if out, err := src.CombinedOutput(); err != nil {
		t.Fatalf("smtp-source: %v\n%s", err, out)
	}
	elapsed := time.Since(start)
	recs, summary := run.stop(t)
	drops := kernelDrops(t, summary)
	rcpts := map[string]bool{}
	accepted := 0
	for _, r := range recs {
		if r.str("type") != "smtp.mail" || r.str("mail_from") != "load@source.test" {
			continue
		}
		if r.str("status") == "accepted" {
			accepted++
		}
		for _, rc := range r.list("rcpt_to") {
			rcpts[record(rc.(map[string]any)).str("addr")] = true
		}
	}
	t.Logf("smtp-source: %d messages in %v (%.0f messages/s); decoded %d accepted mails, %d distinct recipients; kernel drops %d\n%s",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), accepted, len(rcpts), drops, summary)
	if accepted+drops < n {
		t.Errorf("%d of %d messages decoded as accepted, and only %d packets reported dropped", accepted, n, drops)
	}
	if drops == 0 && (accepted != n || len(rcpts) != n) {
		t.Errorf("no drops, but %d accepted mails and %d distinct recipients for %d messages", accepted, len(rcpts), n)
	}
}

// TestSniffBPF: a --bpf expression becomes the kernel filter.
func TestSniffBPF(t *testing.T) {
	needRoot(t)
	if !bpfexpr.Available {
		t.Skip("built without -tags pcap: --bpf is unavailable (TestReadBPF checks the error)")
	}
	srv := startSMTP(t)
	run := startSniff(t, "-i", "lo", "--ports", fmt.Sprintf("smtp=%d", srv.port), "--bpf", fmt.Sprintf("tcp port %d", srv.port))
	sendMails(t, srv.port, 5, 1, "bpf")
	recs, summary := run.stop(t)
	if !strings.Contains(summary, fmt.Sprintf(`"tcp port %d"`, srv.port)) {
		t.Errorf("the summary does not name the filter:\n%s", summary)
	}
	checkMails(t, recs, "bpf", 5, 0)
}
