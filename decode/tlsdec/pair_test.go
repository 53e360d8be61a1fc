//go:debug tlsrsakex=1
//go:debug tls3des=1

package tlsdec

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mailtap/mailtap/decode"
)

// chunk is what one Read or Write on the server side of a connection
// carried: the byte stream as a capture would see it, in order.
type chunk struct {
	dir decode.Direction
	p   []byte
}

// recConn records the server side's reads (client to server) and writes
// (server to client) in the order they happen.
type recConn struct {
	net.Conn
	mu     sync.Mutex
	chunks []chunk
}

func (c *recConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.add(decode.ClientToServer, p[:n])
	}
	return n, err
}

func (c *recConn) Write(p []byte) (int, error) {
	c.add(decode.ServerToClient, p)
	return c.Conn.Write(p)
}

func (c *recConn) add(dir decode.Direction, p []byte) {
	c.mu.Lock()
	c.chunks = append(c.chunks, chunk{dir, append([]byte(nil), p...)})
	c.mu.Unlock()
}

var (
	certOnce sync.Once
	rsaCert  tls.Certificate
	ecCert   tls.Certificate
)

func selfSigned(t testing.TB, key crypto.Signer) tls.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mail.example.test"},
		DNSNames:     []string{"mail.example.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func certs(t testing.TB) {
	certOnce.Do(func() {
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		rsaCert, ecCert = selfSigned(t, rk), selfSigned(t, ek)
	})
}

// session is one recorded TLS connection with what each side wrote.
type session struct {
	chunks       []chunk
	keylog       []byte
	clientWrote  []byte
	serverWrote  []byte
	version      uint16
	cipher       uint16
	didResume    bool
	clientConfig *tls.Config
}

// exchange is what the application does over the connection: the client
// writes each of cw in turn and the server answers each with sw.
type exchange struct {
	greet  []byte // written by the server first, if set
	cw, sw [][]byte
}

// smallExchange is short enough to be cut at every byte boundary.
func smallExchange() exchange {
	return exchange{
		cw: [][]byte{[]byte("EHLO client.example\r\n"), []byte("AUTH PLAIN AGVtYWlsAHNlY3JldA==\r\n"), []byte("QUIT\r\n")},
		sw: [][]byte{[]byte("250-mail.example.test\r\n250 OK\r\n"), []byte("235 2.7.0 ok\r\n"), []byte("221 bye\r\n")},
	}
}

// bigExchange carries a message of several records.
func bigExchange() exchange {
	big := bytes.Repeat([]byte("0123456789abcdef-the quick brown fox\r\n"), 1200) // ~46 KB
	return exchange{
		cw: [][]byte{[]byte("EHLO client.example\r\n"), []byte("AUTH PLAIN AGVtYWlsAHNlY3JldA==\r\n"), big, []byte("QUIT\r\n")},
		sw: [][]byte{[]byte("250-mail.example.test\r\n250 OK\r\n"), []byte("235 2.7.0 ok\r\n"), []byte("250 2.0.0 queued\r\n"), []byte("221 bye\r\n")},
	}
}

