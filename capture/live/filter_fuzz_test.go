package live

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"
)

// refPortFilter is PortFilter written as plain Go, reading the packet in
// the same order as the program, so that a load past the end drops the
// packet at the same point the kernel would.
func refPortFilter(f Framing, ports map[uint16]bool, p []byte) bool {
	u8 := func(off int) (int, bool) {
		if off < 0 || off >= len(p) {
			return 0, false
		}
		return int(p[off]), true
	}
	u16 := func(off int) (int, bool) {
		if off < 0 || off+2 > len(p) {
			return 0, false
		}
		return int(binary.BigEndian.Uint16(p[off:])), true
	}
	var base, ethType int
	var ok bool
	switch f {
	case FramingEthernet:
		if ethType, ok = u16(12); !ok {
			return false
		}
		base = 14
		if ethType == 0x8100 {
			if ethType, ok = u16(16); !ok {
				return false
			}
			base = 18
		}
	case FramingSLL:
		if ethType, ok = u16(14); !ok {
			return false
		}
		base = 16
	case FramingIP:
		v, ok := u8(0)
		if !ok {
			return false
		}
		switch v & 0xf0 {
		case 0x40:
			ethType = 0x0800
		case 0x60:
			ethType = 0x86dd
		default:
			return false
		}
	}
	port := func(off int) (match, ok bool) {
		v, ok := u16(off)
		return ok && ports[uint16(v)], ok
	}
	switch ethType {
	case 0x0800:
		if proto, ok := u8(base + 9); !ok || proto != 6 {
			return false
		}
		if len(ports) == 0 {
			return true
		}
		frag, ok := u16(base + 6)
		if !ok {
			return false
		}
		if frag&0x1fff != 0 {
			return true
		}
		ihl, ok := u8(base)
		if !ok {
			return false
		}
		x := 4 * (ihl & 0xf)
		if m, ok := port(base + x); !ok || m {
			return m
		}
		m, _ := port(base + x + 2)
		return m
	case 0x86dd:
		if nh, ok := u8(base + 6); !ok || nh != 6 {
			return false
		}
		if len(ports) == 0 {
			return true
		}
		if m, ok := port(base + 40); !ok || m {
			return m
		}
		m, _ := port(base + 42)
		return m
	}
	return false
}

// FuzzPortFilter runs the assembled programs in x/net/bpf's VM on any
// bytes and checks them against refPortFilter.
func FuzzPortFilter(f *testing.F) {
	ports := []uint16{25, 110, 143, 587}
	set := map[uint16]bool{}
	for _, p := range ports {
		set[p] = true
	}
	progs := map[Framing][2]*bpf.VM{}
	for _, fr := range []Framing{FramingEthernet, FramingSLL, FramingIP} {
		withPorts, err := PortFilter(fr, ports, 1500)
		if err != nil {
			f.Fatal(err)
		}
		tcpOnly, err := PortFilter(fr, nil, 1500)
		if err != nil {
			f.Fatal(err)
		}
		a, err1 := bpf.NewVM(withPorts)
		b, err2 := bpf.NewVM(tcpOnly)
		if err1 != nil || err2 != nil {
			f.Fatal(err1, err2)
		}
		progs[fr] = [2]*bpf.VM{a, b}
	}
	// Seeds: an Ethernet/IPv4/TCP segment to port 25, the same behind a
	// VLAN tag, an IPv6 one, raw IPv4 with options.
	eth4 := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00,
		0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
		0x9c, 0x40, 0, 25, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 2, 0, 0, 0, 0, 0}
	vlan := append(append(append([]byte{}, eth4[:12]...), 0x81, 0x00, 0, 42), eth4[12:]...)
	ip6 := append([]byte{0x60, 0, 0, 0, 0, 20, 6, 64}, make([]byte, 32)...)
	ip6 = append(ip6, 0x9c, 0x40, 0, 143, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 2, 0, 0, 0, 0, 0)
	opts := append([]byte{0x46, 0, 0, 44, 0, 1, 0, 0, 64, 6, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2, 1, 1, 1, 0}, eth4[34:]...)
	f.Add(byte(0), eth4)
	f.Add(byte(0), vlan)
	f.Add(byte(2), ip6)
	f.Add(byte(2), opts)
	f.Add(byte(1), append([]byte{0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00}, eth4[14:]...))
	f.Fuzz(func(t *testing.T, which byte, pkt []byte) {
		fr := Framing(which % 3)
		for i, vm := range progs[fr] {
			want := set
			if i == 1 {
				want = nil
			}
			n, err := vm.Run(pkt)
			if err != nil {
				t.Fatalf("%v: vm: %v", fr, err)
			}
			if got, exp := n > 0, refPortFilter(fr, want, pkt); got != exp {
				t.Fatalf("%v ports=%v: program says %v, reference %v for % x", fr, len(want) > 0, got, exp, pkt)
			}
			if n != 0 && n != 1500 {
				t.Fatalf("%v: returned %d", fr, n)
			}
		}
	})
}
