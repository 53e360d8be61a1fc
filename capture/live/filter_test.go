package live

import (
	"errors"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/net/bpf"
)

// pkt describes one crafted packet.
type pkt struct {
	name     string
	v6       bool
	proto    layers.IPProtocol
	src, dst uint16
	vlan     bool
	ipOpts   bool   // IPv4 header with options (IHL 6)
	fragOff  uint16 // IPv4 fragment offset (8-byte units)
	notIP    bool   // an ARP packet
}

// network serialises p from its IP header on.
func (p pkt) network(t *testing.T) (gopacket.SerializableLayer, []gopacket.SerializableLayer) {
	t.Helper()
	var l3 gopacket.NetworkLayer
	payload := gopacket.Payload([]byte("EHLO x\r\n"))
	if p.v6 {
		l3 = &layers.IPv6{Version: 6, NextHeader: p.proto, HopLimit: 64,
			SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2")}
	} else {
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: p.proto, FragOffset: p.fragOff,
			SrcIP: net.IPv4(192, 0, 2, 1), DstIP: net.IPv4(192, 0, 2, 2)}
		if p.ipOpts {
			ip.Options = []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}
		}
		l3 = ip
	}
	var l4 gopacket.SerializableLayer
	switch p.proto {
	case layers.IPProtocolTCP:
		tcp := &layers.TCP{SrcPort: layers.TCPPort(p.src), DstPort: layers.TCPPort(p.dst), Seq: 1, ACK: true, PSH: true, Window: 512}
		tcp.SetNetworkLayerForChecksum(l3)
		l4 = tcp
	case layers.IPProtocolUDP:
		udp := &layers.UDP{SrcPort: layers.UDPPort(p.src), DstPort: layers.UDPPort(p.dst)}
		udp.SetNetworkLayerForChecksum(l3)
		l4 = udp
	default:
		t.Fatalf("%s: protocol %v", p.name, p.proto)
	}
	return l3.(gopacket.SerializableLayer), []gopacket.SerializableLayer{l4, payload}
}

func (p pkt) bytes(t *testing.T, f Framing) []byte {
	t.Helper()
	ethType := layers.EthernetTypeIPv4
	if p.v6 {
		ethType = layers.EthernetTypeIPv6
	}
	var ls []gopacket.SerializableLayer
	if p.notIP {
		ethType = layers.EthernetTypeARP
		ls = []gopacket.SerializableLayer{&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
			HwAddressSize: 6, ProtAddressSize: 4, Operation: 1,
			SourceHwAddress: make([]byte, 6), SourceProtAddress: []byte{192, 0, 2, 1},
			DstHwAddress: make([]byte, 6), DstProtAddress: []byte{192, 0, 2, 25}}}
	} else {
		l3, rest := p.network(t)
		ls = append([]gopacket.SerializableLayer{l3}, rest...)
	}
	switch f {
	case FramingEthernet:
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: ethType}
		if p.vlan {
			eth.EthernetType = layers.EthernetTypeDot1Q
			ls = append([]gopacket.SerializableLayer{&layers.Dot1Q{VLANIdentifier: 42, Type: ethType}}, ls...)
		}
		ls = append([]gopacket.SerializableLayer{eth}, ls...)
	case FramingSLL:
		// gopacket v1.1.19 cannot serialise LinuxSLL: write it by hand.
		ls = append([]gopacket.SerializableLayer{sllHeader(ethType)}, ls...)
	case FramingIP:
		if p.notIP {
			ls = ls[:0]
			ls = append(ls, gopacket.Payload([]byte{0x00, 0x01, 0x08, 0x00, 6, 4, 0, 1}))
		}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatalf("%s: serialise: %v", p.name, err)
	}
	return buf.Bytes()
}

func sllHeader(proto layers.EthernetType) gopacket.Payload {
	h := []byte{0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, byte(proto >> 8), byte(proto)}
	return gopacket.Payload(h)
}

