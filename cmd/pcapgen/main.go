// Command pcapgen writes the generated captures under pcaps/ from the
// transcripts under pcaps/gen/ (see capture/synth for the format).
//
//	go run ./cmd/pcapgen -o pcaps/          # regenerate every capture
//	go run ./cmd/pcapgen --list             # what each capture shows
//	go run ./cmd/pcapgen --check            # committed files up to date?
//
// Output is deterministic: the same transcripts give the same bytes.
package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/mailtap/mailtap/capture/synth"
)

// maxSize keeps committed captures small.
const maxSize = 200 << 10

type config struct {
	out   string
	src   string
	list  bool
	check bool
	names []string
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("pcapgen", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	fs.StringVarP(&cfg.out, "out", "o", "pcaps", "directory the captures are written to (and checked in)")
	fs.StringVar(&cfg.src, "src", "", "directory of transcripts (default OUT/gen)")
	fs.BoolVar(&cfg.list, "list", false, "list the captures and what they show, write nothing")
	fs.BoolVar(&cfg.check, "check", false, "verify the files in OUT are identical to what would be written")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: pcapgen [-o DIR] [--src DIR] [--list | --check] [NAME...]\n\n"+
			"Writes the captures described by the transcripts in --src (NAME.txt); with NAMEs,\n"+
			"only the captures whose output or transcript name matches.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "pcapgen: %v (see pcapgen --help)\n", err)
		return 2
	}
	cfg.names = fs.Args()
	if cfg.src == "" {
		cfg.src = filepath.Join(cfg.out, "gen")
	}
	if cfg.list && cfg.check {
		fmt.Fprintln(stderr, "pcapgen: --list and --check exclude each other")
		return 2
	}
	scripts, err := load(cfg.src, cfg.names)
	if err != nil {
		fmt.Fprintf(stderr, "pcapgen: %v\n", err)
		return 1
	}
	switch {
	case cfg.list:
		list(stdout, scripts)
		return 0
	case cfg.check:
		return check(stdout, stderr, cfg, scripts)
	}
	for _, s := range scripts {
		for _, name := range s.Outputs {
			b, err := render(s, name)
			if err == nil {
				err = os.WriteFile(filepath.Join(cfg.out, name), b, 0o644)
			}
			if err != nil {
				fmt.Fprintf(stderr, "pcapgen: %s: %v\n", name, err)
				return 1
			}
			fmt.Fprintf(stdout, "wrote %s (%d bytes)\n", filepath.Join(cfg.out, name), len(b))
		}
	}
	return 0
}

// load parses every transcript in dir, keeping those matching names.
func load(dir string, names []string) ([]*synth.Script, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no transcripts (*.txt) in %s", dir)
	}
	sort.Strings(paths)
	var out []*synth.Script
	seen := map[string]string{}
	matched := map[string]bool{}
	for _, p := range paths {
		s, err := synth.LoadScript(p)
		if err != nil {
			return nil, err
		}
		for _, o := range s.Outputs {
			if prev, dup := seen[o]; dup {
				return nil, fmt.Errorf("%s and %s both write %s", prev, p, o)
			}
			seen[o] = p
		}
		keep := len(names) == 0
		for _, n := range names {
			if n == s.Name || slices.Contains(s.Outputs, n) {
				keep, matched[n] = true, true
			}
		}
		if keep {
			out = append(out, s)
		}
	}
	for _, n := range names {
		if !matched[n] {
			return nil, fmt.Errorf("no transcript or output named %q", n)
		}
	}
	return out, nil
}

func render(s *synth.Script, name string) ([]byte, error) {
	b, err := s.Capture.Bytes(name)
	if err != nil {
		return nil, err
	}
	if len(b) > maxSize {
		return nil, fmt.Errorf("%d bytes, over the %d-byte limit for committed captures", len(b), maxSize)
	}
	return b, nil
}

func list(w io.Writer, scripts []*synth.Script) {
	for _, s := range scripts {
		fmt.Fprintf(w, "%s\n", strings.Join(s.Outputs, ", "))
		fmt.Fprintf(w, "    %s (%s)\n", s.Desc, s.Capture.Link)
	}
}

// check compares each output with the committed file. Gzip files are
// compared after decompression: compress/flate's output may change between
// Go releases while the capture inside stays the same.
func check(stdout, stderr io.Writer, cfg config, scripts []*synth.Script) int {
	bad := 0
	produced := map[string]bool{}
	for _, s := range scripts {
		for _, name := range s.Outputs {
			produced[name] = true
			path := filepath.Join(cfg.out, name)
			want, err := render(s, name)
			if err != nil {
				fmt.Fprintf(stderr, "pcapgen: %s: %v\n", name, err)
				bad++
				continue
			}
			have, err := os.ReadFile(path)
			if err == nil && strings.HasSuffix(name, ".gz") {
				want, err = gunzip(want)
				if err == nil {
					have, err = gunzip(have)
				}
			}
			switch {
			case err != nil:
				fmt.Fprintf(stderr, "pcapgen: %s: %v\n", path, err)
				bad++
			case !bytes.Equal(have, want):
				fmt.Fprintf(stderr, "pcapgen: %s differs from its transcript (regenerate with: go run ./cmd/pcapgen -o %s)\n", path, cfg.out)
				bad++
			}
		}
	}
	if len(cfg.names) == 0 {
		// Generated files without a transcript are stale.
		matches, _ := filepath.Glob(filepath.Join(cfg.out, "gen-*"))
		for _, m := range matches {
			if !produced[filepath.Base(m)] {
				fmt.Fprintf(stderr, "pcapgen: %s has no transcript in %s\n", m, cfg.src)
				bad++
			}
		}
	}
	if bad > 0 {
		return 1
	}
	fmt.Fprintf(stdout, "%d captures up to date\n", len(produced))
	return 0
}

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}
