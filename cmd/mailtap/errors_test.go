package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTruncatedPcapngWarns: a pcapng cut inside a packet block decodes
// what it holds and warns, exit 0, as pcap and gzip do.
func TestTruncatedPcapngWarns(t *testing.T) {
	data, err := os.ReadFile("../../pcaps/gen-smtp-sll2.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cut.pcapng")
	os.WriteFile(path, data[:1324], 0o644)
	out, errOut, code := runCLI("read", path)
	if code != 0 || !strings.Contains(string(errOut), "warning: "+path+": capture file is truncated") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if len(parseRecords(t, string(out))) == 0 {
		t.Errorf("nothing decoded before the cut")
	}
}

// TestFlagErrors: bad flag values get one plain sentence that names the
// flag and the value once, never strconv's internals, and nothing is
// accepted silently.
func TestFlagErrors(t *testing.T) {
	capture := "../../pcaps/gen-smtp-multi.pcap"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--port-filter", "abc"}, "--port-filter abc: not a port number (1-65535)"},
		{[]string{"--port-filter", "70000"}, "--port-filter 70000: not a port number (1-65535)"},
		{[]string{"--port-filter", "25,x"}, `--port-filter 25,x: "x": not a port number`},
		{[]string{"--ports", "smtp=abc"}, `--ports smtp=abc: "abc": not a port number (1-65535)`},
		{[]string{"--ports", "smtp="}, `--ports smtp=: no ports after "smtp="`},
		{[]string{"--ports", "smtp"}, "--ports smtp: want PROTO=PORTS"},
		{[]string{"--ports", "smtp=0"}, `--ports smtp=0: "0": not a port number`},
		{[]string{"--ports", "smtp=25+tls,99999"}, `"99999": not a port number`},
	} {
		_, errOut, code := runCLI(append(append([]string{"read"}, tc.args...), capture)...)
		msg := string(errOut)
		if code != exitUsage || !strings.Contains(msg, tc.want) {
			t.Errorf("%v: exit %d, %q, want %q", tc.args, code, msg, tc.want)
		}
		if strings.Contains(msg, "strconv") || strings.Contains(msg, "invalid argument") || strings.Count(msg, "\n") != 1 {
			t.Errorf("%v: %q", tc.args, msg)
		}
	}
}

// TestNotACaptureFile: a file too short to be a capture, or not one at
// all, says so in plain words and names the file.
func TestNotACaptureFile(t *testing.T) {
	dir := t.TempDir()
	pcap, _ := os.ReadFile("../../pcaps/gen-smtp-multi.pcap")
	for name, data := range map[string][]byte{
		"ten-bytes":   []byte("0123456789"),
		"pcap-head":   pcap[:10],
		"three-bytes": []byte("abc"),
		"text":        []byte("hello, this is not a capture\n"),
		"empty":       nil,
	} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, data, 0o644)
		_, errOut, code := runCLI("read", path)
		want := "mailtap read: not a capture file or cut short: " + path + "\n"
		if code != exitRuntime || string(errOut) != want {
			t.Errorf("%s: exit %d, %q, want %q", name, code, errOut, want)
		}
	}
}

// TestCredentialsJSON: --credentials -f json writes one JSON line per
// login attempt (type "auth"), not the table.
func TestCredentialsJSON(t *testing.T) {
	out, errOut, code := runCLI("read", "--credentials", "-f", "json", "../../pcaps/gen-smtp-auth.pcap")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	recs := parseRecords(t, string(out))
	var got []string
	for _, r := range recs {
		if r.str("type") != "auth" || r.num("v") != 1 || r.str("client") == "" {
			t.Errorf("record %v", r)
		}
		got = append(got, fmt.Sprintf("%s/%s/%v/%s", r.str("mechanism"), r.str("user"), r["success"], r.str("password")))
	}
	want := "PLAIN/alice/true/<redacted> LOGIN/bob/false/<redacted> LOGIN/bob/true/<redacted> CRAM-MD5/carol/true/"
	if strings.Join(got, " ") != want {
		t.Errorf("attempts %v, want %s", got, want)
	}
	// Without -f, and with -f text, the table.
	for _, args := range [][]string{{"--credentials"}, {"--credentials", "-f", "text"}, {"-f", "credentials"}} {
		out, _, _ := runCLI(append(append([]string{"read"}, args...), "../../pcaps/gen-smtp-auth.pcap")...)
		if !strings.HasPrefix(string(out), "time ") {
			t.Errorf("%v: not the table: %.80s", args, out)
		}
	}
}

// TestReadStdin: "read -" and "read -r -" read the capture from standard
// input, pcap, pcapng or gzip, with the same records as the file.
func TestReadStdin(t *testing.T) {
	defer func(old io.Reader) { stdin = old }(stdin)
	for _, name := range []string{"gen-smtp-multi.pcap", "gen-smtp-sll2.pcapng", "gen-smtp-gz.pcap.gz", "gen-hostile-strings.pcap"} {
		path := filepath.Join("..", "..", "pcaps", name)
		want, errOut, code := runCLI("read", "--level", "commands", path)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", name, code, errOut)
		}
		data, _ := os.ReadFile(path)
		for _, args := range [][]string{{"read", "--level", "commands", "-"}, {"read", "--level", "commands", "-r", "-"}} {
			stdin = bytes.NewReader(data)
			got, errOut, code := runCLI(args...)
			if code != 0 || !bytes.Equal(got, want) {
				t.Errorf("%s %v: exit %d (%s), %d bytes, want the file's %d", name, args, code, errOut, len(got), len(want))
			}
		}
	}
	stdin = strings.NewReader("not a capture")
	_, errOut, code := runCLI("read", "-")
	if code != exitRuntime || !strings.Contains(string(errOut), "not a capture file or cut short: standard input") {
		t.Errorf("junk on stdin: exit %d, %s", code, errOut)
	}
}

// TestErrorsEscaped: an error that quotes outside data (here a file name
// with a terminal escape and a newline) reaches stderr as one escaped line.
func TestErrorsEscaped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x\x1b[2J\nFAKE LINE.pcap")
	_, errOut, code := runCLI("read", path)
	msg := string(errOut)
	if code != exitRuntime || strings.Count(msg, "\n") != 1 || strings.ContainsAny(msg, "\x1b") || !strings.Contains(msg, `x\x1b[2J\nFAKE LINE.pcap`) {
		t.Errorf("exit %d: %q", code, msg)
	}
}
