package synth

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/gopacket"
	"github.com/google/gopacket/pcapgo"
)

// Snaplen is the snapshot length written in file headers.
const Snaplen = 262144

// Format is a capture file format.
type Format uint8

const (
	FormatPcap   Format = iota // libpcap, microsecond timestamps, little-endian
	FormatPcapng               // pcapng: one section, one interface, enhanced packet blocks
)

// FormatOf picks the format and compression from a file name: .pcapng
// (else pcap), optionally followed by .gz.
func FormatOf(name string) (f Format, gz bool) {
	name, gz = strings.CutSuffix(name, ".gz")
	if strings.HasSuffix(name, ".pcapng") {
		return FormatPcapng, gz
	}
	return FormatPcap, gz
}

// Write writes the capture to w in the given format.
//
// The file headers are written here rather than by pcapgo because gopacket
// v1.1.19's layers.LinkType is a uint8 and cannot hold LINKTYPE_LINUX_SLL2
// (276); pcap packet records still go through pcapgo.Writer.
func (c *Capture) Write(w io.Writer, f Format) error {
	pkts, err := c.Packets()
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	switch f {
	case FormatPcap:
		err = writePcap(bw, c.Link.LinkType(), pkts)
	case FormatPcapng:
		err = writePcapng(bw, c.Link.LinkType(), pkts)
	default:
		err = fmt.Errorf("synth: unknown format %d", f)
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}

// Bytes returns the file contents for the given name's format (see
// FormatOf), gzip-compressed if the name ends in .gz.
func (c *Capture) Bytes(name string) ([]byte, error) {
	f, gz := FormatOf(name)
	var buf bytes.Buffer
	if !gz {
		err := c.Write(&buf, f)
		return buf.Bytes(), err
	}
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	// The header keeps its zero ModTime and no name, so output is stable.
	if err := c.Write(zw, f); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteFile writes the capture to path in the format its name says.
func (c *Capture) WriteFile(path string) error {
	b, err := c.Bytes(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func writePcap(w io.Writer, linkType uint32, pkts []Packet) error {
	var hdr [24]byte
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4) // microsecond magic
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], Snaplen)
	binary.LittleEndian.PutUint32(hdr[20:], linkType)
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	pw := pcapgo.NewWriter(w)
	for _, p := range pkts {
		ci := gopacket.CaptureInfo{Timestamp: p.Time, CaptureLength: len(p.Data), Length: len(p.Data)}
		if err := pw.WritePacket(ci, p.Data); err != nil {
			return err
		}
	}
	return nil
}

// pcapng block types and options.
const (
	ngSectionHeader  = 0x0a0d0d0a
	ngInterfaceDesc  = 0x00000001
	ngEnhancedPacket = 0x00000006
	ngByteOrderMagic = 0x1a2b3c4d
	ngOptEnd         = 0
	ngOptShbUserAppl = 4
	ngOptIfName      = 2
)

func writePcapng(w io.Writer, linkType uint32, pkts []Packet) error {
	var body bytes.Buffer
	le := binary.LittleEndian

	// Section header: magic, version 1.0, unknown section length.
	body.Write(le.AppendUint32(nil, ngByteOrderMagic))
	body.Write(le.AppendUint16(nil, 1))
	body.Write(le.AppendUint16(nil, 0))
	body.Write(le.AppendUint64(nil, ^uint64(0)))
	ngOption(&body, ngOptShbUserAppl, "mailtap capture/synth")
	ngOption(&body, ngOptEnd, "")
	if err := ngBlock(w, ngSectionHeader, body.Bytes()); err != nil {
		return err
	}

	// Interface description: link type, reserved, snaplen. Without
	// if_tsresol timestamps are in microseconds.
	body.Reset()
	body.Write(le.AppendUint16(nil, uint16(linkType)))
	body.Write(le.AppendUint16(nil, 0))
	body.Write(le.AppendUint32(nil, Snaplen))
	ngOption(&body, ngOptIfName, "synth0")
	ngOption(&body, ngOptEnd, "")
	if err := ngBlock(w, ngInterfaceDesc, body.Bytes()); err != nil {
		return err
	}

	for _, p := range pkts {
		body.Reset()
		us := uint64(p.Time.UnixMicro())
		body.Write(le.AppendUint32(nil, 0)) // interface 0
		body.Write(le.AppendUint32(nil, uint32(us>>32)))
		body.Write(le.AppendUint32(nil, uint32(us)))
		body.Write(le.AppendUint32(nil, uint32(len(p.Data))))
		body.Write(le.AppendUint32(nil, uint32(len(p.Data))))
		body.Write(p.Data)
		pad(&body)
		if err := ngBlock(w, ngEnhancedPacket, body.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

func ngOption(b *bytes.Buffer, code uint16, val string) {
	b.Write(binary.LittleEndian.AppendUint16(nil, code))
	b.Write(binary.LittleEndian.AppendUint16(nil, uint16(len(val))))
	b.WriteString(val)
	pad(b)
}

func pad(b *bytes.Buffer) {
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
}

func ngBlock(w io.Writer, typ uint32, body []byte) error {
	n := uint32(12 + len(body))
	le := binary.LittleEndian
	b := le.AppendUint32(nil, typ)
	b = le.AppendUint32(b, n)
	b = append(b, body...)
	b = le.AppendUint32(b, n)
	_, err := w.Write(b)
	return err
}
