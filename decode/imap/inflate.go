package imap

// A push decoder of raw DEFLATE (RFC 1951), for COMPRESS=DEFLATE (RFC
// 4978). compress/flate cannot be used here: its reader pulls from an
// io.Reader and an "out of input" error is sticky, so it cannot be fed a
// TCP stream piece by piece without blocking. This decoder keeps only the
// input of the step it could not finish (at most a dynamic block header)
// and the 32 KiB window; every step is retried from its start when more
// input arrives.

const (
	windowSize = 32 << 10
	outChunk   = 16 << 10
)

type inflateState uint8

const (
	infHeader inflateState = iota
	infStored
	infHuffman
	infDone
	infError
)

type huffman struct {
	count [16]uint16
	sym   [320]uint16
}

// build fills h from code lengths. It refuses over-subscribed sets;
// incomplete ones are allowed (a single distance code is legal).
func (h *huffman) build(lengths []uint8) bool {
	h.count = [16]uint16{}
	for _, l := range lengths {
		h.count[l]++
	}
	left := 1
	for l := 1; l < 16; l++ {
		left <<= 1
		left -= int(h.count[l])
		if left < 0 {
			return false
		}
	}
	var offs [16]uint16
	for l := 1; l < 15; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	for s, l := range lengths {
		if l != 0 {
			h.sym[offs[l]] = uint16(s)
			offs[l]++
		}
	}
	return true
}

var (
	lenBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lenExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	dstBase  = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	dstExtra = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	clOrder  = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

	fixedLit, fixedDist huffman
)

func init() {
	var l [288]uint8
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	fixedLit.build(l[:])
	var d [30]uint8
	for i := range d {
		d[i] = 5
	}
	fixedDist.build(d[:])
}

// inflater decodes one direction's DEFLATE stream. Output goes to emit in
// chunks of at most outChunk bytes.
type inflater struct {
	emit func([]byte)

	in    []byte
	pos   int
	bits  uint32
	nbits uint

	state  inflateState
	final  bool
	stored int
	lit    *huffman
	dist   *huffman
	dyn    [2]huffman

	win  [windowSize]byte
	wpos int
	wlen int
	out  []byte
}

func newInflater(emit func([]byte)) *inflater {
	return &inflater{emit: emit}
}

// Failed reports whether the stream was found corrupt.
func (f *inflater) Failed() bool { return f.state == infError }

// Done reports whether the final block ended.
func (f *inflater) Done() bool { return f.state == infDone }

type bitMark struct {
	pos   int
	bits  uint32
	nbits uint
}

func (f *inflater) mark() bitMark    { return bitMark{f.pos, f.bits, f.nbits} }
func (f *inflater) rewind(m bitMark) { f.pos, f.bits, f.nbits = m.pos, m.bits, m.nbits }

// need makes n (<= 24) bits available, or reports false.
func (f *inflater) need(n uint) bool {
	for f.nbits < n {
		if f.pos >= len(f.in) {
			return false
		}
		f.bits |= uint32(f.in[f.pos]) << f.nbits
		f.pos++
		f.nbits += 8
	}
	return true
}

func (f *inflater) take(n uint) uint32 {
	v := f.bits & (1<<n - 1)
	f.bits >>= n
	f.nbits -= n
	return v
}

// decode reads one symbol: -1 needs more input, -2 is an invalid code.
func (f *inflater) decode(h *huffman) int {
	code, first, index := 0, 0, 0
	for l := 1; l < 16; l++ {
		if !f.need(1) {
			return -1
		}
		code |= int(f.take(1))
		count := int(h.count[l])
		if code-count < first {
			return int(h.sym[index+code-first])
		}
		index += count
		first += count
		first <<= 1
		code <<= 1
	}
	return -2
}

func (f *inflater) put(b byte) {
	f.win[f.wpos] = b
	f.wpos = (f.wpos + 1) & (windowSize - 1)
	if f.wlen < windowSize {
		f.wlen++
	}
	f.out = append(f.out, b)
	if len(f.out) >= outChunk {
		f.flush()
	}
}

func (f *inflater) flush() {
	if len(f.out) > 0 {
		f.emit(f.out)
		f.out = f.out[:0]
	}
}

// Write decodes p; it never fails (a corrupt stream stops decoding:
// Failed reports it).
func (f *inflater) Write(p []byte) {
	if f.state == infDone || f.state == infError {
		return
	}
	if f.pos > 0 {
		f.in = append(f.in[:0], f.in[f.pos:]...)
		f.pos = 0
	}
	f.in = append(f.in, p...)
	for f.step() {
	}
	f.flush()
	if f.pos == len(f.in) {
		f.in = f.in[:0]
		f.pos = 0
	}
}

