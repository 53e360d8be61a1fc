package server

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
)

// diskTestMessages are CRLF messages (what POP3 gives back unchanged), one
// large, with dot-leading lines and 8-bit bytes.
func diskTestMessages() [][]byte {
	var big bytes.Buffer
	big.WriteString("From: a@example.org\r\nSubject: large\r\n\r\n")
	for i := 0; big.Len() < 300_000; i++ {
		fmt.Fprintf(&big, "line %d caf\xc3\xa9 %s\r\n", i, strings.Repeat("x", i%70))
		if i%100 == 0 {
			big.WriteString(".dot-leading line\r\n")
		}
	}
	return [][]byte{
		[]byte("From: a@example.org\r\nSubject: small\r\n\r\nneedle in a haystack\r\n"),
		big.Bytes(),
		[]byte("Subject: empty body\r\n\r\n"),
	}
}

// imapFetchBodies returns BODY[] of every message of alice's INBOX.
func imapFetchBodies(t *testing.T, s *Server) [][]byte {
	t.Helper()
	im := dial(t, s.Addrs()["imap"])
	im.line()
	im.send("a LOGIN alice secret")
	im.until("a OK")
	im.send("b EXAMINE INBOX")
	im.until("b OK")
	im.send("c FETCH 1:* (BODY.PEEK[])")
	var out [][]byte
	for {
		l := im.line()
		if strings.HasPrefix(l, "c ") {
			if !strings.HasPrefix(l, "c OK") {
				t.Fatalf("FETCH: %s", l)
			}
			return out
		}
		i := strings.LastIndexByte(l, '{')
		if !strings.HasPrefix(l, "* ") || i < 0 || !strings.HasSuffix(l, "}") {
			t.Fatalf("unexpected FETCH line %q", l)
		}
		n, err := strconv.Atoi(l[i+1 : len(l)-1])
		if err != nil {
			t.Fatalf("FETCH line %q: %v", l, err)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(im.br, b); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
		if l := im.line(); l != ")" {
			t.Fatalf("after literal: %q", l)
		}
	}
}

// pop3Retr returns every message of alice's maildrop, dot-stuffing undone.
func pop3Retr(t *testing.T, s *Server, n int) [][]byte {
	t.Helper()
	p := dial(t, s.Addrs()["pop3"])
	p.line()
	p.send("USER alice")
	p.line()
	p.send("PASS secret")
	if l := p.line(); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("PASS: %s", l)
	}
	var out [][]byte
	for i := 1; i <= n; i++ {
		p.send("RETR %d", i)
		if l := p.line(); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("RETR %d: %s", i, l)
		}
		var b bytes.Buffer
		for {
			l := p.line()
			if l == "." {
				break
			}
			b.WriteString(strings.TrimPrefix(l, ".") + "\r\n")
		}
		out = append(out, b.Bytes())
	}
	p.send("QUIT")
	p.line()
	return out
}

// TestDiskStoreBodiesAfterRestart: with a store directory, IMAP FETCH,
// SEARCH TEXT and POP3 RETR read the messages from their files, byte for
// byte, after a restart of the server.
func TestDiskStoreBodiesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	withDir := func(o *Options) { o.StoreDir = dir }
	want := diskTestMessages()
	s := testServer(t, withDir)
	for _, m := range want {
		if _, err := s.Store().Deliver("alice", m); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := testServer(t, withDir)
	snap, err := s2.Store().Snapshot("alice", "INBOX")
	if err != nil || len(snap.Messages) != len(want) {
		t.Fatalf("after restart: %v, %+v", err, snap)
	}
	for i, m := range snap.Messages {
		if m.Raw != nil || m.Size != int64(len(want[i])) {
			t.Fatalf("message %d: kept in memory (%d bytes) or wrong size %d", i+1, len(m.Raw), m.Size)
		}
	}
	for name, got := range map[string][][]byte{"IMAP FETCH": imapFetchBodies(t, s2), "POP3 RETR": pop3Retr(t, s2, len(want))} {
		if len(got) != len(want) {
			t.Fatalf("%s: %d messages, want %d", name, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Errorf("%s: message %d differs (%d bytes, want %d)", name, i+1, len(got[i]), len(want[i]))
			}
		}
	}
	im := dial(t, s2.Addrs()["imap"])
	im.line()
	im.send("a LOGIN alice secret")
	im.until("a OK")
	im.send("b SELECT INBOX")
	im.until("b OK")
	im.send("c SEARCH TEXT needle")
	mustContain(t, im.until("c OK"), "* SEARCH 1")
	im.send("d FETCH 2 (RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
	lines := im.until("d OK")
	mustContain(t, lines, fmt.Sprintf("RFC822.SIZE %d", len(want[1])))
	mustContain(t, lines, "Subject: large")
}
