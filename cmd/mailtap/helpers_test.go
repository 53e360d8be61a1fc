package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// record is one decoded JSON line, kept generic so tests read the output
// exactly as a pipeline would.
type record map[string]any

func (r record) str(k string) string {
	s, _ := r[k].(string)
	return s
}

func (r record) num(k string) float64 {
	f, _ := r[k].(float64)
	return f
}

func (r record) obj(k string) record {
	m, _ := r[k].(map[string]any)
	return m
}

func (r record) list(k string) []any {
	l, _ := r[k].([]any)
	return l
}

// decodeFile runs "mailtap read" with args on path and parses the JSON lines.
func decodeFile(t testing.TB, path string, args ...string) []record {
	t.Helper()
	return decode1(t, false, path, args...)
}

// decodeFileLenient is decodeFile for captures that are corrupt part way
// (exit 1 after the records of what could be read).
func decodeFileLenient(t testing.TB, path string, args ...string) []record {
	t.Helper()
	return decode1(t, true, path, args...)
}

func decode1(t testing.TB, lenient bool, path string, args ...string) []record {
	t.Helper()
	out, errOut, code := runCLI(append(append([]string{"read"}, args...), path)...)
	if code != 0 && !(lenient && code == exitRuntime) {
		t.Fatalf("mailtap read %s: exit %d: %s", path, code, errOut)
	}
	return parseRecords(t, string(out))
}

// parseRecords parses JSON lines as a pipeline would.
func parseRecords(t testing.TB, out string) []record {
	t.Helper()
	var recs []record
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("bad JSON line %q: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	return recs
}

func runCLI(args ...string) (stdout, stderr []byte, code int) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return o.Bytes(), e.Bytes(), code
}

func ofType(recs []record, typ string) []record {
	var out []record
	for _, r := range recs {
		if r.str("type") == typ {
			out = append(out, r)
		}
	}
	return out
}

// corpusDir returns ../shared/corpus relative to the repo root, or skips.
func corpusDir(t testing.TB) string {
	t.Helper()
	p := filepath.Join("..", "..", "..", "shared", "corpus")
	if _, err := os.Stat(filepath.Join(p, "INDEX.md")); err != nil {
		t.Skipf("third-party corpus not found at %s (it sits beside the repo as ../shared/corpus): %v", p, err)
	}
	return p
}
