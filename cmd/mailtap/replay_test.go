package main

import (
	"bytes"
	"errors"
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
		out, errOut, code := replayCLI(t, filepath.Join("..", "..", "pcaps", p))
		if code != 0 {
			t.Fatalf("%s: exit %d: %s\n%s", p, code, errOut, out)
		}
		recs := parseRecords(t, out)
		if len(recs) != 1 {
			t.Fatalf("%s: %d records", p, len(recs))
		}
		r := recs[0]
		if r.str("type") != "replay.session" || r.num("commands") == 0 || r.num("matched") != r.num("commands") || r.num("divergences") != 0 {
			t.Errorf("%s: %v", p, r)
		}
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
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	d := recs[0].list("diverged")
	if len(d) == 0 {
		t.Fatalf("no divergence: %v", recs[0])
	}
	first := record(d[0].(map[string]any))
	if first.str("verb") != "RCPT" || first.num("want") != 250 || first.num("got") != 550 || first.num("index") != 2 {
		t.Errorf("first divergence %v, want RCPT 250 -> 550", first)
	}
	if recs[0].str("target") != srv.Addrs()["smtp"].String() {
		t.Errorf("target %q", recs[0].str("target"))
	}

	out, _, code = replayCLI(t, "-f", "text", "--target", target, pcap)
	if code != exitDivergence || !strings.Contains(out, "#2 RCPT: want 250, got 550") || !strings.Contains(out, "1 sessions, 1 replayed, 0 matched") {
		t.Errorf("text report (exit %d):\n%s", code, out)
	}
	// Through run, as main sees it: status 3, the report, no message.
	if o, e, code := runCLI("replay", "-f", "text", "--target", target, pcap); code != exitDivergence || len(e) != 0 || !bytes.Contains(o, []byte("0 matched")) {
		t.Errorf("run: exit %d, stderr %q", code, e)
	}
}

func TestReplayCommandSkipsAndUsage(t *testing.T) {
	out, errOut, code := replayCLI(t, "-f", "text", filepath.Join("..", "..", "pcaps", "gen-smtp-starttls.pcap"))
	if code != 0 || !strings.Contains(out, "skipped: encrypted") || !strings.Contains(out, "1 sessions, 0 replayed, 0 matched") {
		t.Errorf("exit %d %s\n%s", code, errOut, out)
	}
	for _, args := range [][]string{{}, {"--target", "smtp", "x.pcap"}, {"--target", "ftp=127.0.0.1:21", "x.pcap"}, {"-f", "xml", "x.pcap"}} {
		if _, _, code := replayCLI(t, args...); code != exitUsage {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}
