package message

import (
	"bytes"
	"encoding/base64"

	"github.com/mailtap/mailtap/decode"
	simd64 "github.com/segmentio/asm/base64"
)

// Transfer encodings a leaf decodes.
const (
	encIdentity = iota
	encBase64
	encQP
)

// maxQPHold bounds the trailing white space of a quoted-printable line held
// back in case the line ends there (and it has to be dropped).
const maxQPHold = 4 << 10

// leaf decodes one part body as its lines stream, and feeds the decoded
// bytes to a hash and/or a preview buffer.
//
// The line break before a boundary belongs to the boundary (RFC 2046), so
// the break of each line is held back (eol) until the next line shows it
// was content.
type leaf struct {
	enc   int
	h     *decode.MultiHash // nil: not hashed
	keep  *preview          // nil: not kept
	w     decode.MessageWriter
	wfail bool
	size  int64

	eol   []byte      // line break held back
	carry []byte      // undecided bytes of a line that came in pieces
	b64   *b64dec     // base64 only: allocated on the first line
	out   *[4096]byte // quoted-printable only: allocated on the first line
	on    int
}

var (
	crlf = []byte("\r\n")
	lf   = []byte("\n")
)

func (l *leaf) emit(b []byte) {
	if len(b) == 0 {
		return
	}
	l.size += int64(len(b))
	if l.h != nil {
		l.h.Write(b)
	}
	if l.w != nil && !l.wfail {
		if _, err := l.w.Write(b); err != nil {
			l.wfail = true
		}
	}
	if l.keep != nil {
		l.keep.add(b)
	}
}

func (l *leaf) emitByte(c byte) {
	l.out[l.on] = c
	l.on++
	if l.on == len(l.out) {
		l.flushOut()
	}
}

// emitRun adds b to the decoded bytes, as emitByte does for each.
func (l *leaf) emitRun(b []byte) {
	for len(b) > 0 {
		k := copy(l.out[l.on:], b)
		l.on += k
		b = b[k:]
		if l.on == len(l.out) {
			l.flushOut()
		}
	}
}

func (l *leaf) flushOut() {
	l.emit(l.out[:l.on])
	l.on = 0
}

func (l *leaf) flushEOL() {
	if l.eol != nil {
		l.emit(l.eol)
		l.eol = nil
	}
}

// line takes one line (complete, with its break) or a piece of a long one.
func (l *leaf) line(p *impl, b []byte, complete bool) {
	if l.enc == encBase64 {
		if l.b64 == nil {
			l.b64 = new(b64dec)
		}
		if l.b64.write(b, l) {
			p.anomaly(decode.AnomalyBadBase64)
		}
		return
	}
	var eol []byte
	if complete {
		switch {
		case len(b) >= 2 && b[len(b)-2] == '\r' && b[len(b)-1] == '\n':
			eol, b = crlf, b[:len(b)-2]
		case len(b) >= 1 && b[len(b)-1] == '\n':
			eol, b = lf, b[:len(b)-1]
		}
	}
	data := b
	if len(l.carry) > 0 {
		l.carry = append(l.carry, b...)
		data = l.carry
	}
	if !complete {
		// hold back what the end of the line could change: a CR that
		// may start the break, and for quoted-printable trailing white
		// space and an unfinished escape.
		k := len(data)
		if data[k-1] == '\r' {
			k--
		}
		if l.enc == encQP {
			// the complete line strips at most maxQPHold bytes of
			// white space: hold back as many, so that any chunking
			// decodes alike
			for ws := 0; k > 0 && ws < maxQPHold && isQPSpace(data[k-1]); ws++ {
				k--
			}
			switch {
			case k >= 1 && data[k-1] == '=':
				k--
			case k >= 2 && data[k-2] == '=':
				k -= 2
			}
		}
		if k > 0 {
			l.flushEOL()
			l.decode(p, data[:k])
		}
		l.carry = append(l.carry[:0], data[k:]...)
		return
	}
	l.carry = l.carry[:0]
	if len(eol) == 1 && len(data) > 0 && data[len(data)-1] == '\r' {
		eol, data = crlf, data[:len(data)-1]
	}
	l.flushEOL()
	if l.enc == encQP {
		for ws := 0; len(data) > 0 && ws < maxQPHold && isQPSpace(data[len(data)-1]); ws++ {
			data = data[:len(data)-1]
		}
		if len(data) > 0 && data[len(data)-1] == '=' {
			data = data[:len(data)-1]
			eol = nil // soft line break
		}
	}
	l.decode(p, data)
	if len(eol) > 0 {
		l.eol = eol
	}
}

func isQPSpace(c byte) bool { return c == ' ' || c == '\t' }

