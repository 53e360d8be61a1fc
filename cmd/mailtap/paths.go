package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// textPending bounds the text held per run while -f text groups each
// session's records behind its SESSION block.
const textPending = 16 << 20

// One rule for every output path (-o, --mbox, --extract): "-" is standard
// output where that makes sense (-o, --mbox) and a usage error where it
// does not (--extract); the file or directory named is created, but its
// parent directory must already exist — nothing creates directories the
// user did not name.

// checkOutputPath checks that path's parent directory exists.
func checkOutputPath(flag, path string) error {
	parent := filepath.Dir(path)
	st, err := os.Stat(parent)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return usagef("%s %s: directory %s does not exist", flag, path, parent)
	case err != nil:
		return usagef("%s %s: %v", flag, path, unwrapPath(err))
	case !st.IsDir():
		return usagef("%s %s: %s is not a directory", flag, path, parent)
	}
	return nil
}

// unwrapPath drops the path an *os.PathError repeats.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// checkPaths applies the rule to the output flags, before anything is
// read or written.
func (d *decodeFlags) checkPaths() error {
	if d.output != "-" && d.output != "" {
		if err := checkOutputPath("-o", d.output); err != nil {
			return err
		}
	}
	if d.mbox == "-" && (d.output == "-" || d.output == "") {
		return usagef("--mbox - writes the mbox to standard output: send the records elsewhere with -o FILE (or -o %s)", os.DevNull)
	}
	if d.mbox != "" && d.mbox != "-" {
		if err := checkOutputPath("--mbox", d.mbox); err != nil {
			return err
		}
	}
	if d.extract == "-" {
		return usagef("--extract -: extraction writes a directory, give its path")
	}
	if d.extract != "" {
		if err := checkOutputPath("--extract", filepath.Clean(d.extract)); err != nil {
			return err
		}
		if err := prepareExtractDir(d.extract, d.force); err != nil {
			return err
		}
	}
	return nil
}

// prepareExtractDir refuses an --extract DIR that already holds files, so
// a re-run cannot leave the previous run's messages beside a new
// index.json. With --force it clears a DIR that holds only what an
// extraction writes (index.json, *.eml, attachments/); anything else in it
// is never deleted.
func prepareExtractDir(dir string, force bool) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return usagef("--extract %s: %v", dir, unwrapPath(err))
	case len(entries) == 0:
		return nil
	case !force:
		return usagef("--extract %s: directory not empty (a previous extraction?); use --force to clear it, or another directory", dir)
	}
	for _, e := range entries {
		name := e.Name()
		ours := name == "index.json" && e.Type().IsRegular() ||
			strings.HasSuffix(name, ".eml") && e.Type().IsRegular() ||
			name == "attachments" && e.IsDir()
		if !ours {
			return usagef("--extract %s --force: %s is not from an extraction; not clearing the directory", dir, name)
		}
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("--extract %s --force: %w", dir, unwrapPath(err))
		}
	}
	return nil
}
