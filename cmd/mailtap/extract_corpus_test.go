package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestExtractedAttachmentIsTheFileSent: the attachment swaks sent to
// Postfix, and that Dovecot then served to poplib and imaplib, extracts
// to exactly the bytes of the original file.
func TestExtractedAttachmentIsTheFileSent(t *testing.T) {
	orig, err := os.ReadFile(filepath.Join("..", "..", "pcaps", "record", "files", "quarterly-report.csv"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(orig)
	want := hex.EncodeToString(sum[:])
	for _, capFile := range []string{"real-postfix-swaks-basic.pcap", "real-dovecot-imaplib.pcap"} {
		dir := t.TempDir()
		decodeFile(t, filepath.Join("..", "..", "pcaps", capFile), "--extract", dir)
		matches, _ := filepath.Glob(filepath.Join(dir, "attachments", "*"))
		found := false
		for _, m := range matches {
			b, err := os.ReadFile(m)
			if err != nil {
				t.Fatal(err)
			}
			s := sha256.Sum256(b)
			if hex.EncodeToString(s[:]) == want {
				found = true
				if !strings.HasPrefix(filepath.Base(m), want[:16]+"-") {
					t.Errorf("%s: %s is not named by its hash", capFile, m)
				}
			}
		}
		if !found {
			t.Errorf("%s: no extracted attachment has the sha256 of the file sent (%s); got %v", capFile, want, matches)
		}
	}
}

// TestCorpusExtractStaysInDir extracts every corpus capture and checks
// that every file written is inside the directory.
func TestCorpusExtractStaysInDir(t *testing.T) {
	files := corpusCaptures(t)
	parent := t.TempDir()
	dir := filepath.Join(parent, "x")
	os.Mkdir(dir, 0o755)
	for i, f := range files {
		// A directory per capture: --extract refuses a non-empty one.
		runCLI("read", "--extract", filepath.Join(dir, strconv.Itoa(i)), "--workers", "1", f)
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 1 {
		t.Errorf("extraction wrote beside its directory: %v", entries)
	}
	n := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		if d.Type()&os.ModeSymlink != 0 {
			t.Errorf("symlink %s", p)
		}
		if !d.IsDir() {
			n++
			r, _ := filepath.Rel(dir, p)
			if strings.HasPrefix(r, "..") {
				t.Errorf("%s outside %s", p, dir)
			}
		}
		return nil
	})
	if n < 100 {
		t.Errorf("only %d files extracted from the corpus", n)
	}
}

// TestCorpusSecretsRedacted decodes every corpus capture with
// --show-secrets to learn the secrets, then without it, and wants none of
// them where secrets are shown: auth fields and command arguments (JSON),
// command and auth lines (text) and the credentials list. (Elsewhere a
// secret may legitimately appear by coincidence: "napier" is both a
// password and a domain in one trace.)
func TestCorpusSecretsRedacted(t *testing.T) {
	files := corpusCaptures(t)
	total := 0
	for _, f := range files {
		recs := decodeFileLenient(t, f, "--show-secrets")
		// Names that are not secret: a password that is part of one
		// cannot be told from it.
		var names []string
		for _, r := range recs {
			names = append(names, r.str("mail_from"))
			names = append(names, rcptAddrs(r)...)
			for _, a := range r.list("auths") {
				names = append(names, record(a.(map[string]any)).str("user"))
			}
		}
		var secrets []string
		for _, r := range ofType(recs, "session") {
			for _, a := range r.list("auths") {
				ar := record(a.(map[string]any))
				for _, k := range []string{"password", "response"} {
					if s := ar.str(k); len(s) >= 4 && s != "<redacted>" && !inAny(names, s) {
						secrets = append(secrets, s)
					}
				}
			}
		}
		if len(secrets) == 0 {
			continue
		}
		total += len(secrets)
		var places []string
		for _, r := range corpusRecords(t, f) {
			places = append(places, r.str("args"))
			for _, a := range append(r.list("auths"), any(map[string]any(r.obj("auth")))) {
				if ar, ok := a.(map[string]any); ok {
					for _, k := range []string{"password", "response", "challenge"} {
						places = append(places, record(ar).str(k))
					}
				}
			}
		}
		text, _, _ := runCLI("read", "--level", "commands", "-f", "text", f)
		for _, line := range strings.Split(string(text), "\n") {
			if strings.Contains(line, " C: ") || strings.HasPrefix(strings.TrimSpace(line), "auth:") {
				places = append(places, strings.ReplaceAll(line, "password=", ""))
			}
		}
		creds, _, _ := runCLI("read", "--credentials", f)
		for _, line := range strings.Split(string(creds), "\n") {
			// The secret column follows the quoted user name.
			if i := strings.LastIndexByte(line, '"'); i >= 0 {
				places = append(places, line[i+1:])
			}
		}
		for _, s := range secrets {
			for _, p := range places {
				if strings.Contains(p, s) {
					t.Errorf("%s: secret %q shown without --show-secrets: %.200s", rel(f), s, p)
				}
			}
		}
	}
	if total < 10 {
		t.Errorf("only %d secrets found in the corpus", total)
	}
	t.Logf("%d secrets stay hidden", total)
}

func inAny(l []string, s string) bool {
	for _, v := range l {
		if strings.Contains(v, s) {
			return true
		}
	}
	return false
}

// TestExtractCutAttachment: in gen-pop3-loss.pcap the message's end is
// lost inside its PDF attachment. The record flags the attachment
// truncated without a hash, index.json says so too, its file is named
// .partial, and every extracted file has the .eml files' mode (the
// attachments were 0600). A whole attachment (swaks to Postfix) keeps
// its hash and plain name.
func TestExtractCutAttachment(t *testing.T) {
	for _, tc := range []struct {
		file string
		cut  bool
	}{{"gen-pop3-loss.pcap", true}, {"real-postfix-swaks-basic.pcap", false}} {
		dir := filepath.Join(t.TempDir(), "x")
		recs := decodeFile(t, filepath.Join("..", "..", "pcaps", tc.file), "--extract", dir)
		var atts []map[string]any
		var emls []string
		for _, r := range recs {
			m, _ := r["message"].(map[string]any)
			if m == nil {
				continue
			}
			if f, _ := m["file"].(string); f != "" {
				emls = append(emls, f)
			}
			as, _ := m["attachments"].([]any)
			for _, a := range as {
				atts = append(atts, a.(map[string]any))
			}
		}
		if len(atts) == 0 || len(emls) == 0 {
			t.Fatalf("%s: %d attachments, %d messages extracted", tc.file, len(atts), len(emls))
		}
		eml, err := os.Stat(emls[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range atts {
			f, _ := a["file"].(string)
			_, hasSum := a["sha256"]
			cut, _ := a["truncated"].(bool)
			if cut != tc.cut || hasSum == tc.cut || strings.HasSuffix(f, ".partial") != tc.cut {
				t.Errorf("%s: attachment %v: want truncated %v", tc.file, a, tc.cut)
			}
			st, err := os.Stat(f)
			if err != nil || st.Mode().Perm() != eml.Mode().Perm() {
				t.Errorf("%s: %s: mode %v, .eml %v (%v)", tc.file, f, st.Mode().Perm(), eml.Mode().Perm(), err)
			}
		}
		b, err := os.ReadFile(filepath.Join(dir, "index.json"))
		var idx struct {
			Messages []struct {
				Attachments []struct {
					File      string
					SHA256    *string
					Truncated bool
				}
			}
		}
		if err != nil || json.Unmarshal(b, &idx) != nil || len(idx.Messages) == 0 {
			t.Fatalf("%s: index.json: %v\n%s", tc.file, err, b)
		}
		for _, m := range idx.Messages {
			for _, a := range m.Attachments {
				if a.Truncated != tc.cut || (a.SHA256 != nil) == tc.cut || strings.HasSuffix(a.File, ".partial") != tc.cut {
					t.Errorf("%s: index.json attachment %+v: want truncated %v", tc.file, a, tc.cut)
				}
			}
		}
	}
}
