package tlsdec

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailtap/mailtap/capture/synth"
	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/smtp"
)

const testMessage = "From: alice@example.org\r\nTo: bob@example.net\r\nSubject: over TLS\r\n\r\nHello.\r\n..a dot-stuffed line\r\n"

// smtpOverTLS records an SMTP session, with STARTTLS or on an
// implicit-TLS port, between line-by-line client and server goroutines.
func smtpOverTLS(t *testing.T, ccfg, scfg *tls.Config, implicit bool) session {
	t.Helper()
	certs(t)
	var keys strings.Builder
	ccfg = ccfg.Clone()
	ccfg.InsecureSkipVerify = true
	ccfg.KeyLogWriter = writerFunc(func(p []byte) (int, error) { return keys.Write(p) })
	cc, sc := tcpPair(t)
	rc := &recConn{Conn: sc}
	errc := make(chan error, 1)
	go func() {
		var c net.Conn = rc
		if implicit {
			c = tls.Server(rc, scfg)
		}
		br := bufio.NewReader(c)
		w := func(s string) { io.WriteString(c, s) }
		w("220 mx.example.net ESMTP\r\n")
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				errc <- err
				return
			}
			switch verb, _, _ := strings.Cut(strings.TrimSpace(line), " "); strings.ToUpper(verb) {
			case "EHLO":
				w("250-mx.example.net\r\n250-AUTH PLAIN\r\n250 STARTTLS\r\n")
			case "STARTTLS":
				w("220 2.0.0 go ahead\r\n")
				c = tls.Server(rc, scfg)
				br = bufio.NewReader(c)
				w = func(s string) { io.WriteString(c, s) }
			case "AUTH":
				w("235 2.7.0 ok\r\n")
			case "MAIL", "RCPT":
				w("250 2.1.0 ok\r\n")
			case "DATA":
				w("354 go on\r\n")
				for {
					l, err := br.ReadString('\n')
					if err != nil {
						errc <- err
						return
					}
					if l == ".\r\n" {
						break
					}
				}
				w("250 2.0.0 queued\r\n")
			case "QUIT":
				w("221 2.0.0 bye\r\n")
				c.Close()
				errc <- nil
				return
			}
		}
	}()
	var c net.Conn = cc
	if implicit {
		c = tls.Client(cc, ccfg)
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
		if _, err := io.WriteString(c, s); err != nil {
			t.Fatal(err)
		}
		reply()
	}
	reply()
	send("EHLO client.example\r\n")
	if !implicit {
		send("STARTTLS\r\n")
		c = tls.Client(cc, ccfg)
		br = bufio.NewReader(c)
		send("EHLO client.example\r\n")
	}
	send("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00bob\x00secret")) + "\r\n")
	send("MAIL FROM:<alice@example.org>\r\n")
	send("RCPT TO:<bob@example.net>\r\n")
	send("DATA\r\n")
	send(testMessage + ".\r\n")
	send("QUIT\r\n")
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	c.Close()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return session{chunks: rc.chunks, keylog: []byte(keys.String())}
}

type records struct {
	verbs   []string
	session *decode.SessionRecord
	mails   []*decode.SMTPMail
	all     []string
}

func decodeWith(t *testing.T, s session, keys *KeyLog, implicit, wrap bool) records {
	t.Helper()
	var rs records
	sink := decode.SinkFunc(func(r decode.Record) {
		b, _ := json.Marshal(r)
		rs.all = append(rs.all, string(b))
		switch r := r.(type) {
		case *decode.CommandRecord:
			rs.verbs = append(rs.verbs, r.Verb)
		case *decode.SessionRecord:
			rs.session = r
		case *decode.SMTPMail:
			rs.mails = append(rs.mails, r)
		}
	})
	ci := decode.ConnInfo{ID: 1, Client: netip.MustParseAddrPort("192.0.2.1:40000"), Server: netip.MustParseAddrPort("192.0.2.2:25"),
		Start: time.Unix(1700000000, 0), ImplicitTLS: implicit}
	o := decode.Options{Level: decode.LevelCommands}
	newf := func(c decode.ConnInfo, o decode.Options, s decode.Sink) decode.Decoder { return smtp.New(c, o, s) }
	if wrap {
		newf = Wrap(newf, keys, Config{})
	}
	d := newf(ci, o, sink)
	ts := ci.Start
	for _, c := range s.chunks {
		ts = ts.Add(time.Millisecond)
		d.Data(c.dir, c.p, ts)
	}
	d.Close(decode.CloseFIN, ts)
	return rs
}

