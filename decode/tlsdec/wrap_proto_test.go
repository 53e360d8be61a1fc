package tlsdec

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/imap"
	"github.com/mailtap/mailtap/decode/pop3"
)

// exch is one client write and the server's answer.
type exch struct{ c, s string }

// scriptedOverTLS records a session where the client writes each c and
// the server answers with s; after the answer to step upgrade (-1: from
// the start, implicit TLS) both switch to TLS.
func scriptedOverTLS(t *testing.T, greet string, steps []exch, upgrade int) session {
	t.Helper()
	certs(t)
	var keys strings.Builder
	ccfg := &tls.Config{InsecureSkipVerify: true, KeyLogWriter: writerFunc(func(p []byte) (int, error) { return keys.Write(p) })}
	scfg := &tls.Config{Certificates: []tls.Certificate{ecCert}}
	cc, sc := tcpPair(t)
	rc := &recConn{Conn: sc}
	errc := make(chan error, 1)
	go func() {
		var c net.Conn = rc
		if upgrade < 0 {
			c = tls.Server(rc, scfg)
		}
		io.WriteString(c, greet)
		br := bufio.NewReader(c)
		for i, st := range steps {
			buf := make([]byte, len(st.c))
			if _, err := io.ReadFull(br, buf); err != nil {
				errc <- err
				return
			}
			io.WriteString(c, st.s)
			if i == upgrade {
				c = tls.Server(rc, scfg)
				br = bufio.NewReader(c)
			}
		}
		c.Close()
		errc <- nil
	}()
	var c net.Conn = cc
	if upgrade < 0 {
		c = tls.Client(cc, ccfg)
	}
	read := func(n int) {
		if _, err := io.ReadFull(c, make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	read(len(greet))
	for i, st := range steps {
		io.WriteString(c, st.c)
		read(len(st.s))
		if i == upgrade {
			c = tls.Client(cc, ccfg)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	c.Close()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return session{chunks: rc.chunks, keylog: []byte(keys.String())}
}

func decodeProto(t *testing.T, s session, keys *KeyLog, implicit bool, newf NewFunc) (verbs []string, all []string, sr *decode.SessionRecord) {
	t.Helper()
	sink := decode.SinkFunc(func(r decode.Record) {
		b, _ := json.Marshal(r)
		all = append(all, string(b))
		switch r := r.(type) {
		case *decode.CommandRecord:
			verbs = append(verbs, r.Verb)
		case *decode.SessionRecord:
			sr = r
		}
	})
	ci := decode.ConnInfo{ID: 1, Client: netip.MustParseAddrPort("192.0.2.1:40000"), Server: netip.MustParseAddrPort("192.0.2.2:110"),
		Start: time.Unix(1700000000, 0), ImplicitTLS: implicit}
	d := Wrap(newf, keys, Config{})(ci, decode.Options{Level: decode.LevelCommands}, sink)
	ts := ci.Start
	for _, c := range bytewise(s.chunks) {
		ts = ts.Add(time.Microsecond)
		d.Data(c.dir, c.p, ts)
	}
	d.Close(decode.CloseFIN, ts)
	return verbs, all, sr
}

func TestWrapPOP3IMAP(t *testing.T) {
	msg := "From: a@example.org\r\nSubject: s\r\n\r\nbody\r\n"
	pop := []exch{
		{"CAPA\r\n", "+OK\r\nSTLS\r\nUSER\r\n.\r\n"},
		{"STLS\r\n", "+OK begin TLS\r\n"},
		{"USER bob\r\n", "+OK\r\n"},
		{"PASS secret\r\n", "+OK logged in\r\n"},
		{"RETR 1\r\n", "+OK " + strconv.Itoa(len(msg)) + " octets\r\n" + msg + ".\r\n"},
		{"DELE 1\r\n", "+OK\r\n"},
		{"QUIT\r\n", "+OK bye\r\n"},
	}
	im := []exch{
		{"a1 CAPABILITY\r\n", "* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\na1 OK done\r\n"},
		{"a2 STARTTLS\r\n", "a2 OK begin TLS\r\n"},
		{"a3 LOGIN bob secret\r\n", "a3 OK logged in\r\n"},
		{"a4 SELECT INBOX\r\n", "* 1 EXISTS\r\na4 OK [READ-WRITE] done\r\n"},
		{"a5 FETCH 1 BODY[]\r\n", "* 1 FETCH (BODY[] {" + strconv.Itoa(len(msg)) + "}\r\n" + msg + ")\r\na5 OK done\r\n"},
		{"a6 LOGOUT\r\n", "* BYE\r\na6 OK done\r\n"},
	}
	popNew := func(c decode.ConnInfo, o decode.Options, s decode.Sink) decode.Decoder { return pop3.New(c, o, s) }
	imapNew := func(c decode.ConnInfo, o decode.Options, s decode.Sink) decode.Decoder { return imap.New(c, o, s) }
	for _, c := range []struct {
		name     string
		greet    string
		steps    []exch
		upgrade  int
		newf     NewFunc
		want     []string
		implicit bool
	}{
		{"pop3-stls", "+OK POP3 ready\r\n", pop, 1, popNew, []string{"CAPA", "STLS", "USER", "PASS", "RETR", "DELE", "QUIT"}, false},
		{"pop3s", "+OK POP3 ready\r\n", pop[2:], -1, popNew, []string{"USER", "PASS", "RETR", "DELE", "QUIT"}, true},
		{"imap-starttls", "* OK IMAP ready\r\n", im, 1, imapNew, []string{"CAPABILITY", "STARTTLS", "LOGIN", "SELECT", "FETCH", "LOGOUT"}, false},
		{"imaps", "* OK IMAP ready\r\n", im[2:], -1, imapNew, []string{"LOGIN", "SELECT", "FETCH", "LOGOUT"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := scriptedOverTLS(t, c.greet, c.steps, c.upgrade)
			verbs, all, sr := decodeProto(t, s, keyLogOf(t, s.keylog), c.implicit, c.newf)
			if !slices.Equal(verbs, c.want) {
				t.Fatalf("commands %v, want %v\n%s", verbs, c.want, strings.Join(all, "\n"))
			}
			if sr == nil || sr.TLS == nil || sr.TLS.Decrypted == nil || !*sr.TLS.Decrypted || len(sr.Anomalies) != 0 || sr.Auth == nil || sr.Auth.User != "bob" {
				t.Fatalf("session %s", all[len(all)-1])
			}
			found := false
			for _, r := range all {
				found = found || strings.Contains(r, `"subject":"s"`)
			}
			if !found {
				t.Fatalf("no message record:\n%s", strings.Join(all, "\n"))
			}
		})
	}
}
