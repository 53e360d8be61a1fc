package capture

import (
	"encoding/binary"
	"io"
)

// ngBlocks follows the pcapng block structure of the bytes pcapgo's
// NgReader reads through it, so that a file ending inside a block is
// reported as io.ErrUnexpectedEOF (ErrTruncated for the caller) as for
// pcap: the NgReader itself returns a plain io.EOF wherever the data ends.
// Only block headers are looked at; bodies are skipped by length.
type ngBlocks struct {
	r      io.Reader
	big    bool     // byte order of the current section
	hdr    [12]byte // the block header being collected
	hn     int      // bytes of it collected
	left   uint64   // body bytes left in the current block
	inBody bool
}

// shbType is the Section Header Block type (the same in both byte orders).
const shbType = 0x0a0d0d0a

func (b *ngBlocks) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.scan(p[:n])
	if err == io.EOF && (b.hn > 0 || b.inBody) {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *ngBlocks) scan(p []byte) {
	for len(p) > 0 {
		if b.inBody {
			k := uint64(len(p))
			if k > b.left {
				k = b.left
			}
			p = p[k:]
			b.left -= k
			b.inBody = b.left > 0
			continue
		}
		// Type and total length; a section header also has the byte
		// order magic that says how to read its length.
		need := 8
		shb := b.hn >= 4 && binary.LittleEndian.Uint32(b.hdr[:4]) == shbType
		if shb {
			need = 12
		}
		k := copy(b.hdr[b.hn:need], p)
		b.hn += k
		p = p[k:]
		if b.hn < need || b.hn == 8 && !shb && binary.LittleEndian.Uint32(b.hdr[:4]) == shbType {
			continue
		}
		if shb {
			b.big = binary.BigEndian.Uint32(b.hdr[8:12]) == 0x1a2b3c4d
		}
		var length uint64
		if b.big {
			length = uint64(binary.BigEndian.Uint32(b.hdr[4:8]))
		} else {
			length = uint64(binary.LittleEndian.Uint32(b.hdr[4:8]))
		}
		if length > uint64(b.hn) {
			b.left, b.inBody = length-uint64(b.hn), true
		}
		b.hn = 0
	}
}