// runPair runs a crypto/tls client and server over loopback TCP and records
// the server's side of the wire.
func runPair(t testing.TB, ccfg, scfg *tls.Config, ex exchange) session {
	t.Helper()
	certs(t)
	var keys bytes.Buffer
	var kmu sync.Mutex
	ccfg = ccfg.Clone()
	ccfg.InsecureSkipVerify = true
	ccfg.ServerName = "mail.example.test" // also the session cache key
	ccfg.KeyLogWriter = writerFunc(func(p []byte) (int, error) {
		kmu.Lock()
		defer kmu.Unlock()
		return keys.Write(p)
	})
	cc, sc := tcpPair(t)
	rc := &recConn{Conn: sc}
	srv := tls.Server(rc, scfg)
	cli := tls.Client(cc, ccfg)
	errc := make(chan error, 1)
	var sessOut session
	go func() {
		defer srv.Close()
		if ex.greet != nil {
			if _, err := srv.Write(ex.greet); err != nil {
				errc <- err
				return
			}
		}
		for i, w := range ex.cw {
			got := make([]byte, len(w))
			if _, err := io.ReadFull(srv, got); err != nil {
				errc <- fmt.Errorf("server read %d: %w", i, err)
				return
			}
			if _, err := srv.Write(ex.sw[i]); err != nil {
				errc <- fmt.Errorf("server write %d: %w", i, err)
				return
			}
		}
		// Up to the client's close_notify, so neither side's Close waits.
		_, err := io.Copy(io.Discard, srv)
		errc <- err
	}()
	if ex.greet != nil {
		got := make([]byte, len(ex.greet))
		if _, err := io.ReadFull(cli, got); err != nil {
			t.Fatalf("client read greeting: %v", err)
		}
		sessOut.serverWrote = append(sessOut.serverWrote, got...)
	}
	for i, w := range ex.cw {
		if _, err := cli.Write(w); err != nil {
			t.Fatalf("client write %d: %v", i, err)
		}
		sessOut.clientWrote = append(sessOut.clientWrote, w...)
		got := make([]byte, len(ex.sw[i]))
		if _, err := io.ReadFull(cli, got); err != nil {
			t.Fatalf("client read %d: %v", i, err)
		}
		sessOut.serverWrote = append(sessOut.serverWrote, got...)
	}
	st := cli.ConnectionState()
	cli.Close()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	sessOut.chunks = rc.chunks
	rc.mu.Unlock()
	kmu.Lock()
	sessOut.keylog = append([]byte(nil), keys.Bytes()...)
	kmu.Unlock()
	sessOut.version, sessOut.cipher, sessOut.didResume = st.Version, st.CipherSuite, st.DidResume
	sessOut.clientConfig = ccfg
	return sessOut
}

// tcpPair returns both ends of a loopback TCP connection. (net.Pipe has
// no buffer: a server that sends two flights in a row, as after a
// HelloRetryRequest, would deadlock against a client that writes.)
func tcpPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	return client, r.c
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// result is what a Decryptor produced.
type result struct {
	out  [2][]byte
	ts   [2][]time.Time
	info Info
}

// feedChunks feeds chunks to a fresh Decryptor; chunk i gets timestamp i.
func feedChunks(keys *KeyLog, cfg Config, chunks []chunk) result {
	var r result
	base := time.Unix(1700000000, 0)
	d := New(keys, cfg, func(dir decode.Direction, p []byte, ts time.Time) {
		r.out[dir-1] = append(r.out[dir-1], p...)
		r.ts[dir-1] = append(r.ts[dir-1], ts)
	})
	for i, c := range chunks {
		d.Data(c.dir, c.p, base.Add(time.Duration(i)*time.Millisecond))
	}
	d.Close()
	r.info = d.Info()
	return r
}

// coalesce merges consecutive chunks of one direction, so that segments
// carry several records.
func coalesce(chunks []chunk) []chunk {
	var out []chunk
	for _, c := range chunks {
		if n := len(out); n > 0 && out[n-1].dir == c.dir {
			out[n-1].p = append(out[n-1].p, c.p...)
			continue
		}
		out = append(out, chunk{c.dir, append([]byte(nil), c.p...)})
	}
	return out
}

// splitAt cuts the stream at global byte offset k (one more segment).
func splitAt(chunks []chunk, k int) []chunk {
	out := make([]chunk, 0, len(chunks)+1)
	for _, c := range chunks {
		if k > 0 && k < len(c.p) {
			out = append(out, chunk{c.dir, c.p[:k]}, chunk{c.dir, c.p[k:]})
		} else {
			out = append(out, c)
		}
		k -= len(c.p)
	}
	return out
}

// bytewise feeds every byte as its own segment.
func bytewise(chunks []chunk) []chunk {
	var out []chunk
	for _, c := range chunks {
		for i := range c.p {
			out = append(out, chunk{c.dir, c.p[i : i+1]})
		}
	}
	return out
}

