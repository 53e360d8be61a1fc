package server

import (
	"bufio"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestEMFILE runs the server in a child process whose file descriptor
// limit is 64, opens 100 connections to each protocol (the accept loop
// runs out of descriptors), closes them, and then requires that a new
// connection is greeted: the listeners must back off and retry, not die.
func TestEMFILE(t *testing.T) {
	if os.Getenv("MAILTAP_EMFILE_CHILD") == "1" {
		emfileChild()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestEMFILE$")
	cmd.Env = append(os.Environ(), "MAILTAP_EMFILE_CHILD=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr syncBuffer // read while the child writes
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
	}()
	addrs := map[string]string{}
	sc := bufio.NewScanner(stdout)
	for len(addrs) < 3 && sc.Scan() {
		if name, addr, ok := strings.Cut(sc.Text(), " "); ok && (name == "smtp" || name == "pop3" || name == "imap") {
			addrs[name] = addr
		}
	}
	if len(addrs) < 3 {
		t.Fatalf("child did not start: %s", stderr.String())
	}
	for _, name := range []string{"imap", "pop3", "smtp"} {
		var conns []net.Conn
		for range 100 {
			c, err := net.DialTimeout("tcp", addrs[name], 2*time.Second)
			if err != nil {
				break
			}
			conns = append(conns, c)
		}
		time.Sleep(300 * time.Millisecond) // the child hits EMFILE
		for _, c := range conns {
			c.Close()
		}
		c, err := net.DialTimeout("tcp", addrs[name], 2*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		g, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || !(strings.HasPrefix(g, "* OK") || strings.HasPrefix(g, "+OK") || strings.HasPrefix(g, "220 ")) {
			t.Fatalf("%s after running out of descriptors: greeting %q, %v\nchild log:\n%s", name, g, err, stderr.String())
		}
	}
	if !strings.Contains(stderr.String(), "too many open files") {
		t.Fatalf("the child never ran out of descriptors; the test proves nothing:\n%s", stderr.String())
	}
}

func emfileChild() {
	lim := syscall.Rlimit{Cur: 64, Max: 64}
	var old syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old)
	if old.Max < lim.Max {
		lim.Max = old.Max
	}
	s, err := New(Options{SMTPAddr: "127.0.0.1:0", POP3Addr: "127.0.0.1:0", IMAPAddr: "127.0.0.1:0",
		Users: map[string]string{"alice": "secret"}, Deterministic: true, Logger: newStderrLogger()})
	if err == nil {
		err = s.Start()
	}
	if err == nil {
		err = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for name, a := range s.Addrs() {
		fmt.Printf("%s %s\n", name, a)
	}
	var b [1]byte
	os.Stdin.Read(b[:]) // until the parent closes stdin
	s.Close()
	os.Exit(0)
}

// TestMaxConns: one connection over the per-address limit gets the
// protocol's busy reply and is closed; one over the overall limit (from
// another loopback address) too; a closed connection frees its place.
func TestMaxConns(t *testing.T) {
	s := testServer(t, func(o *Options) { o.MaxConns = 3; o.MaxConnsPerIP = 2 })
	busy := map[string]string{"imap": "* BYE [UNAVAILABLE]", "pop3": "-ERR [SYS/TEMP]", "smtp": "421 4.7.0"}
	for name, addr := range s.Addrs() {
		from := func(ip string) (net.Conn, string) {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 2 * time.Second}
			c, err := d.Dial("tcp", addr.String())
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			l, _ := bufio.NewReader(c).ReadString('\n')
			return c, l
		}
		a, _ := from("127.0.0.1")
		from("127.0.0.1")
		if _, l := from("127.0.0.1"); !strings.HasPrefix(l, busy[name]) {
			t.Fatalf("%s: third connection from one address got %q", name, l)
		}
		if _, l := from("127.0.0.2"); strings.HasPrefix(l, busy[name]) || l == "" {
			t.Fatalf("%s: a connection from another address got %q", name, l)
		}
		if _, l := from("127.0.0.3"); !strings.HasPrefix(l, busy[name]) {
			t.Fatalf("%s: fourth connection got %q", name, l)
		}
		a.Close()
		var l string
		for range 50 { // the server notices the close asynchronously
			time.Sleep(20 * time.Millisecond)
			var c net.Conn
			if c, l = from("127.0.0.1"); !strings.HasPrefix(l, busy[name]) {
				c.Close()
				break
			}
		}
		if strings.HasPrefix(l, busy[name]) || l == "" {
			t.Fatalf("%s: a freed place was not given again: %q", name, l)
		}
	}
}

func newStderrLogger() *log.Logger { return log.New(os.Stderr, "", 0) }