func TestWrapSMTP(t *testing.T) {
	certs(t)
	sum := sha256.Sum256([]byte(strings.ReplaceAll(testMessage, "\r\n..", "\r\n.")))
	for _, c := range []struct {
		name     string
		implicit bool
		ccfg     *tls.Config
		want     []string
	}{
		{"starttls-tls13", false, &tls.Config{}, []string{"EHLO", "STARTTLS", "EHLO", "AUTH", "MAIL", "RCPT", "DATA", "QUIT"}},
		{"starttls-tls12-cbc", false, &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}, []string{"EHLO", "STARTTLS", "EHLO", "AUTH", "MAIL", "RCPT", "DATA", "QUIT"}},
		{"implicit-tls13", true, &tls.Config{}, []string{"EHLO", "AUTH", "MAIL", "RCPT", "DATA", "QUIT"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			scfg := &tls.Config{Certificates: []tls.Certificate{ecCert}, CipherSuites: c.ccfg.CipherSuites}
			s := smtpOverTLS(t, c.ccfg, scfg, c.implicit)
			rs := decodeWith(t, s, keyLogOf(t, s.keylog), c.implicit, true)
			if !slices.Equal(rs.verbs, c.want) {
				t.Fatalf("commands %v, want %v", rs.verbs, c.want)
			}
			sr := rs.session
			if sr == nil || sr.TLS == nil || sr.TLS.Decrypted == nil || !*sr.TLS.Decrypted || sr.TLS.Cipher == "" || sr.TLS.StartTLS == c.implicit || sr.TLS.Implicit != c.implicit {
				t.Fatalf("session %s", rs.all[len(rs.all)-1])
			}
			if sr.State == decode.StateEncrypted || len(sr.Anomalies) != 0 || sr.Auth == nil || sr.Auth.User != "bob" || sr.Auth.Success == nil || !*sr.Auth.Success {
				t.Fatalf("session %s", rs.all[len(rs.all)-1])
			}
			wire := [2]int64{}
			for _, ch := range s.chunks {
				wire[ch.dir-1] += int64(len(ch.p))
			}
			if sr.BytesClient != wire[0] || sr.BytesServer != wire[1] {
				t.Fatalf("bytes %d/%d, wire %d/%d", sr.BytesClient, sr.BytesServer, wire[0], wire[1])
			}
			if len(rs.mails) != 1 || rs.mails[0].Message == nil || rs.mails[0].Message.SHA256 != hex.EncodeToString(sum[:]) || rs.mails[0].MailFrom != "alice@example.org" {
				t.Fatalf("mails %v", rs.all)
			}
			// Split at every segment boundary and byte by byte: the same
			// records.
			for _, ch := range [][]chunk{bytewise(s.chunks), coalesce(s.chunks)} {
				s2 := s
				s2.chunks = ch
				rs2 := decodeWith(t, s2, keyLogOf(t, s.keylog), c.implicit, true)
				if !slices.Equal(rs2.verbs, rs.verbs) || len(rs2.mails) != 1 || rs2.mails[0].Message.SHA256 != rs.mails[0].Message.SHA256 {
					t.Fatalf("resegmented: %v", rs2.all)
				}
			}

			// Without the key: exactly what mailtap says without a key
			// log, plus the reason and decrypted:false.
			plain := decodeWith(t, s, NewKeyLog(), c.implicit, false)
			nokey := decodeWith(t, s, NewKeyLog(), c.implicit, true)
			if len(plain.all) != len(nokey.all) {
				t.Fatalf("without key:\n%s\nwithout key log:\n%s", strings.Join(nokey.all, "\n"), strings.Join(plain.all, "\n"))
			}
			for i := range plain.all[:len(plain.all)-1] {
				if plain.all[i] != nokey.all[i] {
					t.Fatalf("record %d without key:\n%s\nwithout key log:\n%s", i, nokey.all[i], plain.all[i])
				}
			}
			ns := nokey.session
			if ns.State != decode.StateEncrypted || !slices.Contains(ns.Anomalies, string(decode.AnomalyTLSNoKey)) || ns.TLS.Decrypted == nil || *ns.TLS.Decrypted {
				t.Fatalf("no key session: %s", nokey.all[len(nokey.all)-1])
			}
			ns.Anomalies = slices.DeleteFunc(ns.Anomalies, func(a string) bool { return a == string(decode.AnomalyTLSNoKey) })
			ns.TLS.Decrypted, ns.TLS.Cipher, ns.TLS.Resumed = nil, "", false
			b, _ := json.Marshal(ns)
			if want := plain.all[len(plain.all)-1]; string(b) != want {
				t.Fatalf("no key session:\n%s\nwant\n%s", b, want)
			}
		})
	}
}

