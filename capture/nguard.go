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
type ngGuard struct {
	r     io.Reader
	order binary.ByteOrder
	head  [28]byte // a block's first bytes, checked (and maybe rewritten)
	out   []byte   // the part of head not yet handed out
	left  int64    // bytes of the current block after head
}

const (
	ngSHB = 0x0a0d0d0a
	ngIDB = 0x00000001
	ngSPB = 0x00000003
	ngEPB = 0x00000006
)

func (g *ngGuard) Read(p []byte) (int, error) {
	if len(g.out) == 0 && g.left == 0 {
		if err := g.next(); err != nil {
			return 0, err
		}
	}
	if len(g.out) > 0 {
		n := copy(p, g.out)
		g.out = g.out[n:]
		return n, nil
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	n, err := g.r.Read(p)
	g.left -= int64(n)
	if err == io.EOF && g.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
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
		}
	case ngIDB:
		if len(h) == 16 {
			if snap := g.order.Uint32(h[12:16]); snap == 0 || snap > maxSnaplen {
				g.order.PutUint32(h[12:16], maxSnaplen)
			}
		}
	}
	g.out = h
	g.left = max(length-int64(len(h)), 0)
	return nil
}