// step runs one decoding step; false means it needs more input (or the
// stream ended or failed).
func (f *inflater) step() bool {
	switch f.state {
	case infHeader:
		if f.final {
			f.state = infDone
			return false
		}
		m := f.mark()
		if !f.need(3) {
			return false
		}
		final := f.take(1) == 1
		switch f.take(2) {
		case 0:
			f.take(f.nbits % 8)
			if !f.need(16) {
				f.rewind(m)
				return false
			}
			n := f.take(16)
			if !f.need(16) {
				f.rewind(m)
				return false
			}
			if f.take(16) != ^n&0xffff {
				f.state = infError
				return false
			}
			f.stored = int(n)
			f.state = infStored
		case 1:
			f.lit, f.dist = &fixedLit, &fixedDist
			f.state = infHuffman
		case 2:
			ok, more := f.dynamic()
			if more {
				f.rewind(m)
				return false
			}
			if !ok {
				f.state = infError
				return false
			}
			f.state = infHuffman
		default:
			f.state = infError
			return false
		}
		f.final = final
		return true
	case infStored:
		for f.stored > 0 {
			if !f.need(8) {
				return false
			}
			f.put(byte(f.take(8)))
			f.stored--
		}
		f.state = infHeader
		return true
	case infHuffman:
		for {
			m := f.mark()
			sym := f.decode(f.lit)
			switch {
			case sym == -1:
				f.rewind(m)
				return false
			case sym < 0 || sym > 285:
				f.state = infError
				return false
			case sym < 256:
				f.put(byte(sym))
				continue
			case sym == 256:
				f.state = infHeader
				return true
			}
			sym -= 257
			if !f.need(uint(lenExtra[sym])) {
				f.rewind(m)
				return false
			}
			length := int(lenBase[sym]) + int(f.take(uint(lenExtra[sym])))
			ds := f.decode(f.dist)
			if ds == -1 {
				f.rewind(m)
				return false
			}
			if ds < 0 || ds > 29 {
				f.state = infError
				return false
			}
			if !f.need(uint(dstExtra[ds])) {
				f.rewind(m)
				return false
			}
			dist := int(dstBase[ds]) + int(f.take(uint(dstExtra[ds])))
			if dist > f.wlen {
				f.state = infError
				return false
			}
			for ; length > 0; length-- {
				f.put(f.win[(f.wpos-dist)&(windowSize-1)])
			}
		}
	}
	return false
}

// dynamic reads a dynamic block's code tables. more: input ran out.
func (f *inflater) dynamic() (ok, more bool) {
	if !f.need(14) {
		return false, true
	}
	nlen := int(f.take(5)) + 257
	ndist := int(f.take(5)) + 1
	ncode := int(f.take(4)) + 4
	if nlen > 286 || ndist > 30 {
		return false, false
	}
	var lengths [320]uint8
	for i := 0; i < ncode; i++ {
		if !f.need(3) {
			return false, true
		}
		lengths[clOrder[i]] = uint8(f.take(3))
	}
	var cl huffman
	if !cl.build(lengths[:19]) {
		return false, false
	}
	lengths = [320]uint8{}
	for i := 0; i < nlen+ndist; {
		sym := f.decode(&cl)
		if sym == -1 {
			return false, true
		}
		if sym < 0 {
			return false, false
		}
		if sym < 16 {
			lengths[i] = uint8(sym)
			i++
			continue
		}
		var rep int
		var val uint8
		switch sym {
		case 16:
			if i == 0 {
				return false, false
			}
			if !f.need(2) {
				return false, true
			}
			val, rep = lengths[i-1], 3+int(f.take(2))
		case 17:
			if !f.need(3) {
				return false, true
			}
			rep = 3 + int(f.take(3))
		default:
			if !f.need(7) {
				return false, true
			}
			rep = 11 + int(f.take(7))
		}
		if i+rep > nlen+ndist {
			return false, false
		}
		for ; rep > 0; rep-- {
			lengths[i] = val
			i++
		}
	}
	if lengths[256] == 0 {
		return false, false
	}
	if !f.dyn[0].build(lengths[:nlen]) || !f.dyn[1].build(lengths[nlen:nlen+ndist]) {
		return false, false
	}
	f.lit, f.dist = &f.dyn[0], &f.dyn[1]
	return true, false
}
