package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/mailtap/mailtap/capture"
)

// TestSniffRotateReadBack: sniff -w with --rotate-bytes writes several
// files, and `read DIR` of them decodes every mail sniff decoded live,
// each exactly once: connections that crossed a file boundary are whole.
func TestSniffRotateReadBack(t *testing.T) {
	needRoot(t)
	srv := startSMTP(t)
	dir := t.TempDir()
	w := filepath.Join(dir, "cap.pcapng")
	run := startSniff(t, "-i", "lo", "--workers", "1", "--ports", fmt.Sprintf("smtp=%d", srv.port), "-w", w, "--rotate-bytes", "20000")
	const n = 60
	sendMails(t, srv.port, n, 4, "rot")
	recs, summary := run.stop(t)
	drops := kernelDrops(t, summary)
	checkMails(t, recs, "rot", n, drops)
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) < 3 {
		t.Fatalf("--rotate-bytes 20000 wrote %d files: %v", len(files), files)
	}
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if pk := countPackets(t, f); st.Size() > 20000 && pk > 1 {
			t.Errorf("%s: %d bytes in %d packets, over --rotate-bytes 20000", f, st.Size(), pk)
		}
	}
	back := decodeFile(t, dir, "--ports", fmt.Sprintf("smtp=%d", srv.port))
	checkMails(t, back, "rot", n, drops)
	t.Logf("%d files", len(files))

	for _, args := range [][]string{
		{"-i", "lo", "--rotate-bytes", "1000"},
		{"-i", "lo", "-w", w, "--rotate-files", "3"},
		{"-i", "lo", "-w", w, "--rotate-seconds", "-1"},
	} {
		fs, sf, _ := sniffFlagSet()
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if _, err := sf.rotate.rotation(sf.write); err == nil {
			t.Errorf("%v: no usage error", args)
		}
	}
}

func countPackets(t *testing.T, path string) int {
	t.Helper()
	src, err := capture.OpenPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	n := 0
	for {
		if _, _, _, err := src.ReadPacket(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("%s: %v", path, err)
			}
			return n
		}
		n++
	}
}
