package main

import (
	"bufio"
	"fmt"
	"io"
	"os"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
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
	f, err := os.Open(path)
	if err != nil {
		return c, err
	}
	defer f.Close()
	r, err := pcapgo.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return c, fmt.Errorf("%s: %w (the floor reads pcap files only)", path, err)
	}
	var (
		eth  layers.Ethernet
		ip4  layers.IPv4
		ip6  layers.IPv6
		tcp  layers.TCP
		pay  gopacket.Payload
		seen []gopacket.LayerType
	)
	first := layers.LayerTypeEthernet
	if r.LinkType() != layers.LinkTypeEthernet {
		return c, fmt.Errorf("%s: link type %v (the floor reads Ethernet only)", path, r.LinkType())
	}
	p := gopacket.NewDecodingLayerParser(first, &eth, &ip4, &ip6, &tcp, &pay)
	p.IgnoreUnsupported = true
	for {
		data, _, err := r.ZeroCopyReadPacketData()
		if err == io.EOF {
			return c, nil
		}
		if err != nil {
			return c, err
		}
		c.Packets++
		p.DecodeLayers(data, &seen)
		for _, t := range seen {
			if t == layers.LayerTypeTCP {
				c.TCP++
				c.PayloadBytes += int64(len(tcp.Payload))
			}
		}
	}
}
