package server

// Interoperability tests with real clients nobody here wrote: Python's
// smtplib/poplib/imaplib, curl and swaks. Each test starts the server
// in-process on loopback and runs the client; it is skipped with a message
// when the client is not installed (CI installs swaks and curl).

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func need(t *testing.T, bin string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	if err != nil {
		t.Skipf("%s is not installed; skipping the real-client test (CI installs it)", bin)
	}
	return p
}

func port(s *Server, proto string) string {
	a := s.Addrs()[proto].String()
	return a[strings.LastIndexByte(a, ':')+1:]
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = nil
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("%s timed out\n%s", name, out.String())
	}
	return out.String()
}

func python(t *testing.T, s *Server, mode string, args ...string) string {
	py := need(t, "python3")
	a := append([]string{filepath.Join("testdata", "interop.py"), mode, "127.0.0.1",
		port(s, "smtp"), port(s, "pop3"), port(s, "imap")}, args...)
	return run(t, py, a...)
}

// TestInteropPython sends with smtplib over STARTTLS with AUTH, reads with
// poplib (STLS, APOP) and imaplib (STARTTLS), and checks that flags and
// moves are visible across protocols.
func TestInteropPython(t *testing.T) {
	s := testServer(t)
	out := python(t, s, "roundtrip")
	if !strings.Contains(out, "ok") {
		t.Fatal(out)
	}
}

// TestInteropSwaksAttachment sends a message with a binary attachment with
// swaks (STARTTLS, AUTH PLAIN, PIPELINING) and checks that imaplib and
// poplib fetch it byte-identical, that it is what the store holds, and that
// the attachment decodes to the original bytes.
func TestInteropSwaksAttachment(t *testing.T) {
	swaks := need(t, "swaks")
	need(t, "python3")
	s := testServer(t)
	dir := t.TempDir()
	att := make([]byte, 50_000)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range att {
		att[i] = byte(r.UintN(256))
	}
	attPath := filepath.Join(dir, "payload.bin")
	if err := os.WriteFile(attPath, att, 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, swaks, "--server", "127.0.0.1", "--port", port(s, "smtp"), "--tls",
		"--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "secret", "--pipeline",
		"--from", "sender@example.org", "--to", "alice@example.com",
		"--header", "Subject: swaks attachment", "--body", "see attachment",
		"--attach-type", "application/octet-stream", "--attach-name", "payload.bin", "--attach", attPath)
	out := python(t, s, "fetch", dir, "payload.bin")
	imapRaw, _ := os.ReadFile(filepath.Join(dir, "imap.eml"))
	popRaw, _ := os.ReadFile(filepath.Join(dir, "pop3.eml"))
	if len(imapRaw) == 0 || !bytes.Equal(imapRaw, popRaw) {
		t.Fatalf("imaplib and poplib bytes differ (%d vs %d bytes)\n%s", len(imapRaw), len(popRaw), out)
	}
	snap, _ := s.Store().Snapshot("alice", "INBOX")
	if !bytes.Equal(snap.Messages[0].Raw, imapRaw) {
		t.Fatal("fetched bytes differ from the stored message")
	}
	sum := sha256.Sum256(att)
	if !strings.Contains(out, "attachment sha256 "+hex.EncodeToString(sum[:])) {
		t.Fatalf("attachment changed in transit:\n%s", out)
	}
}

