package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailtap/mailtap/replay/server"
)

// replayCLI runs the replay command as main's run would, with the exit
// status of a divergence caught instead of ending the test binary.
func replayCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := replayCommand()
	fs := cmd.flags()
	if err := fs.Parse(args); err != nil {
		return "", err.Error(), exitUsage
	}
	var o, e bytes.Buffer
	if err := cmd.run(fs, fs.Args(), &o, &e); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			return o.String(), err.Error(), exitUsage
		}
		var ee exitError
		if errors.As(err, &ee) {
			return o.String(), e.String(), ee.code
		}
		return o.String(), err.Error(), exitRuntime
	}
	return o.String(), e.String(), exitOK
}

func TestReplayCommandMatches(t *testing.T) {
	for _, p := range []string{"real-postfix-swaks-basic.pcap", "real-dovecot-poplib.pcap", "real-dovecot-imaplib.pcap"} {
		out, errOut, code := replayCLI(t, "--compare", "status", filepath.Join("..", "..", "pcaps", p))
		if code != 0 {
			t.Fatalf("%s: exit %d: %s\n%s", p, code, errOut, out)
		}
		recs := parseRecords(t, out)
		if len(recs) != 2 {
			t.Fatalf("%s: %d records", p, len(recs))
		}
		r := recs[0]
		if r.str("type") != "replay.session" || r.num("v") != 1 || r.num("commands") == 0 || r.num("matched") != r.num("commands") || r.num("divergences") != 0 {
			t.Errorf("%s: %v", p, r)
		}
		sm := recs[1]
		if sm.str("type") != "replay.summary" || sm.num("v") != 1 || sm.num("sessions") != 1 || sm.num("compared") != 1 || sm.num("matched") != 1 || sm.num("diverged") != 0 {
			t.Errorf("%s: summary %v", p, sm)
		}
	}
}

