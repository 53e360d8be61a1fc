package pop3

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"time"
)

// firstWrite records the first Write on a connection.
type firstWrite struct {
	net.Conn
	mu    sync.Mutex
	first []byte
}

func (c *firstWrite) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.first == nil {
		c.first = append([]byte(nil), p...)
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// helloPair returns the first flight of a real crypto/tls client (a
// ClientHello for serverName offering h2) and server.
func helloPair(serverName string) (client, server []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: serverName},
		DNSNames:     []string{serverName},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	a, b := net.Pipe()
	ca, cb := &firstWrite{Conn: a}, &firstWrite{Conn: b}
	srv := tls.Server(cb, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	cli := tls.Client(ca, &tls.Config{ServerName: serverName, InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); srv.Handshake() }()
	cli.Handshake()
	a.Close() // not cli.Close: its close_notify would wait for a reader
	b.Close()
	wg.Wait()
	return ca.first, cb.first
}

var clientHello, serverHello = helloPair("pop.lavabit.com")

func init() {
	tr := transcripts["stls"]
	tr.steps = append(tr.steps, raw(C, string(clientHello)), raw(S, string(serverHello)), raw(C, "\x17\x03\x03\x00\x05hello"))
	transcripts["stls"] = tr
	tr = transcripts["implicit_tls"]
	tr.steps = append(tr.steps, raw(C, string(clientHello)), raw(S, string(serverHello)))
	transcripts["implicit_tls"] = tr
}
