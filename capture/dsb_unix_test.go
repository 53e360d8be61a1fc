//go:build unix

package capture

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSecretsFromPipe: a pcapng file read through a named pipe (or a
// process substitution, /dev/fd/N) can be read only once. ScanSecrets
// leaves it alone, and the secrets come while it is read, with every
// packet.
func TestSecretsFromPipe(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Skip("mkfifo:", err)
	}
	data := ngFile(binary.LittleEndian, "first\n", "second\n")
	go func() {
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		f.Write(data)
		f.Close()
	}()
	done := make(chan string, 1)
	go func() { done <- readPipe(p) }()
	select {
	case msg := <-done:
		if msg != "" {
			t.Fatal(msg)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("reading the pipe hangs (did a scan take its bytes?)")
	}
}

// readPipe reads the capture at p as mailtap read does: the pre-scan,
// then the secrets as they come. It returns what went wrong, or "".
func readPipe(p string) string {
	src, err := OpenFile(p)
	if err != nil {
		return err.Error()
	}
	defer src.Close()
	var got []string
	take := func(typ uint32, d []byte) { got = append(got, string(d)) }
	if ok, err := ScanSecrets(p, take); ok || err != nil {
		return fmt.Sprintf("ScanSecrets on a pipe: ok %v, err %v", ok, err)
	}
	src.OnSecrets(take)
	n, err := countPackets(src)
	if err != nil {
		return err.Error()
	}
	if n != 2 || strings.Join(got, "") != "first\nsecond\n" {
		return fmt.Sprintf("%d packets, secrets %q", n, got)
	}
	return ""
}
