package main

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The captures in testdata/tls are written by decode/tlsdec's
// TestWriteCLIFixtures from crypto/tls sessions: SMTP with STARTTLS on 25
// (TLS 1.3), implicit TLS on 465 (TLS 1.2 AES-256-GCM) and STARTTLS on
// 587 whose key is not in the key log.

func checkTLSRecords(t *testing.T, recs []record) {
	t.Helper()
	verbs := map[float64][]string{}
	for _, r := range ofType(recs, "command") {
		verbs[r.num("session")] = append(verbs[r.num("session")], r.str("verb"))
	}
	want := map[float64][]string{
		1: {"EHLO", "STARTTLS", "EHLO", "AUTH", "MAIL", "RCPT", "DATA", "QUIT"},
		2: {"EHLO", "AUTH", "MAIL", "RCPT", "DATA", "QUIT"},
		3: {"EHLO", "STARTTLS"},
	}
	for id, w := range want {
		if !slices.Equal(verbs[id], w) {
			t.Errorf("session %v commands %v, want %v", id, verbs[id], w)
		}
	}
	mails := ofType(recs, "smtp.mail")
	if len(mails) != 2 {
		t.Fatalf("%d smtp.mail records, want 2", len(mails))
	}
	for _, m := range mails {
		if m.obj("message").str("subject") != "over TLS" || m.str("mail_from") != "alice@example.org" {
			t.Errorf("mail %v", m)
		}
	}
	for _, s := range ofType(recs, "session") {
		tl := s.obj("tls")
		switch s.num("session") {
		case 1, 2:
			if s.str("state") != "complete" || tl["decrypted"] != true || tl.str("cipher") == "" || s.obj("auth").str("user") != "bob" || s.list("anomalies") != nil {
				t.Errorf("session %v", s)
			}
		case 3:
			if s.str("state") != "encrypted" || tl["decrypted"] != false || !slices.Contains(s.list("anomalies"), any("tls_no_key")) {
				t.Errorf("session %v", s)
			}
		}
	}
}

func TestReadTLSKeylog(t *testing.T) {
	checkTLSRecords(t, decodeFile(t, "testdata/tls/smtp-tls.pcap", "--level", "commands", "--tls-keylog", "testdata/tls/smtp-tls.keylog"))
	// The key log split in two files, one flag each.
	b, err := os.ReadFile("testdata/tls/smtp-tls.keylog")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	dir := t.TempDir()
	k1, k2 := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	os.WriteFile(k1, []byte(strings.Join(lines[:3], "")), 0o600)
	os.WriteFile(k2, []byte(strings.Join(lines[3:], "")), 0o600)
	checkTLSRecords(t, decodeFile(t, "testdata/tls/smtp-tls.pcap", "--level", "commands", "--tls-keylog", k1, "--tls-keylog", k2))
	// Keys embedded in the pcapng (after the packets), one worker and
	// several.
	checkTLSRecords(t, decodeFile(t, "testdata/tls/smtp-tls-dsb.pcapng", "--level", "commands", "--workers", "1"))
	checkTLSRecords(t, decodeFile(t, "testdata/tls/smtp-tls-dsb.pcapng", "--level", "commands", "--workers", "3"))
	// Without keys: as before the feature, no decrypted fields.
	for _, s := range ofType(decodeFile(t, "testdata/tls/smtp-tls.pcap"), "session") {
		if _, ok := s.obj("tls")["decrypted"]; ok || s.str("state") != "encrypted" {
			t.Errorf("without a key log: %v", s)
		}
	}
}

func TestReadTLSKeylogMissing(t *testing.T) {
	_, errOut, code := runCLI("read", "--tls-keylog", "testdata/tls/no-such.keylog", "testdata/tls/smtp-tls.pcap")
	if code == 0 || !strings.Contains(string(errOut), "no-such.keylog") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

// TestReplayTLSKeylog: with the key log, a STARTTLS session replays its
// turns after the upgrade over TLS with the target (here the built-in
// server); without it, it stops at the upgrade.
func TestReplayTLSKeylog(t *testing.T) {
	for _, c := range []struct {
		args     []string
		commands float64
		stopped  bool
	}{
		{[]string{"--tls-keylog", "testdata/tls/smtp-tls.keylog"}, 9, false},
		{nil, 3, true},
	} {
		args := append([]string{"replay", "--pace", "fast", "--compare", "status"}, c.args...)
		out, errOut, code := runCLI(append(args, "testdata/tls/smtp-tls.pcap")...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		recs := parseRecords(t, string(out))
		var s1 record
		for _, r := range ofType(recs, "replay.session") {
			if r.num("session") == 1 {
				s1 = r
			}
		}
		if s1 == nil || s1.num("commands") != c.commands || s1.num("matched") != c.commands || (s1.str("stopped") != "") != c.stopped {
			t.Errorf("%v: session 1 %v", args, s1)
		}
	}
}

// TestReplayTLSKeylogImplicit: a decrypted SMTPS session replays all its
// turns against an implicit-TLS target.
func TestReplayTLSKeylogImplicit(t *testing.T) {
	srv := &smtpResponder{}
	ln, err := tls.Listen("tcp4", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{testCert(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go srv.serve(c)
		}
	}()
	out, errOut, code := runCLI("replay", "--pace", "fast", "--compare", "status", "--tls-insecure", "--target", "smtps="+ln.Addr().String(),
		"--tls-keylog", "testdata/tls/smtp-tls.keylog", "testdata/tls/smtp-tls.pcap")
	if code != 0 && code != 3 { // 3: divergences (the test server has no AUTH)
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, r := range ofType(parseRecords(t, string(out)), "replay.session") {
		if r.num("session") != 2 {
			continue
		}
		// The greeting and EHLO AUTH MAIL RCPT DATA QUIT, all sent over
		// TLS; AUTH is refused by the test server.
		if r.num("commands") != 7 || r.num("matched") != 6 || r.str("skipped") != "" || r.str("target") != ln.Addr().String() {
			t.Fatalf("session 2: %v\n%s", r, out)
		}
		return
	}
	t.Fatal("no report for session 2")
}
