package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/mailtap/mailtap/capture"
)

// splitCapture writes the packets of path into parts files cut by time
// (equal packet counts, in capture order), as a rotating capture would,
// and returns their paths; the first packets' count is returned too.
func splitCapture(t *testing.T, path string, parts int, dir string) ([]string, int) {
	t.Helper()
	src, err := capture.OpenPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var datas [][]byte
	var cis []gopacket.CaptureInfo
	var link layers.LinkType
	for {
		data, ci, l, err := src.ReadPacket()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ci.CaptureLength = len(data)
		datas = append(datas, append([]byte(nil), data...))
		cis = append(cis, ci)
		link = l
	}
	if len(datas) < parts*2 {
		t.Fatalf("%s: only %d packets", path, len(datas))
	}
	var paths []string
	per := (len(datas) + parts - 1) / parts
	for p := 0; p < parts; p++ {
		name := filepath.Join(dir, fmt.Sprintf("part%d.pcap", p))
		f, err := os.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w := pcapgo.NewWriterNanos(f)
		if err := w.WriteFileHeader(262144, link); err != nil {
			t.Fatal(err)
		}
		for i := p * per; i < min((p+1)*per, len(datas)); i++ {
			if err := w.WritePacket(cis[i], datas[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, name)
	}
	return paths, per
}

// TestReadSplitFilesAsOne: a capture cut by time into three files, named
// in any order (or as their directory), reads exactly as the single file:
// the same records byte for byte, connections going on across the cuts.
func TestReadSplitFilesAsOne(t *testing.T) {
	for _, name := range []string{"real-dovecot-imaplib.pcap", "gen-smtp-multi.pcap", "real-postfix-smtplib-multi.pcap"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("..", "..", "pcaps", name)
			dir := t.TempDir()
			parts, _ := splitCapture(t, path, 3, dir)
			want, errOut, code := runCLI("read", "--level", "commands", path)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			for _, args := range [][]string{
				{parts[0], parts[1], parts[2]},
				{parts[2], parts[0], parts[1]},
				{"-r", parts[1], parts[2], parts[0]},
				{dir},
			} {
				got, errOut, code := runCLI(append([]string{"read", "--level", "commands"}, args...)...)
				if code != 0 {
					t.Fatalf("%v: exit %d: %s", args, code, errOut)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%v: output differs from the single file's:\n%s\nwant:\n%s", args, got, want)
				}
			}
			// Standard input as one of them.
			first, err := os.ReadFile(parts[0])
			if err != nil {
				t.Fatal(err)
			}
			defer func(old io.Reader) { stdin = old }(stdin)
			stdin = bytes.NewReader(first)
			if got, errOut, code := runCLI("read", "--level", "commands", parts[2], "-", parts[1]); code != 0 || !bytes.Equal(got, want) {
				t.Errorf("stdin and two files: exit %d (%s), output differs", code, errOut)
			}
			// The split really cuts connections: one part alone does not
			// hold every session whole.
			one, _, _ := runCLI("read", "--level", "commands", parts[1])
			if bytes.Equal(one, want) {
				t.Error("the middle part alone decodes like the whole capture")
			}
		})
	}
}

// TestReadCount: -c N decodes the first N packets, as a file holding just
// them does; -q writes a summary instead of records.
func TestReadCount(t *testing.T) {
	path := filepath.Join("..", "..", "pcaps", "real-dovecot-imaplib.pcap")
	dir := t.TempDir()
	parts, per := splitCapture(t, path, 3, dir)
	want, _, code := runCLI("read", parts[0])
	if code != 0 {
		t.Fatal("exit", code)
	}
	got, errOut, code := runCLI("read", "-c", fmt.Sprint(per), path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("-c %d differs from the first %d packets' file:\n%s\nwant:\n%s", per, per, got, want)
	}
	_, errOut, _ = runCLI("read", "-c", fmt.Sprint(per), "--stats", path)
	if !strings.Contains(string(errOut), fmt.Sprintf("packets %d ", per)) {
		t.Errorf("-c %d --stats: %s", per, errOut)
	}

	recs := decodeFile(t, path)
	sum, errOut, code := runCLI("read", "-q", path)
	if code != 0 {
		t.Fatalf("-q: exit %d: %s", code, errOut)
	}
	if bytes.Contains(sum, []byte("{")) {
		t.Errorf("-q wrote records: %s", sum)
	}
	wantLine := fmt.Sprintf("sessions %d (smtp 0, pop3 0, imap %d)", len(ofType(recs, "session")), len(ofType(recs, "session")))
	if !strings.Contains(string(sum), wantLine) || !strings.Contains(string(sum), fmt.Sprintf("imap messages %d", len(ofType(recs, "imap.message")))) {
		t.Errorf("-q summary:\n%s\nwant %q", sum, wantLine)
	}
	for _, args := range [][]string{{"read", "-q", "-o", filepath.Join(dir, "x"), path}, {"read", "-c", "-1", path}} {
		if _, _, code := runCLI(args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}
