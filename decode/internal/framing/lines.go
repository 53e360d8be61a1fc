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
// was consumed (buffered) without completing a line.
func (l *Lines) Next(p []byte) (line Line, n int, ok bool) {
	i := bytes.IndexByte(p, '\n')
	if l.skipping {
		if i < 0 {
			l.dropped += int64(len(p))
			return Line{}, len(p), false
		}
		l.dropped += int64(i)
		line = Line{Text: l.buf, Overflow: true, Dropped: l.dropped, CRLF: i > 0 && p[i-1] == '\r'}
		l.skipping = false
		l.dropped = 0
		l.buf = l.buf[:0]
		return line, i + 1, true
	}
	if i < 0 {
		room := l.max() - len(l.buf)
		if len(p) <= room {
			l.buf = append(l.buf, p...)
			return Line{}, len(p), false
		}
		// Over-long: keep Max bytes, skip until LF.
		l.buf = append(l.buf, p[:room]...)
		l.skipping = true
		l.dropped = int64(len(p) - room)
		return Line{}, len(p), false
	}
	var text []byte
	if len(l.buf) == 0 {
		text = p[:i]
	} else {
		l.buf = append(l.buf, p[:i]...)
		text = l.buf
	}
	over := false
	var dropped int64
	if len(text) > l.max()+1 { // +1: room for a CR that is stripped below
		dropped = int64(len(text) - l.max())
		text = text[:l.max()]
		over = true
	}
	crlf := false
	if !over && len(text) > 0 && text[len(text)-1] == '\r' {
		text = text[:len(text)-1]
		crlf = true
	} else if over {
		crlf = p[i-1] == '\r' || (i == 0 && len(l.buf) > 0 && l.buf[len(l.buf)-1] == '\r')
	}
	l.buf = l.buf[:0]
	return Line{Text: text, CRLF: crlf, Overflow: over, Dropped: dropped}, i + 1, true
}

// Pending reports how many bytes of an incomplete line are buffered.
func (l *Lines) Pending() int { return len(l.buf) }

// Reset discards any partial line (after a gap, for instance).
func (l *Lines) Reset() {
	l.buf = l.buf[:0]
	l.skipping = false
	l.dropped = 0
}
