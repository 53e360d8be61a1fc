package framing

import "bytes"

// Dot decodes an RFC 5321 §4.5.2 dot-stuffed block (SMTP DATA content, POP3
// multi-line responses) pushed in arbitrary pieces. The block ends only at
// CRLF "." CRLF (or at "." CRLF as its very first line). A line "." ended by
// a bare LF, or a bare-LF line end before ".", is not an end: it is flagged
// in BareLFDot and the bytes are passed through as content, as go-smtp does,
// so the decoder never ends DATA where the receiving server would not.
//
// The zero value is ready for a new block.
type Dot struct {
	state     dotState
	BareLFDot bool // a "." line with a bare LF was seen (smuggling attempt)
	bytewise  bool // tests: no fast path, every byte through the state machine
}

// dataTail is the state after p[lo:k] entered in state dotData (inside a
// line, after a byte that is neither CR nor LF) when p[lo:k] holds no
// ".": only the last two bytes can tell a line end from the inside of a
// line.
func dataTail(p []byte, lo, k int) dotState {
	if k == lo {
		return dotData
	}
	switch p[k-1] {
	case '\n':
		if k-2 >= lo && p[k-2] == '\r' {
			return dotBeginLine
		}
		return dotBareLF
	case '\r':
		return dotCR
	}
	return dotData
}

type dotState uint8

const (
	dotBeginLine dotState = iota // at the start of a line; initial state; must be zero
	dotDot                       // "." at the start of a line
	dotDotCR                     // "." CR at the start of a line
	dotCR                        // CR inside a line
	dotData                      // inside a line
)

// Feed decodes p. It calls out with unstuffed content (possibly several
// times; slices alias p or a static buffer and are valid only during the
// call) and returns the number of bytes of p consumed and whether the end
// marker was reached (then the rest of p, p[n:], belongs to what follows).
func (d *Dot) Feed(p []byte, out func([]byte)) (n int, done bool) {
	start := 0 // start of pending content run in p
	flush := func(end int) {
		if end > start {
			out(p[start:end])
		}
	}
	for i := 0; i < len(p); i++ {
		if d.state == dotData && !d.bytewise {
			// Fast path: inside a line, only a "." at the start of a
			// line matters, so find the next "." with the vectorised
			// search (base64 has none; text far fewer than line ends).
			// The state at it, or at the end of p, follows from the
			// two bytes before.
			j := bytes.IndexByte(p[i:], '.')
			if j < 0 {
				d.state = dataTail(p, i, len(p))
				break
			}
			k := i + j
			if st := dataTail(p, i, k); st != dotData {
				d.state = st
				i = k - 1 // the switch below takes the "."
				continue
			}
			i = k // a "." inside a line is content
			continue
		}
		c := p[i]
		switch d.state {
		case dotBeginLine:
			if c == '.' {
				flush(i)
				start = i + 1 // drop the stuffing dot (or the end dot)
				d.state = dotDot
				continue
			}
			d.state = dotData
			if c == '\r' {
				d.state = dotCR
			} else if c == '\n' {
				// An empty line ended by a bare LF: a "." after it is
				// not at the start of a CRLF line.
				d.state = dotBareLF
			}
		case dotDot:
			switch c {
			case '\r':
				// Maybe the end: hold the CR.
				flush(i)
				start = i + 1
				d.state = dotDotCR
			case '\n':
				// "." LF: not an end in strict mode. Emit it as content.
				d.BareLFDot = true
				out(dotLF[:])
				start = i + 1
				d.state = dotBareLF
			default:
				d.state = dotData
			}
		case dotDotCR:
			if c == '\n' {
				d.state = dotBeginLine
				return i + 1, true
			}
			// "." CR x: content "." was the stuffing dot; CR is content.
			out(cr[:])
			start = i
			d.state = dotData
			i-- // re-read c in data state
			continue
		case dotCR:
			switch c {
			case '\n':
				d.state = dotBeginLine
			case '\r':
				d.state = dotCR
			default:
				d.state = dotData
			}
		case dotData:
			switch c {
			case '\r':
				d.state = dotCR
			case '\n':
				// Bare LF ends a line for stuffing purposes but a "."
				// after it is flagged, never an end.
				d.state = dotBareLF
			}
		case dotBareLF:
			if c == '.' {
				// Look at what follows: a smuggling-style end.
				d.BareLFDot = true
			}
			d.state = dotData
			if c == '\r' {
				d.state = dotCR
			} else if c == '\n' {
				d.state = dotBareLF
			}
		}
	}
	flush(len(p))
	return len(p), false
}

const dotBareLF dotState = 100

var (
	dotLF = [2]byte{'.', '\n'}
	cr    = [1]byte{'\r'}
)
