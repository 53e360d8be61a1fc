package tlsdec

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailtap/mailtap/decode"
)

// The OpenSSL command line tools negotiate what crypto/tls will not: the
// TLS 1.3 suite of one's choice, KeyUpdate on request, encrypt-then-MAC
// (RFC 7366) for CBC suites, session-id resumption. These tests run
// s_client against s_server through a recording proxy on 127.0.0.1; they
// are skipped when openssl is not installed.

// recordingProxy accepts n connections one after the other, dials
// target for each and copies both ways, recording each read before
// forwarding it (so the order of the recording is causal).
type recordingProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns [][]chunk
	done  chan struct{}
}

func newRecordingProxy(t *testing.T, target string, n int) *recordingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &recordingProxy{ln: ln, done: make(chan struct{}), conns: make([][]chunk, n)}
	go func() {
		defer close(p.done)
		defer ln.Close()
		for i := range n {
			p.serve(i, target)
		}
	}()
	return p
}

func (p *recordingProxy) serve(i int, target string) {
	{
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			return
		}
		var wg sync.WaitGroup
		cp := func(dst, src net.Conn, dir decode.Direction) {
			defer wg.Done()
			buf := make([]byte, 32<<10)
			for {
				n, err := src.Read(buf)
				if n > 0 {
					p.mu.Lock()
					p.conns[i] = append(p.conns[i], chunk{dir, append([]byte(nil), buf[:n]...)})
					p.mu.Unlock()
					if _, werr := dst.Write(buf[:n]); werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
		}
		wg.Add(2)
		go cp(s, c, decode.ClientToServer)
		go cp(c, s, decode.ServerToClient)
		wg.Wait()
		c.Close()
		s.Close()
	}
}

// step is a line written to an openssl tool's stdin after a pause. Lines
// "K" and "k" are KeyUpdate commands (with and without update_requested),
// not data.
type step struct {
	wait time.Duration
	line string
}

func sentData(steps []step) []byte {
	var b []byte
	for _, s := range steps {
		if s.line == "K" || s.line == "k" {
			continue
		}
		b = append(b, s.line+"\n"...)
	}
	return b
}

func feedStdin(w io.WriteCloser, steps []step) {
	for _, s := range steps {
		time.Sleep(s.wait)
		io.WriteString(w, s.line+"\n")
	}
}

type opensslRun struct {
	serverArgs, clientArgs []string
	server, client         []step
	// sessIn: run a first connection that saves its session, then
	// record a second one that resumes it.
	resume bool
}

func writePEM(t *testing.T, dir string) (certFile, keyFile, rsaCertFile, rsaKeyFile string) {
	t.Helper()
	certs(t)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ek, err := x509.MarshalPKCS8PrivateKey(ecCert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := x509.MarshalPKCS8PrivateKey(rsaCert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return write("ec.pem", "CERTIFICATE", ecCert.Certificate[0]), write("ec.key", "PRIVATE KEY", ek),
		write("rsa.pem", "CERTIFICATE", rsaCert.Certificate[0]), write("rsa.key", "PRIVATE KEY", rk)
}

// runOpenSSL runs s_server and s_client with the given arguments and
// returns the recorded session, with the key log s_server wrote (and,
// with resume, the first connection's recording).
func runOpenSSL(t *testing.T, r opensslRun) (session, []chunk) {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	cert, key, rsaCert, rsaKey := writePEM(t, dir)
	keylog := filepath.Join(dir, "keys.log")
	sessFile := filepath.Join(dir, "sess.pem")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	args := []string{"s_server", "-accept", addr, "-cert", cert, "-key", key, "-dcert", rsaCert, "-dkey", rsaKey, "-keylogfile", keylog}
	if r.resume {
		args = append(args, "-naccept", "2")
	} else {
		args = append(args, "-naccept", "1")
	}
	srv := exec.Command(bin, append(args, r.serverArgs...)...)
	sin, _ := srv.StdinPipe()
	sout, _ := srv.StdoutPipe()
	srv.Stderr = srv.Stdout
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Process.Kill()
	accepting := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(sout)
		ok := false
		for sc.Scan() {
			if !ok && strings.Contains(sc.Text(), "ACCEPT") {
				ok = true
				accepting <- true
			}
		}
		if !ok {
			accepting <- false
		}
	}()
	select {
	case ok := <-accepting:
		if !ok {
			t.Fatal("s_server did not start")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("s_server did not start in time")
	}
	nconn := 1
	if r.resume {
		nconn = 2
	}
	p := newRecordingProxy(t, addr, nconn)
	if r.resume {
		// A first connection (full handshake) saving the session.
		c := exec.Command(bin, append([]string{"s_client", "-connect", p.ln.Addr().String(), "-sess_out", sessFile}, r.clientArgs...)...)
		c.Stdin = strings.NewReader("")
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("first s_client: %v\n%s", err, out)
		}
		r.clientArgs = append(r.clientArgs, "-sess_in", sessFile)
	}
	cli := exec.Command(bin, append([]string{"s_client", "-connect", p.ln.Addr().String()}, r.clientArgs...)...)
	cin, _ := cli.StdinPipe()
	var cout bytes.Buffer
	cli.Stdout, cli.Stderr = &cout, &cout
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		feedStdin(sin, r.server)
	}()
	feedStdin(cin, r.client)
	time.Sleep(time.Second)
	cin.Close()
	werr := make(chan error, 1)
	go func() { werr <- cli.Wait() }()
	select {
	case <-werr:
	case <-time.After(20 * time.Second):
		cli.Process.Kill()
		t.Fatalf("s_client did not end:\n%s", cout.String())
	}
	sin.Close()
	<-p.done
	kb, err := os.ReadFile(keylog)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	last := p.conns[len(p.conns)-1]
	var first []chunk
	if r.resume {
		first = p.conns[0]
	}
	return session{chunks: last, keylog: kb, clientWrote: sentData(r.client), serverWrote: sentData(r.server)}, first
}

func checkOpenSSL(t *testing.T, s session, keys *KeyLog, version, cipher string, resumed bool) {
	t.Helper()
	check := func(what string, r result) {
		t.Helper()
		if r.info.Reason != "" || !bytes.Equal(r.out[0], s.clientWrote) || !bytes.Equal(r.out[1], s.serverWrote) {
			t.Fatalf("%s: %+v\nclient %q, want %q\nserver %q, want %q", what, r.info, r.out[0], s.clientWrote, r.out[1], s.serverWrote)
		}
		if r.info.Version != version || r.info.Cipher != cipher || r.info.Resumed != resumed {
			t.Fatalf("%s: %+v, want %s %s resumed=%v", what, r.info, version, cipher, resumed)
		}
	}
	check("as recorded", feedChunks(keys, Config{}, s.chunks))
	check("coalesced", feedChunks(keys, Config{}, coalesce(s.chunks)))
	check("bytewise", feedChunks(keys, Config{}, bytewise(s.chunks)))
	co := coalesce(s.chunks)
	total := 0
	for _, c := range co {
		total += len(c.p)
	}
	for k := 1; k < total; k += 7 {
		r := feedChunks(keys, Config{}, splitAt(co, k))
		if r.info.Reason != "" || !bytes.Equal(r.out[0], s.clientWrote) || !bytes.Equal(r.out[1], s.serverWrote) {
			t.Fatalf("split at %d: %+v", k, r.info)
		}
	}
}

var (
	clientLines = []step{{100 * time.Millisecond, "EHLO client.example"}, {400 * time.Millisecond, "AUTH PLAIN AGJvYgBzZWNyZXQ="}}
	serverLines = []step{{0, "220 mail.example.test ESMTP"}, {400 * time.Millisecond, "250 mail.example.test"}}
)

func TestOpenSSLTLS13Suites(t *testing.T) {
	for _, c := range []struct{ suite, name string }{
		{"TLS_CHACHA20_POLY1305_SHA256", "TLS_CHACHA20_POLY1305_SHA256"},
		{"TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384"},
		{"TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"},
	} {
		t.Run(c.name, func(t *testing.T) {
			// A KeyUpdate from each side, the client's asking the
			// server to update too.
			cl := append(append([]step(nil), clientLines...), step{300 * time.Millisecond, "K"}, step{300 * time.Millisecond, "MAIL FROM:<bob@example.org>"})
			sv := append(append([]step(nil), serverLines...), step{200 * time.Millisecond, "k"}, step{300 * time.Millisecond, "250 2.1.0 ok"})
			s, _ := runOpenSSL(t, opensslRun{
				serverArgs: []string{"-tls1_3", "-ciphersuites", c.suite},
				clientArgs: []string{"-tls1_3", "-ciphersuites", c.suite},
				client:     cl, server: sv,
			})
			checkOpenSSL(t, s, keyLogOf(t, s.keylog), "TLS 1.3", c.name, false)
			// The client's update; the server's answer to it and its
			// own (which OpenSSL may send as one).
			if d := decryptorAfter(s.chunks, keyLogOf(t, s.keylog)); d.keyUpdates[0] != 1 || d.keyUpdates[1] < 1 {
				t.Fatalf("key updates followed: %v", d.keyUpdates)
			}
		})
	}
}

func TestOpenSSLTLS12EncryptThenMAC(t *testing.T) {
	for _, c := range []struct{ cipher, name string }{
		{"ECDHE-ECDSA-AES128-SHA", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"},
		{"ECDHE-RSA-AES256-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"},
		{"DHE-RSA-AES256-SHA256", "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256"},
		{"DHE-RSA-CHACHA20-POLY1305", "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, _ := runOpenSSL(t, opensslRun{
				serverArgs: []string{"-tls1_2", "-cipher", c.cipher},
				clientArgs: []string{"-tls1_2", "-cipher", c.cipher},
				client:     clientLines, server: serverLines,
			})
			if ch := clientHelloOf(s); !bytes.Contains(ch, []byte{0x00, 0x16, 0x00, 0x00}) {
				t.Fatal("the ClientHello does not offer encrypt_then_mac")
			}
			checkOpenSSL(t, s, keyLogOf(t, s.keylog), "TLS 1.2", c.name, false)
			if d := decryptorAfter(s.chunks, keyLogOf(t, s.keylog)); d.etm != strings.Contains(c.name, "CBC") {
				t.Fatalf("encrypt-then-MAC %v", d.etm)
			}
		})
	}
}

