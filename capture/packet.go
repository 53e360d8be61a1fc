package capture

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/ip4defrag"
	"github.com/google/gopacket/layers"
)

// Link types not named in gopacket v1.1.19, whose LinkType is a uint8:
// pcapgo truncates the 32-bit link type field, so LINKTYPE_LINUX_SLL2 (276)
// arrives as 276&0xff = 20, which no other link type uses.
const (
	linkTypeLinuxSLL2 layers.LinkType = 276 & 0xff
	linkTypeRawAlt    layers.LinkType = 14 // LINKTYPE_RAW on some BSD/OpenBSD headers
)

// segment is one parsed TCP packet.
type segment struct {
	src, dst netip.AddrPort
	tcp      *layers.TCP
	ts       time.Time
	badSum   bool
	frame    uint64 // 1-based packet number in the source
	off      int64  // where tcp.Payload lies in the capture file, or -1
}

// payloadOffset is where p, a part of a packet's bytes data, lies in the
// capture file, given where data lies (base), or -1: when base is, or
// when p is not a part of data (a datagram reassembled from fragments).
func payloadOffset(data, p []byte, base int64) int64 {
	if base < 0 || len(p) == 0 {
		return -1
	}
	k := cap(data) - cap(p)
	if k < 0 || k+len(p) > len(data) || &data[k] != &p[0] {
		return -1
	}
	return base + int64(k)
}

// parser decodes link, IP and TCP layers without allocating per packet
// (gopacket's DecodingLayerParser), one parser per starting layer.
type parser struct {
	eth    layers.Ethernet
	dot1q  layers.Dot1Q
	sll    layers.LinuxSLL
	lo     layers.Loopback
	ip4    layers.IPv4
	ip6    layers.IPv6
	ext6   layers.IPv6ExtensionSkipper // hop-by-hop, routing, destination options
	tcp    layers.TCP
	pay    gopacket.Payload
	byLink map[gopacket.LayerType]*gopacket.DecodingLayerParser
	types  []gopacket.LayerType
	defrag *ip4defrag.IPv4Defragmenter
	// fragTCP decodes TCP out of a reassembled IPv4 datagram.
	fragTCP layers.TCP

	stats *counters
	// sums: compute TCP checksums (they cost a pass over every payload).
	sums bool
}

func newParser(st *counters, sums bool) *parser {
	p := &parser{byLink: map[gopacket.LayerType]*gopacket.DecodingLayerParser{}, defrag: ip4defrag.NewIPv4Defragmenter(), stats: st, sums: sums}
	p.types = make([]gopacket.LayerType, 0, 8)
	return p
}

func (p *parser) dlp(first gopacket.LayerType) *gopacket.DecodingLayerParser {
	if d := p.byLink[first]; d != nil {
		return d
	}
	d := gopacket.NewDecodingLayerParser(first)
	// An array indexed by layer type finds each layer's decoder without
	// the default container's map lookup.
	d.SetDecodingLayerContainer(gopacket.DecodingLayerSparse(nil))
	for _, l := range []gopacket.DecodingLayer{&p.eth, &p.dot1q, &p.sll, &p.lo, &p.ip4, &p.ip6, &p.ext6, &p.tcp, &p.pay} {
		d.AddDecodingLayer(l)
	}
	d.IgnoreUnsupported = true
	p.byLink[first] = d
	return d
}

