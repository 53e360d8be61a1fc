package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailtap/mailtap/capture/bpfexpr"
)

func TestCLIUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{nil, exitUsage, "Usage: mailtap"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"read"}, exitUsage, "no capture file given"},
		{[]string{"read", "--bogus", "x.pcap"}, exitUsage, "unknown flag: --bogus"},
		{[]string{"read", "-f", "xml", "x.pcap"}, exitRuntime, "no such file"},
		{[]string{"read", "does-not-exist.pcap"}, exitRuntime, "does-not-exist.pcap: no such file or directory"},
		{[]string{"read", "--level", "all", "x.pcap"}, exitUsage, `--level "all"`},
		{[]string{"read", "--ports", "ftp=21", "x.pcap"}, exitUsage, `unknown protocol "ftp"`},
		{[]string{"help", "nope"}, exitUsage, `unknown command "nope"`},
	}
	for _, c := range cases {
		_, errOut, code := runCLI(c.args...)
		if code != c.code || !strings.Contains(string(errOut), c.want) {
			t.Errorf("mailtap %q: exit %d, stderr %q; want exit %d containing %q", c.args, code, errOut, c.code, c.want)
		}
		if n := strings.Count(strings.TrimSpace(string(errOut)), "\n"); c.code != exitUsage || c.args != nil {
			if n > 0 && c.args != nil {
				t.Errorf("mailtap %q: error is %d lines, want one: %q", c.args, n+1, errOut)
			}
		}
	}
}

func TestCLIHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"help"}, {"help", "read"}, {"read", "--help"}, {"read", "-h"}, {"version"}} {
		out, errOut, code := runCLI(args...)
		if code != 0 || len(out) == 0 {
			t.Errorf("mailtap %q: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	out, _, _ := runCLI("help", "read")
	for _, flag := range []string{"--format", "--level", "--ports", "--show-secrets", "--max-line", "--idle-timeout"} {
		if !bytes.Contains(out, []byte(flag)) {
			t.Errorf("help read lacks %s", flag)
		}
	}
}

func TestCLIBadFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := map[string][]byte{
		"empty.pcap":   {},
		"short.pcap":   {0xd4, 0xc3},
		"garbage.pcap": bytes.Repeat([]byte("garbage!"), 100),
		"badgz.pcap":   {0x1f, 0x8b, 8, 0, 1, 2, 3},
		"hdronly.pcap": {0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0},
	}
	for name, b := range cases {
		p := write(name, b)
		_, errOut, code := runCLI("read", p)
		if code != exitRuntime || !strings.HasPrefix(string(errOut), "mailtap read: ") {
			t.Errorf("%s: exit %d stderr %q; want exit 1 with a one-line error", name, code, errOut)
		}
	}
}

// TestExtractAndMbox extracts the messages of real captures of all three
// protocols and checks the files against the records.
func TestExtractAndMbox(t *testing.T) {
	for _, name := range []string{"smtp-basic.pcap", "real-dovecot-poplib.pcap", "real-dovecot-imaplib.pcap"} {
		path := filepath.Join("..", "..", "pcaps", name)
		dir := filepath.Join(t.TempDir(), "x")
		mbox := filepath.Join(t.TempDir(), "m.mbox")
		recs := decodeFile(t, path, "--extract", dir, "--mbox", mbox, "--workers", "2")
		idx, err := os.ReadFile(filepath.Join(dir, "index.json"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		n := 0
		for _, r := range recs {
			m := r.obj("message")
			if m == nil || m.str("file") == "" {
				continue
			}
			n++
			b, err := os.ReadFile(m.str("file"))
			if err != nil || int(m.num("size")) != len(b) {
				t.Errorf("%s: %s: %d bytes on disk, record says %v (%v)", name, m.str("file"), len(b), m.num("size"), err)
			}
			if !bytes.Contains(idx, []byte(m.str("sha256"))) {
				t.Errorf("%s: index.json lacks %s", name, m.str("sha256"))
			}
			for _, a := range m.list("attachments") {
				ar := record(a.(map[string]any))
				if st, err := os.Stat(ar.str("file")); err != nil || st.Size() != int64(ar.num("size")) {
					t.Errorf("%s: attachment %s: %v", name, ar.str("file"), err)
				}
			}
		}
		if n == 0 {
			t.Errorf("%s: no message extracted", name)
		}
		mb, err := os.ReadFile(mbox)
		if err != nil || bytes.Count(mb, []byte("\nFrom "))+1 < n {
			t.Errorf("%s: mbox has fewer than %d messages (%v)", name, n, err)
		}
	}
}

// TestTruncatedFile: a capture cut inside a packet record decodes up to the
// cut, warns on stderr and exits 0.
func TestTruncatedFile(t *testing.T) {
	whole, err := os.ReadFile(filepath.Join("..", "..", "pcaps", "smtp-basic.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	for _, cut := range []int{len(whole) - 7, len(whole) / 2, 200} {
		p := filepath.Join(t.TempDir(), "cut.pcap")
		if err := os.WriteFile(p, whole[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := runCLI("read", p)
		if code != 0 || !strings.Contains(string(errOut), "truncated") {
			t.Errorf("cut at %d: exit %d, stderr %q", cut, code, errOut)
		}
		if cut > len(whole)/2 && !bytes.Contains(out, []byte(`"type":"session"`)) {
			t.Errorf("cut at %d: no session record from the part before the cut", cut)
		}
	}
}

// TestReadBPF: --bpf keeps only the packets an expression matches (builds
// with -tags pcap), or says clearly that this build cannot compile it.
func TestReadBPF(t *testing.T) {
	path := filepath.Join("..", "..", "pcaps", "gen-smtp-portreuse.pcap")
	if !bpfexpr.Available {
		_, errOut, code := runCLI("read", "--bpf", "tcp port 25", path)
		if code != exitUsage || !strings.Contains(string(errOut), "-tags pcap") {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
		t.Skip("built without -tags pcap; the error says how to get --bpf")
	}
	all := ofType(decodeFile(t, filepath.Join("..", "..", "pcaps", "gen-smtp-nonstd-port.pcap")), "session")
	none := ofType(decodeFile(t, filepath.Join("..", "..", "pcaps", "gen-smtp-nonstd-port.pcap"), "--bpf", "tcp port 25"), "session")
	some := ofType(decodeFile(t, filepath.Join("..", "..", "pcaps", "gen-smtp-nonstd-port.pcap"), "--bpf", "tcp port 2526"), "session")
	if len(all) == 0 || len(none) != 0 || len(some) != len(all) {
		t.Errorf("sessions: %d unfiltered, %d with port 25, %d with port 2526", len(all), len(none), len(some))
	}
	if _, errOut, code := runCLI("read", "--bpf", "tcp and and", path); code != exitUsage || !strings.Contains(string(errOut), "--bpf") {
		t.Errorf("bad expression: exit %d, %q", code, errOut)
	}
}