// TestInteropCurl sends with curl smtp:// and reads with curl pop3:// and
// imap://.
func TestInteropCurl(t *testing.T) {
	curl := need(t, "curl")
	s := testServer(t)
	dir := t.TempDir()
	msg := "From: curl@example.org\r\nTo: bob@example.com\r\nSubject: via curl\r\n\r\nHello from curl.\r\n"
	mf := filepath.Join(dir, "msg.eml")
	os.WriteFile(mf, []byte(msg), 0o600)
	base := func(proto string) string { return proto + "://127.0.0.1:" + port(s, proto) }
	run(t, curl, "-sS", "--max-time", "20", base("smtp"), "--mail-from", "curl@example.org",
		"--mail-rcpt", "bob@example.com", "--upload-file", mf, "-u", "bob:hunter2")
	// curl refuses an unknown recipient with the server's 550.
	cmd := exec.Command(curl, "-sS", "--max-time", "20", base("smtp"), "--mail-from", "curl@example.org",
		"--mail-rcpt", "nobody@example.com", "--upload-file", mf)
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "550") {
		t.Fatalf("unknown recipient: err=%v out=%s", err, b)
	}

	list := run(t, curl, "-sS", "--max-time", "20", "-u", "bob:hunter2", base("pop3")+"/")
	if !strings.HasPrefix(list, "1 ") {
		t.Fatalf("pop3 LIST: %q", list)
	}
	got := run(t, curl, "-sS", "--max-time", "20", "-u", "bob:hunter2", base("pop3")+"/1")
	if !strings.HasSuffix(got, msg) {
		t.Fatalf("pop3 RETR: %q", got)
	}
	got = run(t, curl, "-sS", "--max-time", "20", "-u", "bob:hunter2", base("imap")+"/INBOX;UID=1")
	if !strings.HasSuffix(got, msg) {
		t.Fatalf("imap fetch: %q", got)
	}
	boxes := run(t, curl, "-sS", "--max-time", "20", "-u", "bob:hunter2", base("imap")+"/")
	for _, b := range []string{"INBOX", `\Sent`, `\Trash`, `\Junk`, `\Drafts`} {
		if !strings.Contains(boxes, b) {
			t.Fatalf("imap LIST lacks %s:\n%s", b, boxes)
		}
	}
	// STARTTLS through curl, verification off for the self-signed cert.
	got = run(t, curl, "-sS", "--max-time", "20", "--ssl-reqd", "-k", "-u", "bob:hunter2", base("imap")+"/INBOX;UID=1")
	if !strings.HasSuffix(got, msg) {
		t.Fatalf("imap over STARTTLS: %q", got)
	}
	got = run(t, curl, "-sS", "--max-time", "20", "--ssl-reqd", "-k", "-u", "bob:hunter2", base("pop3")+"/1")
	if !strings.HasSuffix(got, msg) {
		t.Fatalf("pop3 over STLS: %q", got)
	}
}

// TestInteropMutt: mutt (built with Cyrus SASL, as Debian's is) sends a
// message in batch mode over SMTP and saves its copy over IMAP after
// logging in with AUTHENTICATE CRAM-MD5, which it sends with a trailing
// space ("a0000 AUTHENTICATE CRAM-MD5 "). The copy must arrive in Sent.
func TestInteropMutt(t *testing.T) {
	mutt := need(t, "mutt")
	var transcript syncBuffer
	s := testServer(t, func(o *Options) { o.Debug = &transcript })
	home := t.TempDir()
	rc := filepath.Join(home, "muttrc")
	imap := "imap://127.0.0.1:" + port(s, "imap") + "/"
	os.WriteFile(rc, []byte(`set imap_user=alice
set imap_pass=secret
set imap_authenticators="cram-md5"
set ssl_starttls=no
set ssl_force_tls=no
set smtp_url="smtp://127.0.0.1:`+port(s, "smtp")+`/"
set from="alice@example.com"
set folder="`+imap+`"
set record="`+imap+`Sent"
set copy=yes
set header_cache=""
set message_cachedir=""
`), 0o600)
	cmd := exec.Command(mutt, "-n", "-F", rc, "-s", "from mutt", "bob@example.com")
	cmd.Env = append(os.Environ(), "HOME="+home)
	cmd.Stdin = strings.NewReader("hello from mutt\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mutt: %v\n%s", err, out)
	}
	if !strings.Contains(transcript.String(), "AUTHENTICATE CRAM-MD5") {
		t.Fatalf("mutt did not use AUTHENTICATE CRAM-MD5:\n%s", transcript.String())
	}
	for _, who := range []struct{ user, box string }{{"bob", "INBOX"}, {"alice", "Sent"}} {
		snap, err := s.Store().Snapshot(who.user, who.box)
		if err != nil || len(snap.Messages) != 1 || !bytes.Contains(snap.Messages[0].Raw, []byte("Subject: from mutt")) {
			t.Fatalf("%s %s: %v %+v\nmutt: %s\n%s", who.user, who.box, err, snap, out, transcript.String())
		}
	}
}
