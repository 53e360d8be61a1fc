package replay

import (
	"bytes"

	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/imap"
	"github.com/mailtap/mailtap/decode/pop3"
)

// A framer counts complete server responses in a byte stream, so the
// driver knows when the replayed server has answered a turn as fully as
// the captured server had: the captured turn's server bytes give the
// count to wait for, the live bytes are read until that count is reached.
// client tells it what the client sent (POP3 needs the verbs to know which
// answers are multi-line); server returns the running count of responses.
type framer interface {
	client(p []byte)
	server(p []byte) int
}

func newFramer(p decode.Proto) framer {
	switch p {
	case decode.ProtoSMTP:
		return &smtpFramer{}
	case decode.ProtoPOP3:
		return &pop3Framer{}
	case decode.ProtoIMAP:
		return &imapFramer{}
	}
	return nil
}

// lineBuf collects one line at a time from pushed bytes. A long line keeps
// its first 64 and last 32 bytes: enough for a status and a literal marker.
type lineBuf struct {
	cur []byte
}

const lineHead, lineTail, lineMax = 64, 32, 4096

// next appends bytes from p up to and including the first LF. It returns
// how many bytes it took and whether a line is complete (then in l.cur).
func (l *lineBuf) next(p []byte) (int, bool) {
	i := bytes.IndexByte(p, '\n')
	n, done := len(p), false
	if i >= 0 {
		n, done = i+1, true
	}
	l.cur = append(l.cur, p[:n]...)
	if len(l.cur) > lineMax {
		copy(l.cur[lineHead:], l.cur[len(l.cur)-lineTail:])
		l.cur = l.cur[:lineHead+lineTail]
	}
	return n, done
}

// smtpFramer counts final reply lines: three digits then a space (or
// nothing).
type smtpFramer struct {
	l lineBuf
	n int
}

func (f *smtpFramer) client([]byte) {}

func (f *smtpFramer) server(p []byte) int {
	for len(p) > 0 {
		k, done := f.l.next(p)
		p = p[k:]
		if !done {
			break
		}
		if isFinalReply(f.l.cur) {
			f.n++
		}
		f.l.cur = f.l.cur[:0]
	}
	return f.n
}

func isFinalReply(line []byte) bool {
	line = bytes.TrimRight(line, "\r\n")
	if len(line) < 3 || !isDigit(line[0]) || !isDigit(line[1]) || !isDigit(line[2]) {
		return false
	}
	return len(line) == 3 || line[3] == ' '
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// pop3Framer counts status lines and "+ " continuations; a +OK to a
// command whose positive answer is multi-line counts when its "." line
// arrives.
type pop3Framer struct {
	cl      lineBuf
	sl      lineBuf
	pending []bool // per client line not yet answered: multi-line on +OK
	inBody  bool
	n       int
}

const maxPending = 10000

func (f *pop3Framer) client(p []byte) {
	for len(p) > 0 {
		k, done := f.cl.next(p)
		p = p[k:]
		if !done {
			break
		}
		if len(f.pending) < maxPending {
			verb, args, ok := pop3.ParseCommand(bytes.TrimRight(f.cl.cur, "\r\n"))
			f.pending = append(f.pending, ok && pop3.MultiLine(verb, args))
		}
		f.cl.cur = f.cl.cur[:0]
	}
}

func (f *pop3Framer) server(p []byte) int {
	for len(p) > 0 {
		k, done := f.sl.next(p)
		p = p[k:]
		if !done {
			break
		}
		line := f.sl.cur
		switch {
		case f.inBody:
			if t := bytes.TrimRight(line, "\r\n"); len(t) == 1 && t[0] == '.' {
				f.inBody = false
				f.n++
			}
		case bytes.HasPrefix(line, []byte("+OK")), bytes.HasPrefix(line, []byte("-ERR")):
			multi := false
			if len(f.pending) > 0 {
				multi = f.pending[0]
				f.pending = f.pending[1:]
			}
			if multi && line[0] == '+' {
				f.inBody = true
			} else {
				f.n++
			}
		case bytes.HasPrefix(line, []byte("+")):
			// A SASL continuation answers the AUTH line; the client's
			// response lines are single-line commands for this count.
			if len(f.pending) > 0 {
				f.pending = f.pending[1:]
			}
			f.n++
		}
		f.sl.cur = f.sl.cur[:0]
	}
	return f.n
}

// imapFramer counts tagged completions and continuation requests, and the
// first line before the client said anything (the greeting). Literals in
// server lines are skipped so a message body never counts.
type imapFramer struct {
	l       lineBuf
	skip    int64 // literal bytes still to skip
	first   []byte
	cont    bool // the logical line continues after a literal
	clientN int64
	n       int
}

func (f *imapFramer) client(p []byte) { f.clientN += int64(len(p)) }

func (f *imapFramer) server(p []byte) int {
	for len(p) > 0 {
		if f.skip > 0 {
			k := int64(len(p))
			if k > f.skip {
				k = f.skip
			}
			f.skip -= k
			p = p[k:]
			continue
		}
		k, done := f.l.next(p)
		p = p[k:]
		if !done {
			break
		}
		line := f.l.cur
		if !f.cont {
			f.first = append(f.first[:0], line[:min(len(line), 8)]...)
		}
		// The decoder's literal grammar; an invalid size announces no
		// data, the decoder ends the line there and so does the count.
		if m, ok := imap.ParseLiteralSuffix(line); ok && !m.Invalid {
			f.skip, f.cont = m.Size, true
		} else {
			f.cont = false
			switch {
			case f.clientN == 0 && f.n == 0:
				f.n++ // greeting
			case len(f.first) > 0 && f.first[0] == '+':
				f.n++
			case len(f.first) > 0 && f.first[0] != '*':
				f.n++
			}
		}
		f.l.cur = f.l.cur[:0]
	}
	return f.n
}
