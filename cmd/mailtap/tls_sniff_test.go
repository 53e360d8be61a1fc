package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func testCert(t *testing.T) tls.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mx.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

// TestSniffTLSKeylog: live, on an implicit-TLS port, with the key log
// written by the client while the capture runs. The records that arrive
// before sniff has re-read the key log are held, then decrypted.
func TestSniffTLSKeylog(t *testing.T) {
	needRoot(t)
	keylog := filepath.Join(t.TempDir(), "keys.log")
	if err := os.WriteFile(keylog, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := &smtpResponder{}
	ln, err := tls.Listen("tcp4", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{testCert(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go srv.serve(c)
		}
	}()
	run := startSniff(t, "-i", "lo", "--workers", "1", "--ports", fmt.Sprintf("smtp=%d+tls", port),
		"--port-filter", strconv.Itoa(port), "--level", "commands", "--tls-keylog", keylog)

	// The client's secrets reach the key log file only after the
	// handshake and the first exchange went by on the wire.
	var keys lockedBuffer
	c, err := tls.Dial("tcp4", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, KeyLogWriter: &keys})
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	reply := func() {
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if len(l) < 4 || l[3] != '-' {
				return
			}
		}
	}
	send := func(s string) {
		if _, err := c.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
		reply()
	}
	reply()
	send("EHLO client.test\r\n")
	time.Sleep(700 * time.Millisecond)
	if err := os.WriteFile(keylog, []byte(keys.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	// sniff re-reads the key log every 500 ms; the records so far wait.
	time.Sleep(1200 * time.Millisecond)
	send("MAIL FROM:<a@example.org>\r\n")
	send("RCPT TO:<b@example.net>\r\n")
	send("DATA\r\n")
	send("Subject: live over TLS\r\n\r\nhello\r\n.\r\n")
	send("QUIT\r\n")
	c.Close()
	time.Sleep(300 * time.Millisecond)
	recs, summary := run.stop(t)
	var verbs []string
	for _, r := range ofType(recs, "command") {
		verbs = append(verbs, r.str("verb"))
	}
	if strings.Join(verbs, " ") != "EHLO MAIL RCPT DATA QUIT" {
		t.Fatalf("commands %v\n%s", verbs, summary)
	}
	ss := ofType(recs, "session")
	if len(ss) != 1 || ss[0].obj("tls")["decrypted"] != true || ss[0].obj("tls").str("version") != "TLSv1.3" {
		t.Fatalf("sessions %v", ss)
	}
	if m := ofType(recs, "smtp.mail"); len(m) != 1 || m[0].obj("message").str("subject") != "live over TLS" {
		t.Fatalf("mails %v", m)
	}
}
