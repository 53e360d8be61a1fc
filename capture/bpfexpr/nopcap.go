//go:build !pcap || !cgo

package bpfexpr

import (
	"github.com/google/gopacket/layers"
	"golang.org/x/net/bpf"
)

// Available reports whether this build can compile expressions.
const Available = false

func compile(string, layers.LinkType, int) ([]bpf.Instruction, error) {
	return nil, ErrUnavailable
}
