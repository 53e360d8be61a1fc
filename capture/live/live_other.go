//go:build !linux

package live

import (
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/net/bpf"
)

// Capture is an open live capture (Linux only).
type Capture struct{}

// Open returns ErrUnsupported: live capture needs Linux.
func Open(Config) (*Capture, error) { return nil, ErrUnsupported }

func (c *Capture) Handles() []*Handle        { return nil }
func (c *Capture) LinkType() layers.LinkType { return layers.LinkTypeEthernet }
func (c *Capture) Framing() Framing          { return FramingEthernet }
func (c *Capture) Filter() []bpf.Instruction { return nil }
func (c *Capture) Snaplen() int              { return defaultSnaplen }
func (c *Capture) Interface() string         { return "" }
func (c *Capture) Interrupt()                {}
func (c *Capture) Stats() Stats              { return Stats{} }
func (c *Capture) Close() error              { return nil }

// Handle reads one packet socket (Linux only).
type Handle struct{}

func (h *Handle) Interrupt()   {}
func (h *Handle) Stats() Stats { return Stats{} }
func (h *Handle) Close() error { return nil }
func (h *Handle) ReadPacket() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	return nil, gopacket.CaptureInfo{}, 0, ErrUnsupported
}
func (h *Handle) Next(time.Duration) ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	return nil, gopacket.CaptureInfo{}, 0, ErrUnsupported
}
