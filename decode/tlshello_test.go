package decode

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

// tap records what crosses a net.Conn in each direction.
type tap struct {
	net.Conn
	mu  *sync.Mutex
	out *bytes.Buffer
}

func (t tap) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.out.Write(p)
	t.mu.Unlock()
	return t.Conn.Write(p)
}

func selfSigned(t *testing.T) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mx.example.test", Organization: []string{"Example"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"mx.example.test"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// handshake runs a real crypto/tls handshake over a pipe and returns the
// bytes each side sent.
func handshake(t *testing.T, maxVersion uint16) (client, server []byte) {
	// Loopback TCP rather than net.Pipe: its buffering lets each side
	// finish writing (TLS 1.3 session tickets) without a reader.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		s, _ := ln.Accept()
		accepted <- s
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	var mu sync.Mutex
	var cb, sb bytes.Buffer
	srv := tls.Server(tap{s, &mu, &sb}, &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}, MaxVersion: maxVersion})
	cli := tls.Client(tap{c, &mu, &cb}, &tls.Config{ServerName: "mx.example.test", InsecureSkipVerify: true, NextProtos: []string{"imap"}, MaxVersion: maxVersion})
	done := make(chan error, 1)
	go func() { done <- srv.Handshake() }()
	if err := cli.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c.Close()
	s.Close()
	mu.Lock()
	defer mu.Unlock()
	return cb.Bytes(), sb.Bytes()
}

func feed(r *tlsHello, p []byte, t *TLS, step int) {
	for len(p) > 0 {
		n := min(step, len(p))
		r.Add(p[:n], t)
		p = p[n:]
	}
}

func TestRealHandshakes(t *testing.T) {
	for _, c := range []struct {
		max     uint16
		version string
		subject bool
	}{{tls.VersionTLS12, "TLSv1.2", true}, {tls.VersionTLS13, "TLSv1.3", false}} {
		cb, sb := handshake(t, c.max)
		for _, step := range []int{1, 3, 7, 1 << 20} {
			var info TLS
			var cr, sr tlsHello
			feed(&cr, cb, &info, step)
			feed(&sr, sb, &info, step)
			if info.SNI != "mx.example.test" || info.Version != c.version {
				t.Errorf("max %x step %d: sni %q version %q", c.max, step, info.SNI, info.Version)
			}
			if len(info.ALPN) != 1 || info.ALPN[0] != "imap" {
				t.Errorf("alpn %q", info.ALPN)
			}
			if c.subject && info.Subject != "CN=mx.example.test,O=Example" {
				t.Errorf("subject %q", info.Subject)
			}
			if !c.subject && info.Subject != "" {
				t.Errorf("TLS 1.3 certificate is encrypted, yet subject %q", info.Subject)
			}
		}
	}
}

func TestNotTLS(t *testing.T) {
	var r tlsHello
	var info TLS
	r.Add([]byte("EHLO plain\r\n"), &info)
	if !r.NotTLS || !r.Done() {
		t.Errorf("plaintext not detected")
	}
	if IsTLSRecordStart([]byte("EHL")) || !IsTLSRecordStart([]byte{0x16, 3, 1}) {
		t.Error("IsTLSRecordStart")
	}
}

func FuzzTLSHello(f *testing.F) {
	f.Add([]byte{0x16, 3, 1, 0, 5, 1, 0, 0, 1, 0})
	f.Add([]byte{0x16, 3, 3, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r tlsHello
		var info TLS
		feed(&r, b, &info, 5)
	})
}