func (l *leaf) decode(p *impl, b []byte) {
	if l.enc != encQP {
		l.emit(b)
		return
	}
	if l.out == nil {
		l.out = new([4096]byte)
	}
	bad := false
	for len(b) > 0 {
		// the run up to the next '=' goes out as it is
		i := bytes.IndexByte(b, '=')
		if i < 0 {
			i = len(b)
		}
		l.emitRun(b[:i])
		if b = b[i:]; len(b) == 0 {
			break
		}
		if len(b) > 2 {
			if h, ok := unhex(b[1]); ok {
				if lo, ok := unhex(b[2]); ok {
					l.emitByte(h<<4 | lo)
					b = b[3:]
					continue
				}
			}
		}
		bad = true
		l.emitByte('=')
		b = b[1:]
	}
	l.flushOut()
	if bad {
		p.anomaly(decode.AnomalyBadQuotedPrintable)
	}
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// finish ends the body. The held-back line break is dropped, at a boundary
// and at the end of the message alike: a message must end with a line
// break (SMTP DATA, IMAP), so the last one is never known to be content —
// a single-part attachment of "abc" travels as "abc\r\n".
func (l *leaf) finish(p *impl) {
	switch l.enc {
	case encBase64:
		if l.b64 != nil && l.b64.end(l) {
			p.anomaly(decode.AnomalyBadBase64)
		}
	default:
		if len(l.carry) > 0 {
			l.flushEOL()
			l.decode(p, l.carry)
			l.carry = l.carry[:0]
		}
	}
	l.eol = nil
}

// b64dec decodes base64 as it streams: white space is skipped, characters
// outside the alphabet are skipped and reported, '=' ends a quantum early,
// and data after padding starts a new stream (concatenated encodings).
type b64dec struct {
	buf [4096]byte
	n   int
	ll  int // length of the last CRLF line seen, without its break
	dst [3072]byte
	bad bool // flush met bytes outside the alphabet
}

var b64valid = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") {
		t[c] = true
	}
	return t
}()

func (d *b64dec) write(b []byte, l *leaf) (bad bool) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '=')
		if i < 0 {
			i = len(b)
		}
		d.lines(b[:i], l)
		if b = b[i:]; len(b) == 0 {
			break
		}
		// the rest of the line with the '=', character by character
		i = bytes.IndexByte(b, '\n') + 1
		if i == 0 {
			i = len(b)
		}
		if d.scan(b[:i], l) {
			bad = true
		}
		b = b[i:]
	}
	bad = bad || d.bad
	d.bad = false
	return bad
}

// lines is the fast path of write, for bytes without '=': it copies the
// lines as they are, without their breaks, and lets flush validate them
// with the decoder itself (the common case has nothing to skip).
func (d *b64dec) lines(b []byte, l *leaf) {
	for len(b) > 0 {
		line := b
		if L := d.ll; L > 0 && L+1 < len(b) && b[L] == '\r' && b[L+1] == '\n' {
			// As long as the line before (encoders write lines of one
			// length): no scan for its end. Were there a line break in
			// b[:L] after all, it would go to the buffer, where flush
			// skips it as white space.
			line, b = b[:L], b[L+2:]
		} else if j := bytes.IndexByte(b, '\n'); j >= 0 {
			line, b = b[:j], b[j+1:]
			if j > 0 && line[j-1] == '\r' {
				d.ll = j - 1
			}
		} else {
			b = nil
		}
		for len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		for len(line) > 0 {
			k := copy(d.buf[d.n:], line)
			d.n += k
			line = line[k:]
			if d.n == len(d.buf) {
				d.flush(l)
			}
		}
	}
}

// scan is the slow path of write: alphabet characters are collected,
// '=' decodes what is collected, white space is skipped and other bytes
// are skipped and reported.
func (d *b64dec) scan(b []byte, l *leaf) (bad bool) {
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case b64valid[c]:
			// copy the run of alphabet characters at once
			j := i + 1
			for j < len(b) && j-i < len(d.buf)-d.n && b64valid[b[j]] {
				j++
			}
			d.n += copy(d.buf[d.n:], b[i:j])
			if d.n == len(d.buf) {
				d.flush(l)
			}
			i = j - 1
		case c == '=':
			if d.tail(l) {
				bad = true
			}
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
		default:
			bad = true
		}
	}
	return bad
}

// flush decodes the whole quanta collected. The buffer may hold bytes
// outside the alphabet (the fast path copies lines unchecked): then the
// decoder fails, and the buffer is filtered as the slow path would have
// done (white space skipped, other bytes skipped and reported).
//
// The decoder is segmentio/asm's: AVX2 (on amd64) or NEON (arm64) over the
// leading run of alphabet characters, 32 bytes a step, then encoding/base64
// itself for what is left, so that anything it does not take (a short
// tail, a byte outside the alphabet) meets the standard library's rules
// and errors. It decodes 7-8x faster than encoding/base64 alone, which was
// a tenth of all CPU time on captures that carry attachments.
// TestSIMDBase64 and FuzzSIMDBase64 hold it to encoding/base64.
func (d *b64dec) flush(l *leaf) {
	k := d.n / 4 * 4
	if k == 0 {
		return
	}
	n, err := simd64.StdEncoding.Decode(d.dst[:], d.buf[:k])
	if err != nil {
		d.filter()
		k = d.n / 4 * 4
		if k == 0 {
			return
		}
		n, _ = simd64.StdEncoding.Decode(d.dst[:], d.buf[:k]) // only alphabet characters now
	}
	l.emit(d.dst[:n])
	d.n = copy(d.buf[:], d.buf[k:d.n])
}

// tail decodes everything collected including a partial last quantum; a
// single leftover character is an error.
func (d *b64dec) tail(l *leaf) (bad bool) {
	d.flush(l)
	if d.n > 0 {
		// What is left may still hold unchecked bytes: filter it, and
		// decode the whole quanta that remain.
		d.filter()
		d.flush(l)
	}
	bad, d.bad = d.bad, false
	switch d.n {
	case 1:
		bad = true
	case 2, 3:
		n, _ := base64.RawStdEncoding.Decode(d.dst[:], d.buf[:d.n])
		l.emit(d.dst[:n])
	}
	d.n = 0
	return bad
}

func (d *b64dec) end(l *leaf) bool { return d.tail(l) }

// filter keeps only alphabet characters in the buffer.
func (d *b64dec) filter() {
	j := 0
	for _, c := range d.buf[:d.n] {
		switch {
		case b64valid[c]:
			d.buf[j] = c
			j++
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
		default:
			d.bad = true
		}
	}
	d.n = j
}
