package capture

import (
	"encoding/binary"
	"fmt"
	"io"
)

// ngGuard passes a pcapng stream to pcapgo after checking each block's
// framing, so that no length field in the file makes pcapgo allocate more
// than maxSnaplen (it sizes buffers by an enhanced packet block's capture
// length and by an interface's snaplen, up to 4 GB; found by FuzzEngine).
// An enhanced packet block whose capture length does not fit in the block
// is an error; interface snaplens over maxSnaplen, or 0 (unlimited), are
// rewritten to maxSnaplen, which bounds simple packet blocks too.
//
// Interface description and statistics blocks are read whole (at most
// maxOptBlock bytes) and their options checked: pcapgo indexes option
// values without checking their length (a timestamp offset or statistics
// counter shorter than 8 bytes, an empty filter or resolution: out of
// range, or the previous option's bytes), and divides by a timestamp
// resolution that overflows 64 bits (10^-20 and finer, 2^-64 and finer).
// Both are errors here (found by FuzzEngine).
type ngGuard struct {
	r     io.Reader
	order binary.ByteOrder
	head  [28]byte // a block's first bytes, checked (and maybe rewritten)
	blk   []byte   // a whole interface block (head is then unused)
	out   []byte   // the part of head (or blk) not yet handed out
	left  int64    // bytes of the current block after head
}

// maxOptBlock bounds the interface description and statistics blocks,
// which hold names, descriptions, filters and counters: real ones take a
// few hundred bytes.
const maxOptBlock = 64 << 10

const (
	ngSHB = 0x0a0d0d0a
	ngIDB = 0x00000001
	ngSPB = 0x00000003
	ngISB = 0x00000005
	ngEPB = 0x00000006
)

