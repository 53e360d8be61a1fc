package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailtap/mailtap/decode/textsafe"
)

const hostileStrings = "../../pcaps/gen-hostile-strings.pcap"

// TestHostileStringsEveryRenderer feeds pcaps/gen-hostile-strings.pcap
// (terminal escapes, BEL, BS, NUL, CR, DEL, C1, bidi overrides, zero-width
// characters and invalid UTF-8 in every field a person reads) through
// every renderer and checks that no such rune reaches the output, and that
// the text shows them as escapes rather than dropping them.
func TestHostileStringsEveryRenderer(t *testing.T) {
	safe := func(t *testing.T, what, out string) {
		t.Helper()
		for n, line := range strings.Split(out, "\n") {
			if bad := textsafe.Check(line); bad != "" {
				t.Errorf("%s: line %d: raw %s: %q", what, n+1, bad, line)
			}
		}
	}
	dir := t.TempDir()
	runs := []struct {
		name string
		args []string
		want []string // escapes the output must show
	}{
		{"json", []string{"--level", "commands", "--show-secrets"}, []string{`\u001b[2J`, `\u202e`, `\u007f`, `\u009b`, `\u200b`}},
		{"text", []string{"-f", "text", "--level", "commands", "--show-secrets"}, []string{
			`Subject: CLEAR\x1b[2J\x1b[3J\x1b[HSCREEN \x1b]0;TITLE\x07 nul\x00 bs\x08 cr\r del\x7f csi\u009b zw\u200b\ufeff bidi\u202eabc\u202c`,
			`From: \x1b[32mBank\x1b[0m <bank@example.com>`,
			`Cc: \x1b]0;PWNED\x07 <cc@example.net>`,
			`Subject: \x1b[2JCLEARED`,
			`greeting: mx.example.net \x1b[2J\x1b[H ESMTP \x1b]0;GREETING\x07`,
			`helo: \x1b[31mred.example\x1b[0m\u202etxt.exe`,
			`EHLO \x1b[31mred.example\x1b[0m\u202etxt.exe bad\xff\xfe`,
			`from: <evil\x1b[8m@example.org>`,
			`to:   <bob\u200b@example.net\u2066>`,
			`auth: PLAIN user="m\x1b[7mallory" password=pa\x07ss\x08word OK`,
			`attachment: "invoice\u202efdp.exe\x1b[2J"`,
			`CREATE "IN\x1b[2JBOX"`,
			`mailboxes: Inbox\u202e\u200b`,
			`auth: USER user="eve\x1b[0m\u202e" password=se\x00cr\x07et OK`,
		}},
		{"credentials", []string{"--credentials", "--show-secrets"}, []string{`"m\x1b[7mallory"`, `pa\x07ss\x08word`, `"ma\x1b[5mllory"`, `se\x00cr\x07et`}},
		{"extract", []string{"-f", "text", "--extract", dir}, []string{`saved: ` + dir}},
	}
	for _, r := range runs {
		out, errOut, code := runCLI(append(append([]string{"read"}, r.args...), hostileStrings)...)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", r.name, code, errOut)
		}
		safe(t, r.name, string(out))
		safe(t, r.name+" stderr", string(errOut))
		for _, w := range r.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("%s: output lacks %s", r.name, w)
			}
		}
	}
	// The extraction index and the names of the files written.
	index, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	safe(t, "index.json", string(index))
	if !strings.Contains(string(index), `\u202e`) {
		t.Errorf("index.json lacks the escaped attachment name:\n%s", index)
	}
	err = filepath.WalkDir(dir, func(path string, _ os.DirEntry, err error) error {
		safe(t, "file name", path)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Replay's report quotes the target's replies and the capture's verbs.
	out, errOut, _ := replayCLI(t, "-f", "text", hostileStrings)
	safe(t, "replay", out+errOut)
	if !strings.Contains(out, "session 30 imap") {
		t.Errorf("replay report:\n%s\n%s", out, errOut)
	}
	out, errOut, _ = replayCLI(t, "-f", "json", hostileStrings)
	safe(t, "replay json", out+errOut)
}
