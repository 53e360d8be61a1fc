package replay

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mailtap/mailtap/decode"
)

// TestLoadKeepsStreamAnomalies: the sessions replay loads carry what
// capture found in the TCP stream, as `mailtap read` shows it (the
// recorder sits between capture and the decoder and must pass it on).
func TestLoadKeepsStreamAnomalies(t *testing.T) {
	path := filepath.Join("..", "..", "shared", "corpus", "suricata-verify", "smtp-bug-5981", "input.pcap")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("corpus capture not available: %v", err)
	}
	_, ss, err := LoadFile(path, LoadConfig{Sniff: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 || ss[0].Record == nil {
		t.Fatalf("%d sessions, want 1 with its record", len(ss))
	}
	if !slices.Contains(ss[0].Record.Anomalies, string(decode.AnomalyOverlapInconsistent)) {
		t.Errorf("anomalies %v, want %s", ss[0].Record.Anomalies, decode.AnomalyOverlapInconsistent)
	}
}