// TestOpenSSLTLS12SessionID: a session resumed by session id (no
// tickets) decrypts with the master secret of the full handshake that
// created the session, seen earlier in the capture.
func TestOpenSSLTLS12SessionID(t *testing.T) {
	s, full := runOpenSSL(t, opensslRun{
		serverArgs: []string{"-tls1_2", "-no_ticket", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"},
		clientArgs: []string{"-tls1_2", "-no_ticket", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"},
		client:     clientLines, server: serverLines, resume: true,
	})
	// OpenSSL logs the master secret for the resumed connection too;
	// keep only the full handshake's line (the first).
	var first string
	for _, l := range strings.Split(string(s.keylog), "\n") {
		if strings.HasPrefix(l, "CLIENT_RANDOM ") {
			first = l + "\n"
			break
		}
	}
	if first == "" {
		t.Fatalf("no CLIENT_RANDOM in %q", s.keylog)
	}
	// Alone, the resumed connection has no key.
	if r := feedChunks(keyLogOf(t, []byte(first)), Config{}, s.chunks); r.info.Reason != ReasonNoKey || !r.info.Resumed {
		t.Fatalf("resumed without the full handshake: %+v", r.info)
	}
	keys := keyLogOf(t, []byte(first))
	if r := feedChunks(keys, Config{}, full); r.info.Reason != "" || r.info.Resumed || !r.info.Decrypted {
		t.Fatalf("full handshake: %+v", r.info)
	}
	checkOpenSSL(t, s, keys, "TLS 1.2", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", true)
}

func decryptorAfter(chunks []chunk, keys *KeyLog) *Decryptor {
	d := New(keys, Config{}, nil)
	for _, c := range chunks {
		d.Data(c.dir, c.p, time.Unix(1, 0))
	}
	d.Close()
	return d
}

func clientHelloOf(s session) []byte {
	for _, c := range s.chunks {
		if c.dir == decode.ClientToServer {
			return c.p
		}
	}
	return nil
}

// TestOpenSSLOldVersions: TLS 1.0 (CBC IV chained across records, the
// MD5/SHA-1 PRF) and TLS 1.1 (explicit IV), with MAC-then-encrypt and
// encrypt-then-MAC.
func TestOpenSSLOldVersions(t *testing.T) {
	for _, c := range []struct {
		flag, version string
		etm           bool
	}{
		{"-tls1", "TLS 1.0", true}, {"-tls1", "TLS 1.0", false},
		{"-tls1_1", "TLS 1.1", true}, {"-tls1_1", "TLS 1.1", false},
	} {
		t.Run(fmt.Sprint(c.version, " etm=", c.etm), func(t *testing.T) {
			args := []string{c.flag, "-cipher", "ECDHE-ECDSA-AES256-SHA@SECLEVEL=0"}
			cargs := args
			if !c.etm {
				cargs = append(append([]string(nil), args...), "-no_etm")
			}
			s, _ := runOpenSSL(t, opensslRun{serverArgs: args, clientArgs: cargs, client: clientLines, server: serverLines})
			checkOpenSSL(t, s, keyLogOf(t, s.keylog), c.version, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", false)
			if d := decryptorAfter(s.chunks, keyLogOf(t, s.keylog)); d.etm != c.etm {
				t.Fatalf("encrypt-then-MAC %v", d.etm)
			}
		})
	}
}
