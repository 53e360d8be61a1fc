// Package synth builds packet captures from scripted TCP conversations, so
// tests know exactly what a capture contains.
//
// A Capture holds one or more Conns. A Conn is scripted step by step: each
// Client or Server step is one application write, cut into TCP segments at
// the MSS (or at explicit split points), with correct sequence and
// acknowledgement numbers, ACKs from the peer and valid IP and TCP checksums.
// Faults (reordering, retransmission, overlap, loss, duplication, IPv4
// fragmentation) are applied per step by segment index. Stream reports what
// each direction should reassemble to, and where the gaps are.
//
// Packets are framed for one link type per capture (Ethernet with optional
// 802.1Q tag, Linux cooked SLL and SLL2, BSD loopback, raw IP) and written
// as pcap or pcapng, optionally gzip-compressed. Output depends only on the
// script: fixed timestamps, addresses, ISNs and IP IDs, so a generated file
// is byte-for-byte reproducible.
//
// Builders record the first error (a bad segment index, a step after the
// connection closed) and Packets or the writers return it; scripts are
// programs, so a mistake must be loud but needs no error check per call.
package synth

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Link is the link layer of a capture.
type Link uint8

const (
	LinkEthernet Link = iota // DLT_EN10MB; Options.VLAN adds an 802.1Q tag
	LinkSLL                  // Linux cooked v1, as tcpdump -i any wrote before libpcap 1.10
	LinkSLL2                 // Linux cooked v2, as tcpdump -i any writes now
	LinkNull                 // BSD loopback: 4-byte address family, little-endian
	LinkRaw                  // raw IPv4/IPv6, no link header
)

var linkNames = [...]string{"ethernet", "sll", "sll2", "null", "raw"}

func (l Link) String() string {
	if int(l) < len(linkNames) {
		return linkNames[l]
	}
	return fmt.Sprintf("Link(%d)", l)
}

// ParseLink parses a Link name as String writes it.
func ParseLink(s string) (Link, error) {
	for i, n := range linkNames {
		if n == s {
			return Link(i), nil
		}
	}
	return 0, fmt.Errorf("synth: unknown link type %q (want one of %v)", s, linkNames)
}

// LinkType returns the pcap LINKTYPE_ value. It is a uint32 because
// LINKTYPE_LINUX_SLL2 (276) does not fit gopacket's layers.LinkType.
func (l Link) LinkType() uint32 {
	switch l {
	case LinkEthernet:
		return 1
	case LinkSLL:
		return 113
	case LinkSLL2:
		return 276
	case LinkNull:
		return 0
	case LinkRaw:
		return 101
	}
	return 0xffff
}

// Dir is the side that sends a packet.
type Dir uint8

const (
	ClientSide Dir = iota + 1
	ServerSide
)

func (d Dir) String() string {
	switch d {
	case ClientSide:
		return "client"
	case ServerSide:
		return "server"
	}
	return "none"
}

// Peer returns the other side.
func (d Dir) Peer() Dir {
	if d == ClientSide {
		return ServerSide
	}
	return ClientSide
}

// Packet is one framed packet of a capture.
type Packet struct {
	Time time.Time
	Data []byte // link-layer frame
	Conn int    // index of the Conn in its Capture, in creation order
	Dir  Dir
}

// Capture is a set of connections written to one file with one link type.
// The zero value is an Ethernet capture with no connections.
type Capture struct {
	Link  Link
	conns []*Conn
}

// NewCapture returns an empty capture with the given link type.
func NewCapture(link Link) *Capture {
	return &Capture{Link: link}
}

// Conn adds a connection from client to server. IPv4 or IPv6 follows from
// the addresses, which must be of the same family. Unless opts.Midstream is
// set, the three-way handshake is generated at opts.Start.
func (c *Capture) Conn(client, server netip.AddrPort, opts Options) *Conn {
	cn := newConn(len(c.conns), client, server, opts)
	c.conns = append(c.conns, cn)
	return cn
}

// Conns returns the connections in creation order.
func (c *Capture) Conns() []*Conn { return c.conns }

// Packets returns every packet of every connection framed for c.Link,
// merged by timestamp (ties keep connection creation order). Pending ACKs
// are flushed first, so call it after the script is complete.
func (c *Capture) Packets() ([]Packet, error) {
	var all []Packet
	for _, cn := range c.conns {
		cn.flush()
		if cn.err != nil {
			return nil, fmt.Errorf("conn %d (%v -> %v): %w", cn.index, cn.client.addr, cn.server.addr, cn.err)
		}
		if c.Link != LinkEthernet && cn.opts.VLAN != 0 {
			return nil, fmt.Errorf("conn %d: VLAN tag needs the ethernet link type, not %v", cn.index, c.Link)
		}
		for _, r := range cn.raw {
			if cn.opts.Only != 0 && r.dir != cn.opts.Only {
				continue
			}
			frame, err := c.frame(cn, r)
			if err != nil {
				return nil, fmt.Errorf("conn %d: %w", cn.index, err)
			}
			all = append(all, Packet{Time: r.t, Data: frame, Conn: cn.index, Dir: r.dir})
		}
	}
	slices.SortStableFunc(all, func(a, b Packet) int { return a.Time.Compare(b.Time) })
	if len(all) == 0 {
		return nil, errors.New("synth: capture has no packets")
	}
	return all, nil
}

// Stream is what one direction of a connection should reassemble to.
type Stream struct {
	// Bytes are the bytes present in the capture, in sequence order
	// (everything sent minus lost ranges).
	Bytes []byte
	// Gaps lists the lost ranges in sequence order.
	Gaps []Gap
	// Sent is the number of bytes sent, lost ones included.
	Sent int
}

// Gap is a range of stream bytes that never appears in the capture.
type Gap struct {
	At  int // offset in Stream.Bytes where the missing bytes belong
	Off int // offset in the sent stream
	Len int
}

// Stream returns what the capture holds of the bytes d sent. With
// Options.Only set to the other side, everything d sent is one gap.
func (c *Conn) Stream(d Dir) Stream {
	h := c.half(d)
	spans := h.cover
	if c.opts.Only != 0 && c.opts.Only != d {
		spans = nil
	}
	spans = mergeSpans(spans)
	var s Stream
	s.Sent = len(h.data)
	pos := 0
	for _, sp := range spans {
		if sp.off > pos {
			s.Gaps = append(s.Gaps, Gap{At: len(s.Bytes), Off: pos, Len: sp.off - pos})
		}
		s.Bytes = append(s.Bytes, h.data[sp.off:sp.end]...)
		pos = sp.end
	}
	if pos < len(h.data) {
		s.Gaps = append(s.Gaps, Gap{At: len(s.Bytes), Off: pos, Len: len(h.data) - pos})
	}
	return s
}

// Expected returns the bytes d sent that appear in the capture: the
// concatenation of d's steps minus lost ranges.
func (c *Conn) Expected(d Dir) []byte { return c.Stream(d).Bytes }

type span struct{ off, end int }

func mergeSpans(in []span) []span {
	s := slices.Clone(in)
	slices.SortFunc(s, func(a, b span) int { return cmp.Compare(a.off, b.off) })
	var out []span
	for _, sp := range s {
		if sp.end <= sp.off {
			continue
		}
		if n := len(out); n > 0 && sp.off <= out[n-1].end {
			out[n-1].end = max(out[n-1].end, sp.end)
			continue
		}
		out = append(out, sp)
	}
	return out
}
