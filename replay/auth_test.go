package replay

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/mailtap/mailtap/decode"
)

// SCRAM: the captured client-final message (for another server nonce) is
// computed again for the live server-first message; the result is the
// one of the RFC 5802 and RFC 7677 examples.
func TestRewriteSCRAM(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct{ mech, first, server, want string }{
		{"SCRAM-SHA-1", "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
			"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
			"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="},
		{"SCRAM-SHA-256", "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
			"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
			"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="},
	} {
		w := newRewriter(decode.ProtoIMAP, map[string]string{"user": "pencil"}, nil, nil)
		w.server([]byte("* OK ready\r\n"))
		out, _ := w.client([]byte("a AUTHENTICATE " + tc.mech + "\r\n"))
		if string(out) != "a AUTHENTICATE "+tc.mech+"\r\n" {
			t.Fatalf("%q", out)
		}
		w.server([]byte("+ \r\n"))
		out, _ = w.client([]byte(b64(tc.first) + "\r\n"))
		if string(out) != b64(tc.first)+"\r\n" {
			t.Errorf("%s: client-first changed: %q", tc.mech, out)
		}
		w.server([]byte("+ " + b64(tc.server) + "\r\n"))
		// The capture's final message answered another nonce.
		out, _ = w.client([]byte(b64("c=biws,r=old-nonce,p=AAAA") + "\r\n"))
		got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(out)))
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: client-final %q, want %q", tc.mech, got, tc.want)
		}
	}
}

// The given password replaces the captured one only in attempts that
// succeeded in the capture: PLAIN, POP3 PASS, IMAP LOGIN.
func TestRewritePasswords(t *testing.T) {
	ok, bad := true, false
	users := map[string]string{"bob": "new"}
	w := newRewriter(decode.ProtoPOP3, users, nil, []decode.Auth{{Mechanism: "USER", Success: &bad}, {Mechanism: "USER", Success: &ok}})
	w.server([]byte("+OK hi\r\n"))
	var got []string
	for _, l := range []string{"USER bob\r\n", "PASS wrong\r\n", "USER bob\r\n", "PASS old\r\n"} {
		out, _ := w.client([]byte(l))
		got = append(got, string(out))
		w.server([]byte("+OK\r\n"))
	}
	if got[1] != "PASS wrong\r\n" || got[3] != "PASS new\r\n" {
		t.Errorf("POP3: %q", got)
	}
	w = newRewriter(decode.ProtoSMTP, users, nil, []decode.Auth{{Mechanism: "PLAIN", Success: &ok}})
	w.server([]byte("220 hi\r\n"))
	out, _ := w.client([]byte("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00bob\x00old")) + "\r\n"))
	if want := "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00bob\x00new")) + "\r\n"; string(out) != want {
		t.Errorf("PLAIN: %q", out)
	}
	w = newRewriter(decode.ProtoIMAP, users, map[string]bool{"NOOP": true}, []decode.Auth{{Mechanism: "LOGIN", Success: &ok}})
	w.server([]byte("* OK hi\r\n"))
	out, dropped := w.client([]byte("a1 NOOP\r\na2 LOGIN bob \"old\"\r\n"))
	if string(out) != "a2 LOGIN bob \"new\"\r\n" || dropped != 1 {
		t.Errorf("IMAP: %q, %d dropped", out, dropped)
	}
}
