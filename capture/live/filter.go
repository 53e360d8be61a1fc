package live

import (
	"errors"
	"fmt"
	"sort"

	"golang.org/x/net/bpf"
)

// Framing is the layout a filter program expects at offset 0 of a packet.
type Framing uint8

const (
	// FramingEthernet: an Ethernet header, optionally one 802.1Q tag (the
	// kernel usually strips VLAN tags before a packet socket sees them, but
	// not always).
	FramingEthernet Framing = iota
	// FramingSLL: a Linux cooked (SLL v1) header of 16 bytes, protocol at
	// offset 14, as in a "tcpdump -i any" capture file.
	FramingSLL
	// FramingIP: the packet starts at its IPv4 or IPv6 header. This is what
	// the kernel hands a SOCK_DGRAM packet socket's filter, which is how
	// "any" and interfaces without an Ethernet header are captured.
	FramingIP
)

func (f Framing) String() string {
	switch f {
	case FramingEthernet:
		return "ethernet"
	case FramingSLL:
		return "sll"
	case FramingIP:
		return "ip"
	}
	return fmt.Sprintf("framing(%d)", uint8(f))
}

// maxInstructions is the kernel's BPF_MAXINSNS.
const maxInstructions = 4096

// MaxFilterPorts is the most ports PortFilter accepts: a classic BPF
// conditional jump reaches at most 255 instructions ahead.
const MaxFilterPorts = 50

// ErrTooManyPorts is returned by PortFilter past MaxFilterPorts.
var ErrTooManyPorts = errors.New("too many ports for the kernel filter")

// PortFilter assembles the classic BPF program for
//
//	tcp and (port P1 or port P2 ...)
//
// over IPv4 and IPv6 for the given framing, returning snaplen bytes of
// every packet it accepts (the kernel truncates to the filter's return
// value). With no ports it accepts every TCP packet ("tcp").
//
// Two choices differ from what libpcap compiles: IPv4 fragments other than
// the first are accepted when they carry TCP (they have no ports to test,
// and capture reassembles them), and IPv6 extension headers are not
// walked (a TCP segment behind one is dropped, as libpcap's "tcp" does).
func PortFilter(f Framing, ports []uint16, snaplen uint32) ([]bpf.Instruction, error) {
	ps := uniquePorts(ports)
	if len(ps) > MaxFilterPorts {
		return nil, fmt.Errorf("%w: %d (at most %d)", ErrTooManyPorts, len(ps), MaxFilterPorts)
	}
	if snaplen == 0 {
		snaplen = 262144
	}
	a := &asm{}
	switch f {
	case FramingEthernet:
		a.emit(bpf.LoadAbsolute{Off: 12, Size: 2})
		a.jeq(0x8100, "vlan", "")
		a.l3(14, ps, snaplen, "e")
		a.label("vlan")
		a.emit(bpf.LoadAbsolute{Off: 16, Size: 2})
		a.l3(18, ps, snaplen, "v")
	case FramingSLL:
		a.emit(bpf.LoadAbsolute{Off: 14, Size: 2})
		a.l3(16, ps, snaplen, "s")
	case FramingIP:
		// No link header: take the family from the version nibble and
		// leave the ethertype in A the way l3 expects it.
		a.emit(bpf.LoadAbsolute{Off: 0, Size: 1})
		a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf0})
		a.jeq(0x40, "r4", "")
		a.jeq(0x60, "r6", "")
		a.emit(bpf.RetConstant{Val: 0})
		a.label("r4")
		a.emit(bpf.LoadConstant{Dst: bpf.RegA, Val: 0x0800})
		a.jump("r")
		a.label("r6")
		a.emit(bpf.LoadConstant{Dst: bpf.RegA, Val: 0x86dd})
		a.label("r")
		a.l3(0, ps, snaplen, "r")
	default:
		return nil, fmt.Errorf("unknown framing %v", f)
	}
	return a.resolve()
}