// TestWriteCLIFixtures writes the captures cmd/mailtap's TLS tests read:
// three SMTP sessions (STARTTLS with TLS 1.3, implicit TLS 1.2 AES-256-GCM
// on port 465, and a STARTTLS session whose key is left out of the key
// log), as pcap with a key log beside it, and as pcapng with the key log
// embedded in a Decryption Secrets Block at the end of the file. Run with
// MAILTAP_TLS_FIXTURES=1.
func TestWriteCLIFixtures(t *testing.T) {
	if os.Getenv("MAILTAP_TLS_FIXTURES") == "" {
		t.Skip("set MAILTAP_TLS_FIXTURES=1 to rewrite cmd/mailtap/testdata/tls")
	}
	certs(t)
	scfg := &tls.Config{Certificates: []tls.Certificate{ecCert}}
	s1 := smtpOverTLS(t, &tls.Config{MinVersion: tls.VersionTLS13}, scfg, false)
	s2 := smtpOverTLS(t, &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}}, scfg, true)
	s3 := smtpOverTLS(t, &tls.Config{}, scfg, false)
	c := synth.NewCapture(synth.LinkEthernet)
	for i, s := range []struct {
		s    session
		port uint16
	}{{s1, 25}, {s2, 465}, {s3, 587}} {
		conn := c.Conn(netip.AddrPortFrom(netip.MustParseAddr("192.0.2.10"), uint16(40000+i)),
			netip.AddrPortFrom(netip.MustParseAddr("198.51.100.25"), s.port), synth.Options{})
		for _, ch := range s.s.chunks {
			if ch.dir == decode.ClientToServer {
				conn.Client(string(ch.p))
			} else {
				conn.Server(string(ch.p))
			}
		}
		conn.Close(synth.ClientSide)
	}
	dir := filepath.Join("..", "..", "cmd", "mailtap", "testdata", "tls")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	keylog := append(append([]byte("# keys of the first two sessions only\n"), s1.keylog...), s2.keylog...)
	var pcap, ng bytes.Buffer
	if err := c.Write(&pcap, synth.FormatPcap); err != nil {
		t.Fatal(err)
	}
	if err := c.Write(&ng, synth.FormatPcapng); err != nil {
		t.Fatal(err)
	}
	// A Decryption Secrets Block (pcapng 4.7), little-endian as synth
	// writes, after the last packet.
	body := binary.LittleEndian.AppendUint32(nil, 0x544c534b)
	body = binary.LittleEndian.AppendUint32(body, uint32(len(keylog)))
	body = append(body, keylog...)
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	dsb := binary.LittleEndian.AppendUint32(nil, 0x0000000A)
	dsb = binary.LittleEndian.AppendUint32(dsb, uint32(12+len(body)))
	dsb = append(dsb, body...)
	dsb = binary.LittleEndian.AppendUint32(dsb, uint32(12+len(body)))
	for name, b := range map[string][]byte{
		"smtp-tls.pcap":       pcap.Bytes(),
		"smtp-tls.keylog":     keylog,
		"smtp-tls-dsb.pcapng": append(ng.Bytes(), dsb...),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