func keyLogOf(t testing.TB, b []byte) *KeyLog {
	t.Helper()
	k := NewKeyLog()
	if err := k.Read(bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	if _, bad := k.Stats(); bad != 0 {
		t.Fatalf("%d bad key log lines in\n%s", bad, b)
	}
	return k
}

func checkResult(t testing.TB, what string, s session, r result) {
	t.Helper()
	if r.info.Reason != "" {
		t.Fatalf("%s: decryption failed: %s (%v)", what, r.info.Reason, r.info.ReasonDir)
	}
	if !bytes.Equal(r.out[0], s.clientWrote) {
		t.Fatalf("%s: client plaintext differs: got %d bytes, want %d", what, len(r.out[0]), len(s.clientWrote))
	}
	if !bytes.Equal(r.out[1], s.serverWrote) {
		t.Fatalf("%s: server plaintext differs: got %d bytes %q, want %d", what, len(r.out[1]), r.out[1][:min(len(r.out[1]), 40)], len(s.serverWrote))
	}
	if want := tls.VersionName(s.version); r.info.Version != want {
		t.Fatalf("%s: version %q, want %q", what, r.info.Version, want)
	}
	if want := tls.CipherSuiteName(s.cipher); r.info.Cipher != want {
		t.Fatalf("%s: cipher %q, want %q", what, r.info.Cipher, want)
	}
	if r.info.Resumed != s.didResume {
		t.Fatalf("%s: resumed %v, want %v", what, r.info.Resumed, s.didResume)
	}
}

// checkWhole feeds the session as recorded, coalesced (several records
// per segment) and one byte per segment.
func checkWhole(t testing.TB, s session, keys *KeyLog) {
	t.Helper()
	checkResult(t, "as recorded", s, feedChunks(keys, Config{}, s.chunks))
	checkResult(t, "coalesced", s, feedChunks(keys, Config{}, coalesce(s.chunks)))
	checkResult(t, "bytewise", s, feedChunks(keys, Config{}, bytewise(s.chunks)))
}

// checkSplits does checkWhole and cuts the coalesced stream at every byte
// boundary (every step-th one in the middle of long streams, but every
// one near the start and the end, where the handshake is).
func checkSplits(t testing.TB, s session, keys *KeyLog) {
	t.Helper()
	checkWhole(t, s, keys)
	co := coalesce(s.chunks)
	total := 0
	for _, c := range co {
		total += len(c.p)
	}
	step := 1
	if testing.Short() || total > 8000 {
		step = 17
	}
	for k := 1; k < total; k++ {
		if step > 1 && k > 3000 && k < total-3000 && k%step != 0 {
			continue
		}
		checkResult(t, fmt.Sprintf("split at %d", k), s, feedChunks(keys, Config{}, splitAt(co, k)))
	}
}

func TestCryptoTLS13(t *testing.T) {
	certs(t)
	for _, cert := range []tls.Certificate{ecCert, rsaCert} {
		scfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
		s := runPair(t, &tls.Config{MinVersion: tls.VersionTLS13}, scfg, smallExchange())
		if s.version != tls.VersionTLS13 {
			t.Fatalf("negotiated %x", s.version)
		}
		checkSplits(t, s, keyLogOf(t, s.keylog))
		s = runPair(t, &tls.Config{MinVersion: tls.VersionTLS13}, scfg, bigExchange())
		checkWhole(t, s, keyLogOf(t, s.keylog))
	}
}

// tls12Suites are the TLS 1.2 suites crypto/tls can negotiate, with the
// certificate each needs.
var tls12Suites = []struct {
	id uint16
	ec bool
}{
	{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, false},
	{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, false},
	{tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, false},
	{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, false},
	{tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, false},
	{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256, false},
	{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, true},
	{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, true},
	{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, true},
	{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, true},
	{tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, true},
	{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, true},
	{tls.TLS_RSA_WITH_AES_128_GCM_SHA256, false},
	{tls.TLS_RSA_WITH_AES_256_GCM_SHA384, false},
	{tls.TLS_RSA_WITH_AES_128_CBC_SHA, false},
	{tls.TLS_RSA_WITH_AES_256_CBC_SHA, false},
	{tls.TLS_RSA_WITH_AES_128_CBC_SHA256, false},
}

func tls12Configs(id uint16, ec bool) (c, s *tls.Config) {
	cert := rsaCert
	if ec {
		cert = ecCert
	}
	c = &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{id}}
	s = &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{id}, Certificates: []tls.Certificate{cert}}
	return c, s
}

func TestCryptoTLS12EverySuite(t *testing.T) {
	certs(t)
	for _, cs := range tls12Suites {
		t.Run(tls.CipherSuiteName(cs.id), func(t *testing.T) {
			c, s := tls12Configs(cs.id, cs.ec)
			sess := runPair(t, c, s, smallExchange())
			if sess.cipher != cs.id {
				t.Fatalf("negotiated %s", tls.CipherSuiteName(sess.cipher))
			}
			checkSplits(t, sess, keyLogOf(t, sess.keylog))
			sess = runPair(t, c, s, bigExchange())
			checkWhole(t, sess, keyLogOf(t, sess.keylog))
		})
	}
}
