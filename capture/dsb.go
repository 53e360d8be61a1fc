package capture

import (
	"encoding/binary"
	"io"
	"os"
)

// pcapng Decryption Secrets Blocks (pcapng spec section 4.7, block type
// 0x0000000A) carry key material inside the capture, for example a TLS key
// log put there by `editcap --inject-secrets tls,FILE`. pcapgo skips block
// types it does not know, so a dsbScanner watches the bytes on their way
// to it and hands each block's secrets to a handler.

const (
	ngBlockSHB = 0x0A0D0D0A
	ngBlockDSB = 0x0000000A
	// SecretsTLSKeyLog is the secrets type of an NSS TLS key log ("TLSK").
	SecretsTLSKeyLog = 0x544c534b
	// maxSecrets bounds the secrets of one block kept in memory; a
	// larger block is skipped.
	maxSecrets = 16 << 20
)

// SecretsFunc receives the contents of a Decryption Secrets Block: its
// secrets type (SecretsTLSKeyLog for a TLS key log) and data.
type SecretsFunc func(typ uint32, data []byte)

// dsbScanner passes reads through and parses the pcapng block structure
// of the bytes it sees.
type dsbScanner struct {
	r     io.Reader
	order binary.ByteOrder
	hdr   [12]byte
	hn    int
	skip  int64  // bytes of the current block still to pass over
	body  []byte // the current DSB's body, while it is collected
	want  int    // the DSB body length
	found func(typ uint32, data []byte)
	bad   bool // the block structure made no sense: stop looking
}

func (d *dsbScanner) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if n > 0 && !d.bad {
		d.scan(p[:n])
	}
	return n, err
}

func (d *dsbScanner) scan(p []byte) {
	for len(p) > 0 && !d.bad {
		switch {
		case d.skip > 0:
			k := int(min(d.skip, int64(len(p))))
			d.skip -= int64(k)
			p = p[k:]
		case d.body != nil:
			k := min(d.want-len(d.body), len(p))
			d.body = append(d.body, p[:k]...)
			p = p[k:]
			if len(d.body) == d.want {
				d.dsb(d.body)
				d.body = nil
			}
		default:
			need := 8
			if d.hn >= 4 && binary.LittleEndian.Uint32(d.hdr[:4]) == ngBlockSHB {
				need = 12 // with the byte-order magic
			}
			k := copy(d.hdr[d.hn:need], p)
			d.hn += k
			p = p[k:]
			if d.hn < need {
				continue
			}
			if need == 8 && binary.LittleEndian.Uint32(d.hdr[:4]) == ngBlockSHB {
				continue // now read the byte-order magic too
			}
			d.header()
		}
	}
}

// header handles a complete block header in d.hdr.
func (d *dsbScanner) header() {
	typ := binary.LittleEndian.Uint32(d.hdr[:4])
	hn := d.hn
	d.hn = 0
	if typ == ngBlockSHB {
		switch binary.LittleEndian.Uint32(d.hdr[8:12]) {
		case 0x1A2B3C4D:
			d.order = binary.LittleEndian
		case 0x4D3C2B1A:
			d.order = binary.BigEndian
		default:
			d.bad = true
			return
		}
	}
	if d.order == nil {
		d.bad = true
		return
	}
	total := int64(d.order.Uint32(d.hdr[4:8]))
	if total < 12 || total%4 != 0 {
		d.bad = true
		return
	}
	rest := total - int64(hn)
	if d.order.Uint32(d.hdr[:4]) == ngBlockDSB && rest-4 >= 8 && rest-4 <= maxSecrets+8 {
		// Collect the body; the trailing length is skipped after.
		d.want = int(rest - 4)
		d.body = make([]byte, 0, d.want)
		d.skip = 0
		return
	}
	d.skip = rest
}

func (d *dsbScanner) dsb(body []byte) {
	// The trailing block length follows the body.
	d.skip = 4
	typ := d.order.Uint32(body[0:4])
	n := int(d.order.Uint32(body[4:8]))
	if n > len(body)-8 {
		return
	}
	if d.found != nil {
		d.found(typ, body[8:8+n])
	}
}

