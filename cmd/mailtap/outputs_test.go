package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestExtractBDATGap: zeek's smtp-bdat-gap loses 1000 bytes of a BDAT
// message before the client falls back to DATA. Every .eml written is
// named by a record and by index.json (no orphan), and the message that
// lost bytes says so (truncated, missing_bytes), as Zeek's files.log does.
func TestExtractBDATGap(t *testing.T) {
	path := filepath.Join(corpusDir(t), "zeek", "smtp-bdat-gap", "smtp-bdat-gap.pcap")
	dir := filepath.Join(t.TempDir(), "x")
	recs := decodeFile(t, path, "--extract", dir)
	named := map[string]bool{}
	var lost int
	for _, r := range ofType(recs, "smtp.mail") {
		m := r.obj("message")
		named[filepath.Base(m.str("file"))] = true
		if m.num("missing_bytes") == 1000 {
			lost++
			if m["truncated"] != true || m.num("size") != 100 {
				t.Errorf("message that lost 1000 bytes: %v", m)
			}
		}
	}
	if lost != 1 {
		t.Errorf("%d messages with missing_bytes 1000, want 1: %v", lost, ofType(recs, "smtp.mail"))
	}
	var index struct {
		Messages []struct {
			File         string `json:"file"`
			Truncated    bool   `json:"truncated"`
			MissingBytes int64  `json:"missing_bytes"`
		} `json:"messages"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &index); err != nil {
		t.Fatal(err)
	}
	inIndex := map[string]bool{}
	for _, m := range index.Messages {
		inIndex[m.File] = true
		if m.MissingBytes == 1000 && !m.Truncated {
			t.Errorf("index: %+v", m)
		}
	}
	emls, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(emls) != len(named) {
		t.Errorf("%d .eml files, %d named by records", len(emls), len(named))
	}
	for _, f := range emls {
		if !named[filepath.Base(f)] || !inIndex[filepath.Base(f)] {
			t.Errorf("orphan %s (records %v, index %v)", filepath.Base(f), named, inIndex)
		}
	}
}

// TestExtractRerun: a second run into the same DIR is refused; --force
// clears a DIR that holds only an extraction, never one with other files.
func TestExtractRerun(t *testing.T) {
	capture := "../../pcaps/gen-smtp-multi.pcap"
	dir := filepath.Join(t.TempDir(), "x")
	if _, errOut, code := runCLI("read", "--extract", dir, capture); code != 0 {
		t.Fatalf("first run: exit %d: %s", code, errOut)
	}
	first := listDir(t, dir)
	_, errOut, code := runCLI("read", "--extract", dir, capture)
	if code != exitUsage || !strings.Contains(string(errOut), "not empty") || !strings.Contains(string(errOut), "--force") {
		t.Errorf("re-run: exit %d: %s", code, errOut)
	}
	if got := listDir(t, dir); !slices.Equal(got, first) {
		t.Errorf("refused re-run changed the directory: %v, was %v", got, first)
	}
	os.WriteFile(filepath.Join(dir, "stale-9-9.eml"), []byte("old"), 0o644)
	if _, errOut, code := runCLI("read", "--extract", dir, "--force", capture); code != 0 {
		t.Fatalf("--force: exit %d: %s", code, errOut)
	}
	if got := listDir(t, dir); !slices.Equal(got, first) {
		t.Errorf("after --force: %v, want %v", got, first)
	}
	mine := filepath.Join(dir, "notes.txt")
	os.WriteFile(mine, []byte("keep me"), 0o644)
	_, errOut, code = runCLI("read", "--extract", dir, "--force", capture)
	if code != exitUsage || !strings.Contains(string(errOut), "notes.txt") {
		t.Errorf("--force over a foreign file: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("--force deleted a file that is not from an extraction: %v", err)
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return err
	})
	return out
}

// TestOutputPaths: one rule for -o, --mbox and --extract. A path in a
// missing directory fails with one line and creates nothing; "-" is
// standard output for -o and --mbox and a usage error for --extract.
func TestOutputPaths(t *testing.T) {
	capture := "../../pcaps/gen-smtp-multi.pcap"
	tmp := t.TempDir()
	missing := filepath.Join(tmp, "nonexist")
	for _, args := range [][]string{
		{"-o", filepath.Join(missing, "out.jsonl")},
		{"--mbox", filepath.Join(missing, "x.mbox")},
		{"--extract", filepath.Join(missing, "dir")},
	} {
		_, errOut, code := runCLI(append(append([]string{"read"}, args...), capture)...)
		msg := strings.TrimSpace(string(errOut))
		if code != exitUsage || !strings.Contains(msg, "directory "+missing+" does not exist") || !strings.HasPrefix(msg, "mailtap") {
			t.Errorf("%v: exit %d: %q", args, code, msg)
		}
		if strings.Count(msg, "\n") > 1 { // the error and the usage hint at most
			t.Errorf("%v: more than one line of error: %q", args, msg)
		}
		if _, err := os.Stat(missing); err == nil {
			t.Fatalf("%v created %s", args, missing)
		}
	}
	_, errOut, code := runCLI("read", "--extract", "-", capture)
	if code != exitUsage || !strings.Contains(string(errOut), "--extract -") {
		t.Errorf("--extract -: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat("-"); err == nil {
		t.Errorf("--extract - created ./-")
	}
	_, errOut, code = runCLI("read", "--mbox", "-", capture)
	if code != exitUsage || !strings.Contains(string(errOut), "-o FILE") {
		t.Errorf("--mbox - with records on stdout too: exit %d: %s", code, errOut)
	}
	out, errOut, code := runCLI("read", "--mbox", "-", "-o", filepath.Join(tmp, "recs.jsonl"), capture)
	if code != 0 {
		t.Fatalf("--mbox -: exit %d: %s", code, errOut)
	}
	if !strings.HasPrefix(string(out), "From alice@example.org ") || strings.Count(string(out), "\nFrom ") != 1 {
		t.Errorf("--mbox - did not write the mbox to stdout:\n%.300s", out)
	}
	if _, err := os.Stat("-"); err == nil {
		t.Errorf("--mbox - created ./-")
	}
	// The records of an mbox-only run name no file: "file" is the
	// extracted copy, and there is none (the message went to the mbox
	// from memory or from a temporary file since removed).
	recs, err := os.ReadFile(filepath.Join(tmp, "recs.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(recs), `"type":"smtp.mail"`) || strings.Contains(string(recs), `"file"`) {
		t.Errorf("--mbox alone: records should carry no file field:\n%.400s", recs)
	}
}

// TestBDATGapTimes: in zeek's smtp-bdat-gap the client's bytes after the
// lost BDAT chunk reach the decoder when the page limit pushes gopacket
// past the hole, and gopacket hands over the oldest queued page, not the
// packet being assembled. Each command keeps the time of its own packet:
// the DATA command is stamped with the DATA packet's time and its latency
// (to the 250 reply) is measured, not left null because the time of a
// later packet came after the reply.
func TestBDATGapTimes(t *testing.T) {
	path := filepath.Join(corpusDir(t), "zeek", "smtp-bdat-gap", "smtp-bdat-gap.pcap")
	recs := decodeFile(t, path, "--level", "commands", "--workers", "1")
	cmds := ofType(recs, "command")
	if len(cmds) != 6 {
		t.Fatalf("%d command records, want 6: %v", len(cmds), cmds)
	}
	for _, c := range cmds {
		if c["latency_ms"] == nil || c.num("latency_ms") < 0 {
			t.Errorf("%s at %s: latency %v, want the time to its reply", c.str("verb"), c.str("ts"), c["latency_ms"])
		}
		if c.str("verb") == "DATA" && c.str("ts") != "2026-04-15T03:42:01.179453Z" {
			t.Errorf("DATA stamped %s, want its packet's time 2026-04-15T03:42:01.179453Z", c.str("ts"))
		}
	}
}
