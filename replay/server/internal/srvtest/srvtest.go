// Package srvtest holds what the tests of smtpd, pop3d and imapd share: a
// self-signed TLS config, a server on a loopback listener for the length
// of a test, a raw line client with its STARTTLS upgrade, and the session
// harness of the fuzz targets. Only _test.go files import it.
package srvtest

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailtap/mailtap/replay/server/internal/certgen"
)

// TLS returns a server config with a fresh self-signed certificate for host.
func TLS(t testing.TB, host string) *tls.Config {
	t.Helper()
	cert, err := certgen.SelfSigned(host, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}}
}

// Server is what smtpd, pop3d and imapd servers have in common.
type Server interface {
	Serve(net.Listener) error
	Close() error
}

// Serve runs s on a new loopback listener until the test ends and returns
// the listener's address.
func Serve(t testing.TB, s Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return l.Addr().String()
}

// Dial connects to addr with a 10 second deadline for the whole
// conversation and closes the connection when the test ends.
func Dial(t testing.TB, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// Line reads one line and returns it without its CRLF; a read error fails
// the test.
func Line(t testing.TB, br *bufio.Reader) string {
	t.Helper()
	l, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// StartTLS runs the client side of a TLS handshake on c (the server has
// just agreed to STARTTLS or STLS), trusting any certificate, and returns
// the TLS connection with a new reader.
func StartTLS(t testing.TB, c net.Conn) (net.Conn, *bufio.Reader) {
	t.Helper()
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	return tc, bufio.NewReader(tc)
}

// Session hands the server end of a pipe to handle, writes in to the
// client end, discarding every reply, closes it and waits for handle to
// return. Fuzz targets use it to require that a session ends without
// panicking whatever the client sends.
func Session(handle func(net.Conn), in []byte) {
	cli, srv := net.Pipe()
	done := make(chan struct{})
	go func() {
		handle(srv)
		srv.Close()
		close(done)
	}()
	go io.Copy(io.Discard, cli)
	cli.Write(in)
	cli.Close()
	<-done
}