// The default, --compare full against the built-in server: a Postfix
// capture matches (Postfix's enhanced codes; the EHLO keywords, the
// server's own, are not compared and the footer says so); with
// --no-default-ignores the EHLO set diverges, exit 3.
func TestReplayCommandBuiltinFull(t *testing.T) {
	pcap := filepath.Join("..", "..", "pcaps", "real-postfix-swaks-basic.pcap")
	out, errOut, code := replayCLI(t, "-f", "text", pcap)
	if code != exitOK || !strings.Contains(out, "1 matched, 0 diverged") ||
		!strings.Contains(out, "not compared against the built-in server (its own capabilities; --no-default-ignores compares them): smtp:EHLO\n") {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
	out, errOut, code = replayCLI(t, "-f", "text", "--no-default-ignores", pcap)
	if code != exitDivergence || !strings.Contains(out, "#1 EHLO EHLO: set removed") || strings.Contains(out, "not compared") {
		t.Fatalf("--no-default-ignores: exit %d: %s\n%s", code, errOut, out)
	}
}

// A real target without the recipient's mailbox: RCPT 550 where the
// capture had 250, and exit status 3.
func TestReplayCommandDivergence(t *testing.T) {
	srv, err := server.New(server.Options{SMTPAddr: "127.0.0.1:0", Users: map[string]string{"dave": "x"}, Deterministic: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	target := "smtp=" + srv.Addrs()["smtp"].String()
	pcap := filepath.Join("..", "..", "pcaps", "real-postfix-swaks-basic.pcap")
	out, errOut, code := replayCLI(t, "--target", target, pcap)
	if code != exitDivergence {
		t.Fatalf("exit %d, want 3: %s\n%s", code, errOut, out)
	}
	recs := parseRecords(t, out)
	if len(recs) != 2 {
		t.Fatalf("%d records", len(recs))
	}
	d := recs[0].list("diverged")
	if len(d) == 0 {
		t.Fatalf("no divergence: %v", recs[0])
	}
	var first record
	for _, x := range d {
		if r := record(x.(map[string]any)); r.str("field") == "status" {
			first = r
			break
		}
	}
	if first.str("verb") != "RCPT" || first.num("captured") != 250 || first.num("replayed") != 550 || first.num("index") != 3 || first.num("session") != 1 {
		t.Errorf("first divergence %v, want RCPT 250 -> 550", first)
	}
	if recs[0].str("target") != srv.Addrs()["smtp"].String() {
		t.Errorf("target %q", recs[0].str("target"))
	}

	out, _, code = replayCLI(t, "-f", "text", "--target", target, pcap)
	if code != exitDivergence || !strings.Contains(out, "#3 RCPT status: value captured 250, replayed 550") || !strings.Contains(out, "1 sessions: 1 compared, 0 matched, 1 diverged, 0 skipped") {
		t.Errorf("text report (exit %d):\n%s", code, out)
	}
	// Through run, as main sees it: status 3, the report, no message.
	if o, e, code := runCLI("replay", "-f", "text", "--target", target, pcap); code != exitDivergence || len(e) != 0 || !bytes.Contains(o, []byte("0 matched")) {
		t.Errorf("run: exit %d, stderr %q", code, e)
	}
}

func TestReplayCommandSkipsAndUsage(t *testing.T) {
	// Nothing replayable: exit 4 with a one-line reason.
	out, errOut, code := replayCLI(t, "-f", "text", filepath.Join("..", "..", "pcaps", "gen-pop3-loss.pcap"))
	if code != exitNothing || !strings.Contains(out, "skipped: partial") || !strings.Contains(out, "1 sessions: 0 compared, 0 matched, 0 diverged, 1 skipped (1 partial)") ||
		errOut != "mailtap replay: nothing compared: all 1 sessions skipped (1 partial)\n" {
		t.Errorf("exit %d %q\n%s", code, errOut, out)
	}
	for _, args := range [][]string{{}, {"--target", "smtp", "x.pcap"}, {"--target", "ftp=127.0.0.1:21", "x.pcap"}, {"-f", "xml", "x.pcap"},
		{"--target", "smtp=127.0.0.1:25", "--target", "smtp=127.0.0.1:587", "x.pcap"}, {"--target", "25=127.0.0.1:25", "--target", "25=127.0.0.1:26", "x.pcap"},
		{"--compare", "all", "x.pcap"}, {"--ignore", "imap:", "x.pcap"}, {"--pace", "slow", "x.pcap"}, {"--concurrency", "0", "x.pcap"},
		{"--user", "bob", "x.pcap"}, {"--skip", "DATA", "x.pcap"}} {
		if _, _, code := replayCLI(t, args...); code != exitUsage {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

// A port target wins over a protocol target; a target that speaks
// another protocol fails at once with a clear line.
func TestReplayCommandTargets(t *testing.T) {
	srv, err := server.New(server.Options{SMTPAddr: "127.0.0.1:0", IMAPAddr: "127.0.0.1:0", Users: map[string]string{"carol": "x"}, Deterministic: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	smtpAddr, imapAddr := srv.Addrs()["smtp"].String(), srv.Addrs()["imap"].String()
	pcap := filepath.Join("..", "..", "pcaps", "real-postfix-swaks-basic.pcap")
	out, errOut, code := replayCLI(t, "--compare", "status", "--target", "25="+smtpAddr, "--target", "smtp=127.0.0.1:9", pcap)
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
	if r := parseRecords(t, out)[0]; r.str("target") != smtpAddr || r.num("matched") != 6 {
		t.Errorf("port target: %v", r)
	}
	_, errOut, code = replayCLI(t, "--target", "smtp="+imapAddr, pcap)
	if code != exitRuntime || !strings.Contains(errOut, "not a smtp server") || !strings.Contains(errOut, "* OK") {
		t.Errorf("wrong protocol: exit %d %q", code, errOut)
	}
}

// With the passwords given, APOP and CRAM-MD5 sessions are replayed (the
// digests computed for the new challenge) instead of skipped; a failed
// captured attempt still fails.
func TestReplayCommandUsers(t *testing.T) {
	pcap := filepath.Join("..", "..", "pcaps", "gen-pop3-auth.pcap")
	out, errOut, code := replayCLI(t, "--compare", "status", "--pace", "fast", "--user", "bob:pw", "--user", "erin:pw2", pcap)
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
	recs := parseRecords(t, out)
	sm := recs[len(recs)-1]
	if sm.num("sessions") != 5 || sm.num("compared") != 5 || sm.num("matched") != 5 {
		t.Errorf("summary %v", sm)
	}
	out, _, _ = replayCLI(t, "--compare", "status", "--pace", "fast", pcap)
	sm = parseRecords(t, out)[5]
	if sm.num("skipped") != 2 {
		t.Errorf("without passwords: %v", sm)
	}
	// The same passwords from a --users file.
	file := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(file, []byte("# replay users\nbob:pw\n\nerin:pw2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, code = replayCLI(t, "--compare", "status", "--pace", "fast", "--users", file, pcap)
	if sm = parseRecords(t, out)[5]; code != 0 || sm.num("matched") != 5 {
		t.Errorf("--users: exit %d %v", code, sm)
	}
	if err := os.WriteFile(file, []byte("bob\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := replayCLI(t, "--users", file, pcap); code != exitRuntime || !strings.Contains(errOut, ":1: want NAME:PASSWORD") {
		t.Errorf("bad --users file: exit %d %q", code, errOut)
	}
}