// parse extracts a TCP segment. ok is false for anything that is not TCP
// over IP (counted in stats).
func (p *parser) parse(data []byte, link layers.LinkType, ts time.Time) (seg segment, ok bool) {
	var first gopacket.LayerType
	switch link {
	case layers.LinkTypeEthernet:
		first = layers.LayerTypeEthernet
	case layers.LinkTypeLinuxSLL:
		first = layers.LayerTypeLinuxSLL
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		// LOOP uses network byte order, NULL host order; gopacket's
		// Loopback layer accepts both.
		first = layers.LayerTypeLoopback
	case linkTypeLinuxSLL2:
		if len(data) < 20 {
			p.stats.Malformed.Add(1)
			return seg, false
		}
		first = etherLayer(binary.BigEndian.Uint16(data[0:2]))
		data = data[20:]
	case layers.LinkTypeRaw, linkTypeRawAlt, layers.LinkTypeIPv4, layers.LinkTypeIPv6, 12:
		if len(data) == 0 {
			p.stats.Malformed.Add(1)
			return seg, false
		}
		switch data[0] >> 4 {
		case 4:
			first = layers.LayerTypeIPv4
		case 6:
			first = layers.LayerTypeIPv6
		default:
			p.stats.NotTCP.Add(1)
			return seg, false
		}
	default:
		p.stats.UnknownLink.Add(1)
		return seg, false
	}
	if first == gopacket.LayerTypeZero {
		p.stats.NotTCP.Add(1)
		return seg, false
	}
	p.types = p.types[:0]
	err := p.dlp(first).DecodeLayers(data, &p.types)
	var haveIP4, haveIP6, haveTCP bool
	for _, t := range p.types {
		switch t {
		case layers.LayerTypeIPv4:
			haveIP4 = true
		case layers.LayerTypeIPv6:
			haveIP6 = true
		case layers.LayerTypeTCP:
			haveTCP = true
		}
	}
	if haveIP4 && (p.ip4.Flags&layers.IPv4MoreFragments != 0 || p.ip4.FragOffset != 0) {
		return p.fragment(ts)
	}
	if !haveTCP {
		if err != nil && (haveIP4 || haveIP6) && (haveIP4 && p.ip4.Protocol == layers.IPProtocolTCP || haveIP6 && p.ip6.NextHeader == layers.IPProtocolTCP) {
			p.stats.Malformed.Add(1)
		} else {
			p.stats.NotTCP.Add(1)
		}
		return seg, false
	}
	seg.tcp = &p.tcp
	seg.ts = ts
	if haveIP4 {
		src, _ := netip.AddrFromSlice(p.ip4.SrcIP.To4())
		dst, _ := netip.AddrFromSlice(p.ip4.DstIP.To4())
		seg.src = netip.AddrPortFrom(src, uint16(p.tcp.SrcPort))
		seg.dst = netip.AddrPortFrom(dst, uint16(p.tcp.DstPort))
		seg.badSum = p.sums && !tcpChecksumOK(p.ip4.SrcIP.To4(), p.ip4.DstIP.To4(), tcpBytes(&p.tcp))
	} else {
		src, _ := netip.AddrFromSlice(p.ip6.SrcIP.To16())
		dst, _ := netip.AddrFromSlice(p.ip6.DstIP.To16())
		seg.src = netip.AddrPortFrom(src, uint16(p.tcp.SrcPort))
		seg.dst = netip.AddrPortFrom(dst, uint16(p.tcp.DstPort))
		seg.badSum = p.sums && !tcpChecksumOK(p.ip6.SrcIP.To16(), p.ip6.DstIP.To16(), tcpBytes(&p.tcp))
	}
	return seg, true
}

func (p *parser) fragment(ts time.Time) (seg segment, ok bool) {
	p.stats.Fragments.Add(1)
	ip := p.ip4 // copy: the defragmenter keeps fragments
	ip.Payload = append([]byte(nil), p.ip4.Payload...)
	ip.Contents = append([]byte(nil), p.ip4.Contents...)
	whole, err := p.defrag.DefragIPv4WithTimestamp(&ip, ts)
	if err != nil {
		p.stats.Malformed.Add(1)
		return seg, false
	}
	if whole == nil {
		return seg, false // waiting for more fragments
	}
	if whole.Protocol != layers.IPProtocolTCP {
		p.stats.NotTCP.Add(1)
		return seg, false
	}
	if err := p.fragTCP.DecodeFromBytes(whole.Payload, gopacket.NilDecodeFeedback); err != nil {
		p.stats.Malformed.Add(1)
		return seg, false
	}
	src, _ := netip.AddrFromSlice(whole.SrcIP.To4())
	dst, _ := netip.AddrFromSlice(whole.DstIP.To4())
	seg.src = netip.AddrPortFrom(src, uint16(p.fragTCP.SrcPort))
	seg.dst = netip.AddrPortFrom(dst, uint16(p.fragTCP.DstPort))
	seg.tcp = &p.fragTCP
	seg.ts = ts
	seg.badSum = p.sums && !tcpChecksumOK(whole.SrcIP.To4(), whole.DstIP.To4(), whole.Payload)
	return seg, true
}

func etherLayer(et uint16) gopacket.LayerType {
	switch layers.EthernetType(et) {
	case layers.EthernetTypeIPv4:
		return layers.LayerTypeIPv4
	case layers.EthernetTypeIPv6:
		return layers.LayerTypeIPv6
	case layers.EthernetTypeDot1Q, layers.EthernetTypeQinQ:
		return layers.LayerTypeDot1Q
	}
	return gopacket.LayerTypeZero
}

// tcpBytes returns the TCP header and payload as one slice (they are
// contiguous in the packet).
func tcpBytes(t *layers.TCP) []byte {
	return t.Contents[:len(t.Contents)+len(t.Payload)]
}

// tcpChecksumOK verifies the TCP checksum over the pseudo-header.
func tcpChecksumOK(src, dst, seg []byte) bool {
	if len(seg) < 20 {
		return false
	}
	var sum uint32
	add := func(b []byte) {
		for len(b) >= 2 {
			sum += uint32(b[0])<<8 | uint32(b[1])
			b = b[2:]
		}
		if len(b) == 1 {
			sum += uint32(b[0]) << 8
		}
	}
	add(src)
	add(dst)
	sum += uint32(layers.IPProtocolTCP)
	n := len(seg)
	if len(src) == 16 {
		sum += uint32(n>>16) + uint32(n&0xffff)
	} else {
		sum += uint32(n)
	}
	add(seg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum) == 0xffff
}
