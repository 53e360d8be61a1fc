package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"github.com/google/gopacket/reassembly"
)

// floorCounts is what the bare read loop found.
type floorCounts struct {
	Packets, TCP, PayloadBytes int64
}

// floor is the bare read loop: read every packet with pcapgo and decode
// Ethernet/IP/TCP with a DecodingLayerParser, touching nothing else. No
// decoder can be faster than this on the same file; it is the floor the
// others are measured against.
func floor(path string) (floorCounts, error) {
	var c floorCounts
	err := eachPacket(path, &c, nil)
	return c, err
}

// eachPacket is the bare read loop over path, counting into c; it hands
// every TCP segment, with its network flow and capture info, to tcpSeg when
// that is not nil.
func eachPacket(path string, c *floorCounts, tcpSeg func(gopacket.Flow, *layers.TCP, gopacket.CaptureInfo)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := openPackets(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return fmt.Errorf("%s: %w (the floor reads pcap and pcapng files)", path, err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		return fmt.Errorf("%s: link type %v (the floor reads Ethernet only)", path, r.LinkType())
	}
	var (
		eth  layers.Ethernet
		ip4  layers.IPv4
		ip6  layers.IPv6
		tcp  layers.TCP
		pay  gopacket.Payload
		seen []gopacket.LayerType
	)
	p := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet)
	// the fastest container gopacket has (mailtap's parser uses it too)
	p.SetDecodingLayerContainer(gopacket.DecodingLayerSparse(nil))
	for _, l := range []gopacket.DecodingLayer{&eth, &ip4, &ip6, &tcp, &pay} {
		p.AddDecodingLayer(l)
	}
	p.IgnoreUnsupported = true
	for {
		data, ci, err := r.ZeroCopyReadPacketData()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		c.Packets++
		p.DecodeLayers(data, &seen)
		var flow gopacket.Flow
		for _, t := range seen {
			switch t {
			case layers.LayerTypeIPv4:
				flow = ip4.NetworkFlow()
			case layers.LayerTypeIPv6:
				flow = ip6.NetworkFlow()
			case layers.LayerTypeTCP:
				c.TCP++
				c.PayloadBytes += int64(len(tcp.Payload))
				if tcpSeg != nil {
					tcpSeg(flow, &tcp, ci)
				}
			}
		}
	}
}

// packetReader is what the floor needs of pcapgo's Reader and NgReader.
type packetReader interface {
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	LinkType() layers.LinkType
}

// openPackets reads a pcap file, or a pcapng one with pcapgo's own reader
// (without the checks mailtap's reader makes first: it is the floor).
func openPackets(br *bufio.Reader) (packetReader, error) {
	magic, err := br.Peek(4)
	if err != nil {
		return nil, err
	}
	if binary.LittleEndian.Uint32(magic) == 0x0a0d0d0a {
		return pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
	}
	return pcapgo.NewReader(br)
}

// requiredCounts is what the required-work loop found.
type requiredCounts struct {
	floorCounts
	Streams       int64 // half-connections gopacket delivered bytes of
	Reassembled   int64 // bytes gopacket delivered in order
	HashedStreams int64 // streams whose bytes were hashed
}

// required is the floor plus the two costs no decoder that keeps the
// project's rules can avoid: gopacket's TCP reassembly (the library the
// project is built on) and SHA-256 of every reassembled byte (every
// message's digest is in the JSON contract; messages are most of the
// bytes of mail traffic, so this hashes a little more than mailtap must).
// Without hash it stops at reassembly. Both show how much of mailtap's
// time is left to the part that is its own: protocol, MIME and JSON.
func required(path string, hash bool) (requiredCounts, error) {
	var c requiredCounts
	asm := reassembly.NewAssembler(reassembly.NewStreamPool(&hashFactory{c: &c, hash: hash}))
	var ctx captureCtx
	err := eachPacket(path, &c.floorCounts, func(flow gopacket.Flow, tcp *layers.TCP, ci gopacket.CaptureInfo) {
		ctx.ci = ci
		asm.AssembleWithContext(flow, tcp, &ctx)
	})
	if err != nil {
		return c, err
	}
	asm.FlushAll()
	return c, nil
}

type captureCtx struct{ ci gopacket.CaptureInfo }

func (x *captureCtx) GetCaptureInfo() gopacket.CaptureInfo { return x.ci }

type hashFactory struct {
	c    *requiredCounts
	hash bool
}

func (h *hashFactory) New(_, _ gopacket.Flow, _ *layers.TCP, _ reassembly.AssemblerContext) reassembly.Stream {
	s := &hashStream{c: h.c}
	if h.hash {
		s.h[0], s.h[1] = sha256.New(), sha256.New()
	}
	return s
}

// hashStream takes a connection's bytes as gopacket delivers them, each
// direction into its own SHA-256.
type hashStream struct {
	c    *requiredCounts
	h    [2]hash.Hash
	used [2]bool
}

func (s *hashStream) Accept(*layers.TCP, gopacket.CaptureInfo, reassembly.TCPFlowDirection, reassembly.Sequence, *bool, reassembly.AssemblerContext) bool {
	return true
}

func (s *hashStream) ReassembledSG(sg reassembly.ScatterGather, _ reassembly.AssemblerContext) {
	n, _ := sg.Lengths()
	if n == 0 {
		return
	}
	dir, _, _, _ := sg.Info()
	i := 0
	if dir == reassembly.TCPDirServerToClient {
		i = 1
	}
	if !s.used[i] {
		s.used[i] = true
		s.c.Streams++
	}
	s.c.Reassembled += int64(n)
	if s.h[i] != nil {
		s.h[i].Write(sg.Fetch(n))
	}
}

func (s *hashStream) ReassemblyComplete(reassembly.AssemblerContext) bool {
	for i, h := range s.h {
		if h != nil && s.used[i] {
			var sum [sha256.Size]byte
			h.Sum(sum[:0])
			s.c.HashedStreams++
		}
	}
	return true
}
