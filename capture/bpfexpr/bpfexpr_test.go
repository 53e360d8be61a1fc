package bpfexpr

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/mailtap/mailtap/capture/synth"
)

// packets returns the frames of two SMTP connections from different
// clients, for the link type.
func packets(t *testing.T, link synth.Link) (a, b [][]byte) {
	c := synth.NewCapture(link)
	srv := netip.MustParseAddrPort("198.51.100.25:25")
	c.Conn(netip.MustParseAddrPort("192.0.2.1:40000"), srv, synth.Options{}).Server("220 a\r\n").Client("QUIT\r\n")
	c.Conn(netip.MustParseAddrPort("192.0.2.2:40001"), srv, synth.Options{}).Server("220 b\r\n").Client("QUIT\r\n")
	ps, err := c.Packets()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.Conn == 0 {
			a = append(a, p.Data)
		} else {
			b = append(b, p.Data)
		}
	}
	return a, b
}

func TestFilter(t *testing.T) {
	f, err := NewFilter("tcp and host 192.0.2.1", 262144)
	if !Available {
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("without libpcap: %v", err)
		}
		t.Skip("built without -tags pcap: --bpf is unavailable, as the error says")
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct {
		link synth.Link
		lt   layers.LinkType
	}{{synth.LinkEthernet, layers.LinkTypeEthernet}, {synth.LinkSLL, layers.LinkTypeLinuxSLL}} {
		a, b := packets(t, l.link)
		for _, p := range a {
			if !f.Match(p, l.lt) {
				t.Errorf("%v: a packet of 192.0.2.1 did not match", l.link)
			}
		}
		for _, p := range b {
			if f.Match(p, l.lt) {
				t.Errorf("%v: a packet of 192.0.2.2 matched", l.link)
			}
		}
	}
	if _, err := NewFilter("tcp and and", 65535); err == nil {
		t.Error("a bad expression compiled")
	}
}
