// Package live captures packets from a network interface for the capture
// engine.
//
// On Linux it reads AF_PACKET sockets through a TPACKET_V3 memory-mapped
// ring, with a classic BPF program attached in the kernel (PortFilter,
// assembled in Go: no libpcap) and, for more than one worker, a
// PACKET_FANOUT_HASH group: the kernel spreads packets over the sockets by
// a symmetric flow hash, so both directions of a connection reach the same
// socket, and each socket can feed its own capture.Engine.
//
// The ring is driven with golang.org/x/sys/unix rather than
// gopacket/afpacket, whose v1.1.19 needs cgo: this package builds with
// CGO_ENABLED=0 like the rest of mailtap.
package live

import (
	"errors"
	"time"
)

// Config configures a capture.
type Config struct {
	// Interface is the interface name, or "any" for every interface.
	Interface string
	// Workers is the number of sockets, joined in one fanout group when
	// more than one. 0 means 1.
	Workers int
	// Snaplen is the most bytes kept of each packet. 0 means 262144.
	Snaplen int
	// Promiscuous puts the interface in promiscuous mode for as long as
	// the capture is open (not possible for "any").
	Promiscuous bool
	// Filter selects the kernel filter: FilterPorts keeps TCP on Ports,
	// FilterTCP every TCP packet, FilterNone everything.
	Filter FilterKind
	Ports  []uint16
	// Expr is the tcpdump-style expression of FilterExpr.
	Expr string
	// RingBytes is the size of each socket's ring. 0 means 32 MiB.
	RingBytes int
	// BlockTimeout is how long the kernel waits before handing a
	// partly filled ring block to us. 0 means 50 ms. On a quiet link
	// every block is retired after this long whatever it holds, so the
	// ring absorbs a stall of the reader of at least
	// RingBytes/256KiB × BlockTimeout (6.4 s by default).
	BlockTimeout time.Duration
}

// FilterKind selects the kernel filter.
type FilterKind uint8

const (
	FilterPorts FilterKind = iota // tcp and (port P1 or ...)
	FilterTCP                     // tcp
	FilterNone                    // everything (still truncated to Snaplen)
	FilterExpr                    // Config.Expr, compiled by libpcap (builds with -tags pcap)
)

// Stats counts packets for one socket or a whole capture.
type Stats struct {
	// Kernel counters (PACKET_STATISTICS), accumulated: Received counts
	// every packet that passed the filter, Drops those lost because the
	// ring was full, Freezes the times the ring filled up.
	Received uint64 `json:"kernel_received"`
	Drops    uint64 `json:"kernel_drops"`
	Freezes  uint64 `json:"kernel_freezes"`
	// Ours: packets and bytes handed to the reader, and those cut by
	// the snaplen (their payload is incomplete), and ring entries
	// skipped as malformed (lost to us).
	Packets   uint64 `json:"packets"`
	Bytes     uint64 `json:"bytes"`
	Truncated uint64 `json:"truncated"`
	Skipped   uint64 `json:"skipped"`
}

// Add adds o to s.
func (s *Stats) Add(o Stats) {
	s.Received += o.Received
	s.Drops += o.Drops
	s.Freezes += o.Freezes
	s.Packets += o.Packets
	s.Bytes += o.Bytes
	s.Truncated += o.Truncated
	s.Skipped += o.Skipped
}

var (
	// ErrPermission is returned when the process may not open packet
	// sockets.
	ErrPermission = errors.New("permission denied: run as root or grant CAP_NET_RAW")
	// ErrNoInterface is returned for an interface that does not exist.
	ErrNoInterface = errors.New("no such interface")
	// ErrTimeout is returned by Handle.Next when no packet arrived in time.
	ErrTimeout = errors.New("no packet before the timeout")
	// ErrUnsupported is returned on systems without AF_PACKET.
	ErrUnsupported = errors.New("live capture needs Linux (AF_PACKET)")
)

const (
	defaultSnaplen = 262144
	defaultRing    = 32 << 20
	blockSize      = 256 << 10
	defaultTimeout = 50 * time.Millisecond
)

func (c *Config) defaults() {
	if c.Workers <= 0 {
		c.Workers = 1
	}
	if c.Snaplen <= 0 || c.Snaplen > defaultSnaplen {
		c.Snaplen = defaultSnaplen
	}
	if c.RingBytes <= 0 {
		c.RingBytes = defaultRing
	}
	if c.RingBytes < 4*blockSize {
		c.RingBytes = 4 * blockSize
	}
	if c.BlockTimeout <= 0 {
		c.BlockTimeout = defaultTimeout
	}
}
