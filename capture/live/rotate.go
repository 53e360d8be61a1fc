package live

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/pcapgo"
)

// Rotation splits the -w capture into several files, as tcpdump's -G, -C
// and -W do. The zero value writes one file.
type Rotation struct {
	// Every starts a new file when a packet comes this long (capture
	// time) after the first packet of the current file (tcpdump -G).
	Every time.Duration
	// Bytes starts a new file before a packet that would take the
	// current one past this size (tcpdump -C; a file holds at least one
	// packet).
	Bytes int64
	// Files, with Every or Bytes, keeps a ring of this many files,
	// overwriting the oldest (tcpdump -W).
	Files int
}

func (r Rotation) on() bool { return r.Every > 0 || r.Bytes > 0 }

// Name is the path of file n (0-based) of a rotated capture on path: as
// tcpdump names them, path itself then path1, path2, ...; with a ring
// of Files files, path0 to pathN-1, the number zero-padded to one width.
func (r Rotation) Name(path string, n int) string {
	if !r.on() {
		return path
	}
	if r.Files > 0 {
		w := len(strconv.Itoa(r.Files - 1))
		return fmt.Sprintf("%s%0*d", path, w, n%r.Files)
	}
	if n == 0 {
		return path
	}
	return path + strconv.Itoa(n)
}

// pcapWriter writes the packets of every socket to one pcapng file, or to
// a rotation of them.
type pcapWriter struct {
	mu   sync.Mutex
	f    *os.File
	w    *pcapgo.NgWriter
	err  error
	name string

	path  string
	intf  pcapgo.NgInterface
	opts  pcapgo.NgWriterOptions
	rot   Rotation
	n     int       // number of the current file
	first time.Time // first packet of the current file
	size  int64     // bytes of the current file, counted as written
	pkts  int       // packets in the current file
}

func newPcapWriter(path string, c *Capture, app string, rot Rotation) (*pcapWriter, error) {
	intf := pcapgo.DefaultNgInterface
	intf.Name = c.Interface()
	intf.LinkType = c.LinkType()
	intf.SnapLength = uint32(c.Snaplen())
	return newPcapWriterIntf(path, intf, app, rot)
}

func newPcapWriterIntf(path string, intf pcapgo.NgInterface, app string, rot Rotation) (*pcapWriter, error) {
	opts := pcapgo.DefaultNgWriterOptions
	opts.SectionInfo.Application = app
	p := &pcapWriter{path: path, intf: intf, opts: opts, rot: rot}
	if err := p.open(); err != nil {
		return nil, err
	}
	return p, nil
}

// open starts file p.n.
func (p *pcapWriter) open() error {
	p.name = p.rot.Name(p.path, p.n)
	f, err := os.Create(p.name)
	if err != nil {
		return err
	}
	w, err := pcapgo.NewNgWriterInterface(f, p.intf, p.opts)
	if err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", p.name, err)
	}
	// The section header and interface description count towards
	// the size too.
	var off int64
	if err = w.Flush(); err == nil {
		off, err = f.Seek(0, io.SeekCurrent)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", p.name, err)
	}
	p.f, p.w, p.size, p.pkts = f, w, off, 0
	return nil
}

// rotate ends the current file and starts the next.
func (p *pcapWriter) rotate() {
	if p.err = p.w.Flush(); p.err == nil {
		p.err = p.f.Close()
	}
	if p.err != nil {
		p.err = fmt.Errorf("%s: %w", p.name, p.err)
		return
	}
	p.n++
	p.err = p.open()
}

func (p *pcapWriter) write(ci gopacket.CaptureInfo, data []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return
	}
	// An enhanced packet block: 28 bytes of header and 4 of trailer
	// around the data padded to 32 bits.
	blk := int64(32 + (len(data)+3)&^3)
	if p.pkts > 0 && (p.rot.Every > 0 && ci.Timestamp.Sub(p.first) >= p.rot.Every ||
		p.rot.Bytes > 0 && p.size+blk > p.rot.Bytes) {
		if p.rotate(); p.err != nil {
			return
		}
	}
	if p.pkts == 0 {
		p.first = ci.Timestamp
	}
	ci.InterfaceIndex = 0
	p.err = p.w.WritePacket(ci, data)
	p.size += blk
	p.pkts++
}
