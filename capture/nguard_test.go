package capture

import (
	"encoding/binary"
	"strings"
	"testing"
)

// guardBlock is a little-endian pcapng block of type typ around body.
func guardBlock(typ uint32, body []byte) []byte {
	n := uint32(12 + len(body))
	b := binary.LittleEndian.AppendUint32(nil, typ)
	b = binary.LittleEndian.AppendUint32(b, n)
	b = append(b, body...)
	return binary.LittleEndian.AppendUint32(b, n)
}

// guardOpt is an option, padded to 4 bytes.
func guardOpt(code uint16, v []byte) []byte {
	b := binary.LittleEndian.AppendUint16(nil, code)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(v)))
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// guardFile is a section with one Ethernet interface (its options opts), an
// interface statistics block with options stats (if not nil), and one
// 60-byte packet.
func guardFile(opts, stats []byte) []byte {
	shb := []byte{0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	idb := append([]byte{1, 0, 0, 0, 0, 0, 4, 0}, opts...) // link type 1, snaplen 262144
	var f []byte
	f = append(f, guardBlock(ngSHB, shb)...)
	f = append(f, guardBlock(ngIDB, idb)...)
	if stats != nil {
		f = append(f, guardBlock(ngISB, append(make([]byte, 12), stats...))...)
	}
	epb := make([]byte, 20)
	binary.LittleEndian.PutUint32(epb[12:], 60)
	binary.LittleEndian.PutUint32(epb[16:], 60)
	epb = append(epb, make([]byte, 60)...)
	return append(f, guardBlock(ngEPB, epb)...)
}

// TestNgGuardOptions: interface options pcapgo would index out of range or
// divide by zero with (a resolution byte of '0' made it divide by zero:
// FuzzEngine) are a clear error, never a panic; sound ones read as before.
func TestNgGuardOptions(t *testing.T) {
	end := guardOpt(0, nil)
	for _, c := range []struct {
		name      string
		opts, isb []byte
		err       string // "" for a clean read of the packet
	}{
		{"no options", nil, nil, ""},
		{"nanoseconds", append(guardOpt(9, []byte{9}), end...), nil, ""},
		{"2^-63", append(guardOpt(9, []byte{0x80 | 63}), end...), nil, ""},
		{"10^-19", append(guardOpt(9, []byte{19}), end...), nil, ""},
		{"10^-48", append(guardOpt(9, []byte{'0'}), end...), nil, "timestamp resolution"},
		{"10^-20", append(guardOpt(9, []byte{20}), end...), nil, "timestamp resolution"},
		{"2^-64", append(guardOpt(9, []byte{0x80 | 64}), end...), nil, "timestamp resolution"},
		{"empty resolution", append(guardOpt(9, nil), end...), nil, "empty timestamp resolution"},
		{"empty filter", append(guardOpt(11, nil), end...), nil, "empty capture filter"},
		{"short offset", append(guardOpt(14, []byte{1, 2, 3, 4}), end...), nil, "timestamp offset of 4 bytes"},
		{"offset", append(guardOpt(14, make([]byte, 8)), end...), nil, ""},
		{"statistics", nil, append(guardOpt(4, make([]byte, 8)), end...), ""},
		{"short counter", nil, append(guardOpt(4, []byte{1}), end...), "statistics option 4 of 1 bytes"},
		{"empty start time", nil, append(guardOpt(2, nil), end...), "statistics option 2 of 0 bytes"},
	} {
		n, err := readAll(t, guardFile(c.opts, c.isb))
		switch {
		case c.err == "" && (err != nil || n != 1):
			t.Errorf("%s: %d packets, error %v; want 1 packet", c.name, n, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want one about %q", c.name, err, c.err)
		}
	}
	f := guardFile(nil, nil)
	binary.LittleEndian.PutUint32(f[len(f)-(12+20+60)+8:], 1<<31) // the packet's interface
	if _, err := readAll(t, f); err == nil || !strings.Contains(err.Error(), "interface 2147483648") {
		t.Errorf("interface 2^31: error %v", err)
	}
	big := append(guardOpt(1, make([]byte, 65000)), guardOpt(1, make([]byte, 1000))...)
	if _, err := readAll(t, guardFile(big, nil)); err == nil || !strings.Contains(err.Error(), "interface block of") {
		t.Errorf("a 66 KB interface block: error %v", err)
	}
}
