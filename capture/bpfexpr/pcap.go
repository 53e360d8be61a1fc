//go:build pcap && cgo

package bpfexpr

import (
	"fmt"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcap"
	"golang.org/x/net/bpf"
)

// Available reports whether this build can compile expressions.
const Available = true

func compile(expr string, link layers.LinkType, snaplen int) ([]bpf.Instruction, error) {
	ins, err := pcap.CompileBPFFilter(link, snaplen, expr)
	if err != nil {
		return nil, fmt.Errorf("--bpf %q: %w", expr, err)
	}
	prog := make([]bpf.Instruction, len(ins))
	for i, in := range ins {
		prog[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}.Disassemble()
	}
	return prog, nil
}
