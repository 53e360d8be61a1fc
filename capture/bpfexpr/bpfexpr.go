// Package bpfexpr compiles tcpdump-style filter expressions ("tcp port 25
// and host 192.0.2.1") to classic BPF with libpcap, for `mailtap read
// --bpf` (run in Go with golang.org/x/net/bpf) and `mailtap sniff --bpf`
// (attached in the kernel).
//
// libpcap needs cgo, so the compiler is only in builds with the "pcap" tag
// (`go build -tags pcap ./cmd/mailtap`, with libpcap-dev installed); the
// default pure-Go build answers ErrUnavailable, and --ports/--port-filter
// cover the common case without it.
package bpfexpr

import (
	"errors"

	"github.com/google/gopacket/layers"
	"golang.org/x/net/bpf"
)

// ErrUnavailable is returned by Compile in builds without libpcap.
var ErrUnavailable = errors.New("--bpf needs mailtap built with -tags pcap (cgo and libpcap-dev); use --ports or --port-filter instead")

// Compile compiles expr for packets of the given link type, keeping at
// most snaplen bytes of each.
func Compile(expr string, link layers.LinkType, snaplen int) ([]bpf.Instruction, error) {
	return compile(expr, link, snaplen)
}

// Filter runs a compiled expression over packets of files, one program per
// link type (a pcapng file may mix them), compiled on first use.
type Filter struct {
	expr    string
	snaplen int
	vms     map[layers.LinkType]*bpf.VM
}

// NewFilter checks that expr compiles (for Ethernet) and returns a Filter.
func NewFilter(expr string, snaplen int) (*Filter, error) {
	f := &Filter{expr: expr, snaplen: snaplen, vms: map[layers.LinkType]*bpf.VM{}}
	if _, err := f.vm(layers.LinkTypeEthernet); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *Filter) vm(link layers.LinkType) (*bpf.VM, error) {
	if vm := f.vms[link]; vm != nil {
		return vm, nil
	}
	prog, err := Compile(f.expr, link, f.snaplen)
	if err != nil {
		return nil, err
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		return nil, err
	}
	f.vms[link] = vm
	return vm, nil
}

// Match reports whether the packet passes the filter. A link type the
// expression cannot be compiled for passes nothing.
func (f *Filter) Match(data []byte, link layers.LinkType) bool {
	vm, err := f.vm(link)
	if err != nil {
		return false
	}
	n, err := vm.Run(data)
	return err == nil && n > 0
}
