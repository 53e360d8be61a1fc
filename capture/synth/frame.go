package synth

import (
	"encoding/binary"
	"fmt"
	"net"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

type tcpFlags uint8

const (
	flagFIN tcpFlags = 1 << iota
	flagSYN
	flagRST
	flagPSH
	flagACK
)

const (
	synWindow  = 64240
	dataWindow = 502 // scaled by 2^7, as Linux advertises
	wscale     = 7
	ttl        = 64
)

// send emits a segment from one side acknowledging everything the peer
// sent so far.
func (c *Conn) send(from Dir, flags tcpFlags, payload []byte, seq uint32, fr *fragment) {
	c.packet(from, flags, seq, c.half(from.Peer()).next(), payload, fr)
}

// packet serialises one TCP segment into one IP packet, or several IPv4
// fragments, stamped with the current time.
func (c *Conn) packet(from Dir, flags tcpFlags, seq, ack uint32, payload []byte, fr *fragment) {
	if c.err != nil {
		return
	}
	src, dst := c.half(from), c.half(from.Peer())
	tcp := &layers.TCP{
		SrcPort: layers.TCPPort(src.addr.Port()),
		DstPort: layers.TCPPort(dst.addr.Port()),
		Seq:     seq,
		FIN:     flags&flagFIN != 0,
		SYN:     flags&flagSYN != 0,
		RST:     flags&flagRST != 0,
		PSH:     flags&flagPSH != 0,
		ACK:     flags&flagACK != 0,
		Window:  dataWindow,
	}
	if tcp.ACK {
		tcp.Ack = ack
	}
	if tcp.SYN {
		tcp.Window = synWindow
		mss := make([]byte, 2)
		binary.BigEndian.PutUint16(mss, uint16(c.opts.MSS))
		tcp.Options = []layers.TCPOption{
			// As Linux sends them with timestamps off: 12 bytes, no padding.
			{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: mss},
			{OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
			{OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{wscale}},
		}
	}
	if tcp.RST {
		tcp.Window = 0
	}
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	buf := gopacket.NewSerializeBuffer()
	var err error
	if src.addr.Addr().Is4() {
		ip := &layers.IPv4{
			Version:  4,
			IHL:      5,
			TTL:      ttl,
			Id:       src.ipid,
			Flags:    layers.IPv4DontFragment,
			Protocol: layers.IPProtocolTCP,
			SrcIP:    net.IP(src.addr.Addr().AsSlice()),
			DstIP:    net.IP(dst.addr.Addr().AsSlice()),
		}
		src.ipid++
		if err = tcp.SetNetworkLayerForChecksum(ip); err == nil {
			if fr != nil {
				c.fragments(from, ip, tcp, payload, *fr)
				return
			}
			err = gopacket.SerializeLayers(buf, opts, ip, tcp, gopacket.Payload(payload))
		}
	} else {
		ip := &layers.IPv6{
			Version:    6,
			HopLimit:   ttl,
			NextHeader: layers.IPProtocolTCP,
			SrcIP:      net.IP(src.addr.Addr().AsSlice()),
			DstIP:      net.IP(dst.addr.Addr().AsSlice()),
		}
		if err = tcp.SetNetworkLayerForChecksum(ip); err == nil {
			err = gopacket.SerializeLayers(buf, opts, ip, tcp, gopacket.Payload(payload))
		}
	}
	if err != nil {
		c.fail(fmt.Errorf("serialising a segment: %w", err))
		return
	}
	ip := clone(buf.Bytes())
	if c.opts.Offload == from {
		partialChecksum(ip)
	}
	c.raw = append(c.raw, rawPacket{t: c.now, dir: from, ip: ip})
}

// partialChecksum replaces the TCP checksum of an unfragmented IP packet
// with what the kernel leaves for the NIC to finish: the folded
// pseudo-header sum, not complemented.
func partialChecksum(ip []byte) {
	var src, dst []byte
	var tcp []byte
	if ip[0]>>4 == 4 {
		hl := int(ip[0]&0x0f) * 4
		src, dst, tcp = ip[12:16], ip[16:20], ip[hl:]
	} else {
		src, dst, tcp = ip[8:24], ip[24:40], ip[40:]
	}
	sum := uint32(layers.IPProtocolTCP) + uint32(len(tcp))
	for _, a := range [][]byte{src, dst} {
		for i := 0; i < len(a); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(a[i:]))
		}
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(tcp[16:], uint16(sum))
}

// fragments splits the serialised TCP segment over IPv4 fragments that
// share the header's ID; more-fragments is set on all but the last.
func (c *Conn) fragments(from Dir, ip *layers.IPv4, tcp *layers.TCP, payload []byte, fr fragment) {
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	seg := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(seg, opts, tcp, gopacket.Payload(payload)); err != nil {
		c.fail(fmt.Errorf("serialising a segment: %w", err))
		return
	}
	body := seg.Bytes()
	size := fr.size &^ 7
	var frags [][]byte
	for off := 0; off < len(body); off += size {
		end := min(off+size, len(body))
		f := *ip
		f.Flags = 0
		if end < len(body) {
			f.Flags = layers.IPv4MoreFragments
		}
		f.FragOffset = uint16(off / 8)
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, opts, &f, gopacket.Payload(body[off:end])); err != nil {
			c.fail(fmt.Errorf("serialising a fragment: %w", err))
			return
		}
		frags = append(frags, clone(buf.Bytes()))
	}
	if fr.reverse {
		for i, j := 0, len(frags)-1; i < j; i, j = i+1, j-1 {
			frags[i], frags[j] = frags[j], frags[i]
		}
	}
	for i, f := range frags {
		if i > 0 {
			c.tick(c.opts.Gap)
		}
		c.raw = append(c.raw, rawPacket{t: c.now, dir: from, ip: f})
	}
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// Linux ARPHRD and packet types used in cooked headers. The capture is
// taken on the server: what the client sends arrives (host), what the
// server sends leaves (outgoing).
const (
	arphrdEther       = 1
	sllPacketHost     = 0
	sllPacketOutgoing = 4
	sll2IfIndex       = 2 // a plausible eth0
	minEthernetFrame  = 60
)

// frame wraps one IP packet in the capture's link layer.
func (c *Capture) frame(cn *Conn, r rawPacket) ([]byte, error) {
	ipv4 := r.ip[0]>>4 == 4
	etype := layers.EthernetTypeIPv4
	family := uint32(2) // AF_INET
	if !ipv4 {
		etype = layers.EthernetTypeIPv6
		family = 30 // AF_INET6 on Darwin; BSD-family readers accept 24, 28 and 30
	}
	src, dst := cn.half(r.dir), cn.half(r.dir.Peer())
	pktType := byte(sllPacketHost)
	if r.dir == ServerSide {
		pktType = sllPacketOutgoing
	}
	switch c.Link {
	case LinkRaw:
		return r.ip, nil
	case LinkNull:
		h := make([]byte, 4, 4+len(r.ip))
		binary.LittleEndian.PutUint32(h, family)
		return append(h, r.ip...), nil
	case LinkSLL:
		h := make([]byte, 16, 16+len(r.ip))
		binary.BigEndian.PutUint16(h[0:], uint16(pktType))
		binary.BigEndian.PutUint16(h[2:], arphrdEther)
		binary.BigEndian.PutUint16(h[4:], uint16(len(src.mac)))
		copy(h[6:14], src.mac)
		binary.BigEndian.PutUint16(h[14:], uint16(etype))
		return append(h, r.ip...), nil
	case LinkSLL2:
		h := make([]byte, 20, 20+len(r.ip))
		binary.BigEndian.PutUint16(h[0:], uint16(etype))
		// h[2:4] reserved, zero
		binary.BigEndian.PutUint32(h[4:], sll2IfIndex)
		binary.BigEndian.PutUint16(h[8:], arphrdEther)
		h[10] = pktType
		h[11] = byte(len(src.mac))
		copy(h[12:20], src.mac)
		return append(h, r.ip...), nil
	case LinkEthernet:
		eth := &layers.Ethernet{SrcMAC: src.mac, DstMAC: dst.mac, EthernetType: etype}
		ls := []gopacket.SerializableLayer{eth}
		if cn.opts.VLAN != 0 {
			eth.EthernetType = layers.EthernetTypeDot1Q
			ls = append(ls, &layers.Dot1Q{VLANIdentifier: cn.opts.VLAN, Type: etype})
		}
		ls = append(ls, gopacket.Payload(r.ip))
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{}, ls...); err != nil {
			return nil, err
		}
		frame := clone(buf.Bytes())
		if r.dir == ClientSide && len(frame) < minEthernetFrame {
			// Received frames arrive padded to the Ethernet minimum; frames
			// the capturing host sends are captured before padding.
			frame = append(frame, make([]byte, minEthernetFrame-len(frame))...)
		}
		return frame, nil
	}
	return nil, fmt.Errorf("unknown link type %v", c.Link)
}