// uniquePorts sorts ports and drops duplicates and zero.
func uniquePorts(ports []uint16) []uint16 {
	out := make([]uint16, 0, len(ports))
	for _, p := range ports {
		if p != 0 {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	n := 0
	for i, p := range out {
		if i == 0 || p != out[n-1] {
			out[n] = p
			n++
		}
	}
	return out[:n]
}

// l3 emits the test for an IPv4 or IPv6 TCP segment whose network header
// starts at base, with the ethertype in A. Each block ends in its own
// accept and drop, so jumps stay short whatever comes after it.
func (a *asm) l3(base uint32, ports []uint16, snaplen uint32, p string) {
	acc, drop, ip6 := p+"acc", p+"drop", p+"ip6"
	a.jeq(0x0800, "", ip6)
	// IPv4: protocol TCP.
	a.emit(bpf.LoadAbsolute{Off: base + 9, Size: 1})
	a.jeq(6, "", drop)
	if len(ports) == 0 {
		a.jump(acc)
	} else {
		// A fragment other than the first has no TCP header: keep it.
		a.emit(bpf.LoadAbsolute{Off: base + 6, Size: 2})
		a.jset(0x1fff, acc, "")
		// X = IP header length.
		a.emit(bpf.LoadMemShift{Off: base})
		a.emit(bpf.LoadIndirect{Off: base, Size: 2})
		a.anyPort(ports, acc)
		a.emit(bpf.LoadIndirect{Off: base + 2, Size: 2})
		a.anyPort(ports, acc)
		a.jump(drop)
	}
	a.label(ip6)
	a.jeq(0x86dd, "", drop)
	a.emit(bpf.LoadAbsolute{Off: base + 6, Size: 1})
	a.jeq(6, "", drop)
	if len(ports) > 0 {
		a.emit(bpf.LoadAbsolute{Off: base + 40, Size: 2})
		a.anyPort(ports, acc)
		a.emit(bpf.LoadAbsolute{Off: base + 42, Size: 2})
		a.anyPort(ports, acc)
		a.jump(drop)
	}
	a.label(acc)
	a.emit(bpf.RetConstant{Val: snaplen})
	a.label(drop)
	a.emit(bpf.RetConstant{Val: 0})
}

func (a *asm) anyPort(ports []uint16, acc string) {
	for _, port := range ports {
		a.jeq(uint32(port), acc, "")
	}
}

// asm is a tiny assembler with labels for forward jumps. An empty label
// means "the next instruction".
type asm struct {
	prog   []bpf.Instruction
	fixups []fixup
	labels map[string]int
	err    error
}

type fixup struct {
	at          int
	true, false string
	always      bool
}

func (a *asm) emit(in bpf.Instruction) { a.prog = append(a.prog, in) }

func (a *asm) label(name string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	if _, dup := a.labels[name]; dup && a.err == nil {
		a.err = fmt.Errorf("bpf: label %q defined twice", name)
	}
	a.labels[name] = len(a.prog)
}

func (a *asm) jeq(val uint32, t, f string) {
	a.fixups = append(a.fixups, fixup{at: len(a.prog), true: t, false: f})
	a.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: val})
}

func (a *asm) jset(mask uint32, t, f string) {
	a.fixups = append(a.fixups, fixup{at: len(a.prog), true: t, false: f})
	a.emit(bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: mask})
}

func (a *asm) jump(to string) {
	a.fixups = append(a.fixups, fixup{at: len(a.prog), true: to, always: true})
	a.emit(bpf.Jump{})
}

func (a *asm) target(from int, name string) (uint32, error) {
	if name == "" {
		return 0, nil
	}
	to, ok := a.labels[name]
	if !ok {
		return 0, fmt.Errorf("bpf: undefined label %q", name)
	}
	if to <= from {
		return 0, fmt.Errorf("bpf: backward jump to %q", name)
	}
	return uint32(to - from - 1), nil
}

func (a *asm) resolve() ([]bpf.Instruction, error) {
	if a.err != nil {
		return nil, a.err
	}
	for _, fx := range a.fixups {
		t, err := a.target(fx.at, fx.true)
		if err != nil {
			return nil, err
		}
		if fx.always {
			a.prog[fx.at] = bpf.Jump{Skip: t}
			continue
		}
		f, err := a.target(fx.at, fx.false)
		if err != nil {
			return nil, err
		}
		if t > 255 || f > 255 {
			return nil, fmt.Errorf("%w: a jump spans %d instructions", ErrTooManyPorts, max(t, f))
		}
		in := a.prog[fx.at].(bpf.JumpIf)
		in.SkipTrue, in.SkipFalse = uint8(t), uint8(f)
		a.prog[fx.at] = in
	}
	if len(a.prog) > maxInstructions {
		return nil, fmt.Errorf("bpf: program of %d instructions is too long", len(a.prog))
	}
	return a.prog, nil
}
