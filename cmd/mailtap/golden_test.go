package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// pcapFiles lists the project's own captures in pcaps/.
func pcapFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pat := range []string{"*.pcap", "*.pcapng", "*.pcap.gz", "*.pcapng.gz"} {
		m, err := filepath.Glob(filepath.Join("..", "..", "pcaps", pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatal("no captures in pcaps/")
	}
	return files
}

// TestGolden decodes every capture in pcaps/ at the commands level, as
// JSON and as text, and compares with testdata/golden. Run with -update
// after a deliberate change, and review the diff.
func TestGolden(t *testing.T) {
	for _, path := range pcapFiles(t) {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			for _, format := range []string{"json", "text"} {
				out, errOut, code := runCLI("read", "--level", "commands", "-f", format, path)
				if code != 0 {
					t.Fatalf("exit %d: %s", code, errOut)
				}
				ext := ".jsonl"
				if format == "text" {
					ext = ".txt"
				}
				golden := filepath.Join("testdata", "golden", name+ext)
				if *update {
					if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, out, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test ./cmd/mailtap -run Golden -update)", err)
				}
				if !bytes.Equal(out, want) {
					t.Errorf("%s output differs from %s:\n%s", format, golden, firstDiff(string(want), string(out)))
				}
			}
		})
	}
}

func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\n  want: %s\n  got:  %s", i+1, w, g)
		}
	}
	return "(same lines, different bytes)"
}
