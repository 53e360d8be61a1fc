// Package framing holds the push framers shared by the line protocols:
// a bounded line splitter and a counted-chunk reader.
package framing

import "bytes"

// Lines splits a pushed byte stream into lines ending in LF (the CR before
// it, if any, is kept off the line and reported). A line longer than Max is
// delivered in pieces: the first piece with Overflow set, then nothing more
// of that line until its LF (the rest is counted in Dropped).
//
// The zero value with Max set is ready. Not safe for concurrent use.
type Lines struct {
	Max int // maximum line length kept; <= 0 means 64 KiB

	buf      []byte
	skipping bool // discarding the rest of an over-long line
	dropped  int64
	lastCR   bool // while skipping: the last byte seen was CR
}

// Line is one framed line.
type Line struct {
	// Text is the line without its terminator. Valid only until the next
	// call on the Lines.
	Text []byte
	// CRLF is true when the line ended in CRLF, false for a bare LF.
	CRLF bool
	// Overflow is true when the line was longer than Max; Text holds its
	// first Max bytes and Dropped how many more were discarded.
	Overflow bool
	Dropped  int64
}

func (l *Lines) max() int {
	if l.Max <= 0 {
		return 64 << 10
	}
	return l.Max
}

// Next consumes bytes from p until one line is complete, returning the line,
// the number of bytes of p consumed and ok=true; or ok=false when all of p
// was consumed (buffered) without completing a line. The result does not
// depend on how the stream is cut into calls.
func (l *Lines) Next(p []byte) (line Line, n int, ok bool) {
	m := l.max()
	i := bytes.IndexByte(p, '\n')
	chunk := p
	if i >= 0 {
		chunk = p[:i]
	}
	switch {
	case l.skipping:
		l.dropped += int64(len(chunk))
		if len(chunk) > 0 {
			l.lastCR = chunk[len(chunk)-1] == '\r'
		}
	case len(l.buf) == 0 && i >= 0 && len(chunk) <= m+1:
		// The whole line is in p: no copy.
		return l.finish(chunk), i + 1, true
	default:
		// Keep up to m content bytes plus a possible CR.
		room := m + 1 - len(l.buf)
		if len(chunk) <= room {
			l.buf = append(l.buf, chunk...)
		} else {
			l.buf = append(l.buf, chunk[:room]...)
			l.skipping = true
			l.dropped = int64(len(chunk) - room)
			l.lastCR = chunk[len(chunk)-1] == '\r'
		}
	}
	if i < 0 {
		return Line{}, len(p), false
	}
	if l.skipping {
		// buf holds m+1 bytes that all precede more content.
		total := int64(len(l.buf)) + l.dropped
		line = Line{Text: l.buf[:m], Overflow: true}
		if l.lastCR {
			total--
			line.CRLF = true
		}
		line.Dropped = total - int64(m)
	} else {
		line = l.finish(l.buf)
	}
	l.buf = l.buf[:0]
	l.skipping, l.dropped, l.lastCR = false, 0, false
	return line, i + 1, true
}

// finish frames raw, one line without its LF and at most m+1 bytes long.
func (l *Lines) finish(raw []byte) Line {
	line := Line{Text: raw}
	if len(raw) > 0 && raw[len(raw)-1] == '\r' {
		line.Text, line.CRLF = raw[:len(raw)-1], true
	}
	if m := l.max(); len(line.Text) > m {
		line.Dropped = int64(len(line.Text) - m)
		line.Text, line.Overflow = line.Text[:m], true
	}
	return line
}

// Pending reports how many bytes of an incomplete line are buffered.
func (l *Lines) Pending() int { return len(l.buf) }

// Overflowing reports whether the line being collected, whose end has not
// come yet, is already longer than Max. A decoder closing the connection
// asks it: such a line is line_too_long though it never ended.
func (l *Lines) Overflowing() bool {
	m := l.max()
	return l.skipping || len(l.buf) > m+1 || len(l.buf) == m+1 && l.buf[m] != '\r'
}

// Reset discards any partial line (after a gap, for instance).
func (l *Lines) Reset() {
	l.buf = l.buf[:0]
	l.skipping = false
	l.dropped = 0
	l.lastCR = false
}