func (g *ngGuard) Read(p []byte) (int, error) {
	if len(g.out) == 0 && g.left == 0 {
		if err := g.next(); err != nil {
			return 0, err
		}
	}
	done := 0
	if len(g.out) > 0 {
		done = copy(p, g.out)
		g.out = g.out[done:]
		if len(g.out) > 0 || g.left == 0 || done == len(p) {
			return done, nil
		}
		// The rest of the block's bytes in the same read: pcapgo's
		// reader then refills once per block, not twice.
		p = p[done:]
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	n, err := g.r.Read(p)
	g.left -= int64(n)
	if err == io.EOF && g.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	if done > 0 && err == io.ErrUnexpectedEOF {
		err = nil // the head's bytes first; the cut comes with the next read
	}
	return done + n, err
}

// cut is the error of a read that ends inside a block: never a clean EOF.
func cut(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// next reads and checks the start of the next block.
func (g *ngGuard) next() error {
	h := g.head[:8]
	if _, err := io.ReadFull(g.r, h); err != nil {
		return err // io.EOF between blocks, io.ErrUnexpectedEOF inside one
	}
	if binary.LittleEndian.Uint32(h) == ngSHB {
		// The byte-order magic follows; it sets the section's order.
		if _, err := io.ReadFull(g.r, g.head[8:12]); err != nil {
			return cut(err)
		}
		if binary.LittleEndian.Uint32(g.head[8:12]) == 0x1a2b3c4d {
			g.order = binary.LittleEndian
		} else {
			g.order = binary.BigEndian
		}
		h = g.head[:12]
	}
	if g.order == nil {
		return fmt.Errorf("%w: pcapng block before the section header", ErrFormat)
	}
	length := int64(g.order.Uint32(g.head[4:8]))
	var want int
	switch g.order.Uint32(g.head[0:4]) {
	case ngEPB:
		want = 28 // header, interface, timestamp, captured and original length
	case ngIDB:
		want = 16 // header, link type, reserved, snaplen
	}
	if want > len(h) && length >= int64(want) {
		if _, err := io.ReadFull(g.r, g.head[len(h):want]); err != nil {
			return cut(err)
		}
		h = g.head[:want]
	}
	switch g.order.Uint32(g.head[0:4]) {
	case ngEPB:
		if len(h) == 28 {
			if caplen := int64(g.order.Uint32(h[20:24])); caplen > length-32 || caplen > maxSnaplen {
				return fmt.Errorf("pcapng: a packet of %d bytes in a block of %d", caplen, length)
			}
			if err := ngInterfaceID(g.order.Uint32(h[8:12])); err != nil {
				return err
			}
		}
	case ngIDB:
		if len(h) == 16 {
			if snap := g.order.Uint32(h[12:16]); snap == 0 || snap > maxSnaplen {
				g.order.PutUint32(h[12:16], maxSnaplen)
			}
			return g.whole(h, length, 16, idbOptionSize)
		}
	case ngISB:
		// header, interface, timestamp
		if err := g.whole(h, length, 20, isbOptionSize); err != nil || len(g.blk) < 12 || g.left != 0 {
			return err
		}
		return ngInterfaceID(g.order.Uint32(g.blk[8:12]))
	}
	g.out = h
	g.left = max(length-int64(len(h)), 0)
	return nil
}

// whole reads the rest of a block that starts with h, length bytes in
// all, and checks its options, which start at opts, with need (an error
// for an option pcapgo cannot read safely). A block of a bad length is
// left to pcapgo, which reports it.
func (g *ngGuard) whole(h []byte, length int64, opts int, need func(code uint16, v []byte) error) error {
	if length > maxOptBlock {
		return fmt.Errorf("pcapng: an interface block of %d bytes", length)
	}
	if length < int64(len(h)) || length%4 != 0 {
		// pcapgo reports the bad length
		g.blk = g.blk[:0]
		g.out, g.left = h, max(length-int64(len(h)), 0)
		return nil
	}
	g.blk = append(g.blk[:0], h...)
	g.blk = append(g.blk, make([]byte, length-int64(len(h)))...)
	if _, err := io.ReadFull(g.r, g.blk[len(h):]); err != nil {
		return cut(err)
	}
	// options end before the trailing block length
	for o := g.blk[min(opts, len(g.blk)):max(len(g.blk)-4, min(opts, len(g.blk)))]; len(o) >= 4; {
		code, n := g.order.Uint16(o[0:2]), int(g.order.Uint16(o[2:4]))
		if code == 0 {
			break
		}
		if 4+n > len(o) {
			break // overruns the block: pcapgo reports it
		}
		if err := need(code, o[4:4+n]); err != nil {
			return err
		}
		o = o[min(len(o), 4+(n+3)&^3):]
	}
	g.out, g.left = g.blk, 0
	return nil
}

// ngInterfaceID refuses an interface number that pcapgo's int conversion
// would make negative on 32-bit platforms (an index out of range there).
func ngInterfaceID(id uint32) error {
	if id >= 1<<31 {
		return fmt.Errorf("pcapng: interface %d", id)
	}
	return nil
}

// idbOptionSize checks an interface description block option as pcapgo
// reads it.
func idbOptionSize(code uint16, v []byte) error {
	const (
		tsresol  = 9
		filter   = 11
		tsoffset = 14
	)
	switch code {
	case tsresol:
		if len(v) < 1 {
			return fmt.Errorf("pcapng: empty timestamp resolution")
		}
		if r := v[0]; r&0x80 != 0 && r&0x7f > 63 || r&0x80 == 0 && r > 19 {
			return fmt.Errorf("pcapng: timestamp resolution %#x is finer than 64 bits can count", r)
		}
	case filter:
		if len(v) < 1 {
			return fmt.Errorf("pcapng: empty capture filter option")
		}
	case tsoffset:
		if len(v) < 8 {
			return fmt.Errorf("pcapng: timestamp offset of %d bytes", len(v))
		}
	}
	return nil
}

// isbOptionSize checks an interface statistics block option as pcapgo
// reads it: the start and end times and the two counters it keeps are 8
// bytes.
func isbOptionSize(code uint16, v []byte) error {
	if code >= 2 && code <= 5 && len(v) < 8 {
		return fmt.Errorf("pcapng: statistics option %d of %d bytes", code, len(v))
	}
	return nil
}
