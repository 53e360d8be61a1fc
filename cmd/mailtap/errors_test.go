package main

import (
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