func TestPortFilter(t *testing.T) {
	ports := []uint16{587, 25, 143, 25}
	cases := []struct {
		p    pkt
		want bool
	}{
		{pkt{name: "v4 to 25", proto: layers.IPProtocolTCP, src: 40000, dst: 25}, true},
		{pkt{name: "v4 from 143", proto: layers.IPProtocolTCP, src: 143, dst: 40000}, true},
		{pkt{name: "v4 to 587", proto: layers.IPProtocolTCP, src: 40000, dst: 587}, true},
		{pkt{name: "v4 other port", proto: layers.IPProtocolTCP, src: 40000, dst: 80}, false},
		{pkt{name: "v4 udp 25", proto: layers.IPProtocolUDP, src: 40000, dst: 25}, false},
		{pkt{name: "v4 options to 25", proto: layers.IPProtocolTCP, src: 40000, dst: 25, ipOpts: true}, true},
		{pkt{name: "v4 options other", proto: layers.IPProtocolTCP, src: 25000, dst: 8025, ipOpts: true}, false},
		{pkt{name: "v4 later fragment", proto: layers.IPProtocolTCP, src: 1, dst: 2, fragOff: 185}, true},
		{pkt{name: "v4 vlan to 25", proto: layers.IPProtocolTCP, src: 40000, dst: 25, vlan: true}, true},
		{pkt{name: "v4 vlan other", proto: layers.IPProtocolTCP, src: 40000, dst: 443, vlan: true}, false},
		{pkt{name: "v6 to 143", v6: true, proto: layers.IPProtocolTCP, src: 50000, dst: 143}, true},
		{pkt{name: "v6 from 25", v6: true, proto: layers.IPProtocolTCP, src: 25, dst: 50000}, true},
		{pkt{name: "v6 other", v6: true, proto: layers.IPProtocolTCP, src: 50000, dst: 993}, false},
		{pkt{name: "v6 udp 25", v6: true, proto: layers.IPProtocolUDP, src: 50000, dst: 25}, false},
		{pkt{name: "arp", notIP: true}, false},
	}
	const snap = 4096
	for _, f := range []Framing{FramingEthernet, FramingSLL, FramingIP} {
		prog, err := PortFilter(f, ports, snap)
		if err != nil {
			t.Fatalf("%v: %v", f, err)
		}
		if _, err := bpf.Assemble(prog); err != nil {
			t.Fatalf("%v: assemble: %v", f, err)
		}
		vm, err := bpf.NewVM(prog)
		if err != nil {
			t.Fatalf("%v: vm: %v", f, err)
		}
		for _, c := range cases {
			if c.p.vlan && f != FramingEthernet {
				continue
			}
			data := c.p.bytes(t, f)
			n, err := vm.Run(data)
			if err != nil {
				t.Fatalf("%v %s: run: %v", f, c.p.name, err)
			}
			if got := n > 0; got != c.want {
				t.Errorf("%v %s: accepted=%v (ret %d), want %v", f, c.p.name, got, n, c.want)
			}
			if c.want && n != snap {
				t.Errorf("%v %s: returns %d, want snaplen %d", f, c.p.name, n, snap)
			}
			// A packet cut short inside the headers is dropped, not an error.
			if n, err := vm.Run(data[:len(data)*2/5]); err != nil || n != 0 && c.p.fragOff == 0 {
				t.Errorf("%v %s truncated: ret %d err %v, want 0", f, c.p.name, n, err)
			}
		}
	}
}

func TestPortFilterAllTCP(t *testing.T) {
	prog, err := PortFilter(FramingEthernet, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p    pkt
		want bool
	}{
		{pkt{name: "tcp 80", proto: layers.IPProtocolTCP, src: 1234, dst: 80}, true},
		{pkt{name: "tcp6 443", v6: true, proto: layers.IPProtocolTCP, src: 1234, dst: 443}, true},
		{pkt{name: "udp 53", proto: layers.IPProtocolUDP, src: 1234, dst: 53}, false},
		{pkt{name: "arp", notIP: true}, false},
	} {
		n, err := vm.Run(c.p.bytes(t, FramingEthernet))
		if err != nil {
			t.Fatal(err)
		}
		if (n > 0) != c.want {
			t.Errorf("%s: ret %d, want accepted=%v", c.p.name, n, c.want)
		}
		if c.want && n != 262144 {
			t.Errorf("%s: ret %d, want the default snaplen", c.p.name, n)
		}
	}
}

func TestPortFilterLimits(t *testing.T) {
	many := make([]uint16, 0, MaxFilterPorts)
	for i := range MaxFilterPorts {
		many = append(many, uint16(1000+i))
	}
	for _, f := range []Framing{FramingEthernet, FramingSLL, FramingIP} {
		prog, err := PortFilter(f, many, 0)
		if err != nil {
			t.Fatalf("%v with %d ports: %v", f, len(many), err)
		}
		vm, _ := bpf.NewVM(prog)
		last := pkt{name: "last port", proto: layers.IPProtocolTCP, src: 60000, dst: uint16(1000 + MaxFilterPorts - 1)}
		if n, _ := vm.Run(last.bytes(t, f)); n == 0 {
			t.Errorf("%v: the last of %d ports is not matched", f, len(many))
		}
	}
	_, err := PortFilter(FramingEthernet, append(many, 9), 0)
	if !errors.Is(err, ErrTooManyPorts) {
		t.Errorf("%d ports: err %v, want ErrTooManyPorts", len(many)+1, err)
	}
	if got := uniquePorts([]uint16{25, 0, 110, 25, 110, 3}); len(got) != 3 || got[0] != 3 || got[1] != 25 || got[2] != 110 {
		t.Errorf("uniquePorts = %v", got)
	}
}