// secretsQueue keeps the secrets found before a handler was set (pcapgo
// reads ahead while the file is opened), bounded.
type secretsQueue struct {
	fn      SecretsFunc
	pending []secretsBlock
	size    int
}

type secretsBlock struct {
	typ  uint32
	data []byte
}

func (q *secretsQueue) add(typ uint32, data []byte) {
	if q.fn != nil {
		q.fn(typ, data)
		return
	}
	if q.size+len(data) > maxSecrets {
		return
	}
	q.size += len(data)
	q.pending = append(q.pending, secretsBlock{typ, append([]byte(nil), data...)})
}

func (q *secretsQueue) set(fn SecretsFunc) {
	q.fn = fn
	for _, b := range q.pending {
		fn(b.typ, b.data)
	}
	q.pending, q.size = nil, 0
}

// scanWindow is how much of the file ScanSecrets reads at a time. Block
// headers that fall inside a window cost no system call; a block longer
// than the window is skipped over without reading its body. On the load
// captures as pcapng (274 and 286 MB) a scan takes 36 and 28 ms with 256
// KiB windows, 44 and 40 ms with 64 KiB, 45 and 139 ms with 4 KiB: the
// cost is copying the file out of the page cache.
const scanWindow = 256 << 10

// ScanSecrets reads the Decryption Secrets Blocks of a plain (not
// compressed) pcapng file before it is decoded, skipping over every other
// block, so that keys stored after the packets they decrypt are known from
// the start. It reads the file in windows of 256 KiB from the next block
// header on, not with a read per block: a capture of small packets has
// hundreds of thousands of blocks. It reports false, without error, for a
// file that is not plain pcapng, and for one that is not a regular file
// (the secrets then come while reading, OnSecrets): a named pipe or a
// process substitution (/dev/fd/N) can be read only once, and a scan would
// take from the reader what it reads.
func ScanSecrets(path string, fn SecretsFunc) (bool, error) {
	st, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	if !st.Mode().IsRegular() {
		return false, nil
	}
	return scanSecrets(path, fn, scanWindow)
}

// scanSecrets is ScanSecrets with windows of the given size (at least 12).
func scanSecrets(path string, fn SecretsFunc, window int) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	buf := make([]byte, window)
	var bufOff int64 // file offset of buf[0]
	n, _ := io.ReadFull(f, buf)
	buf = buf[:n]
	if n < 12 || binary.LittleEndian.Uint32(buf[:4]) != ngBlockSHB {
		return false, nil
	}
	var order binary.ByteOrder
	off := int64(0)
	for {
		if off+12 > bufOff+int64(len(buf)) {
			buf = buf[:window]
			n, _ := f.ReadAt(buf, off)
			buf, bufOff = buf[:n], off
			if n < 12 {
				return true, nil // end of file (a cut block is the reader's business)
			}
		}
		hdr := buf[off-bufOff:]
		if binary.LittleEndian.Uint32(hdr[:4]) == ngBlockSHB {
			switch binary.LittleEndian.Uint32(hdr[8:12]) {
			case 0x1A2B3C4D:
				order = binary.LittleEndian
			case 0x4D3C2B1A:
				order = binary.BigEndian
			default:
				return true, nil
			}
		}
		total := int64(order.Uint32(hdr[4:8]))
		if total < 12 || total%4 != 0 {
			return true, nil
		}
		if order.Uint32(hdr[:4]) == ngBlockDSB && total-12 >= 8 && total-12 <= maxSecrets+8 {
			body := make([]byte, total-12)
			if _, err := f.ReadAt(body, off+8); err != nil {
				return true, nil
			}
			if n := int64(order.Uint32(body[4:8])); n <= int64(len(body))-8 {
				fn(order.Uint32(body[0:4]), body[8:8+n])
			}
		}
		off += total
	}
}
