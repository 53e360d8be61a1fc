package main

import (
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/mailtap/mailtap/capture/synth"
)

// TestSessionState checks session state against docs/schema.md: a
// connection still open when the capture ends is `timeout` (close_reason
// `eof`), a one-sided capture is not `complete`, an orderly one is.
func TestSessionState(t *testing.T) {
	c := synth.NewCapture(synth.LinkEthernet)
	srv := netip.MustParseAddrPort("198.51.100.25:25")
	cli := func(p uint16) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr("192.0.2.9"), p) }
	c.Conn(cli(40001), srv, synth.Options{}).
		Server("220 mx\r\n").Client("EHLO a\r\n").Server("250 mx\r\n").Client("QUIT\r\n").Server("221 bye\r\n").Close(synth.ServerSide)
	c.Conn(cli(40002), srv, synth.Options{}).
		Server("220 mx\r\n").Client("EHLO b\r\n").Server("250 mx\r\n") // still open at the end
	c.Conn(cli(40003), srv, synth.Options{Only: synth.ClientSide}).
		Server("220 mx\r\n").Client("EHLO c\r\n").Server("250 mx\r\n").Client("QUIT\r\n").Server("221 bye\r\n").Close(synth.ClientSide)
	path := filepath.Join(t.TempDir(), "state.pcap")
	if err := c.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{
		"192.0.2.9:40001": {"complete", "fin"},
		"192.0.2.9:40002": {"timeout", "eof"},
		"192.0.2.9:40003": {"partial", "fin"},
	}
	sessions := ofType(decodeFile(t, path), "session")
	if len(sessions) != len(want) {
		t.Fatalf("%d sessions, want %d", len(sessions), len(want))
	}
	for _, s := range sessions {
		w := want[s.str("client")]
		if got := [2]string{s.str("state"), s.str("close_reason")}; got != w {
			t.Errorf("%s: state/close_reason %v, want %v", s.str("client"), got, w)
		}
	}
}

// TestSessionStateOneSidedCorpus: Zeek's client-side-only capture is not
// `complete`.
func TestSessionStateOneSidedCorpus(t *testing.T) {
	path := filepath.Join(corpusDir(t), "zeek", "smtp-one-side-only", "smtp-one-side-only.pcap")
	for _, s := range ofType(decodeFile(t, path), "session") {
		if s.num("bytes_server") == 0 && s.str("state") != "partial" {
			t.Errorf("one-sided session %v: state %q, want partial", s["session"], s.str("state"))
		}
	}
}
