package imap

import (
	"bytes"
	"io"
	"strings"

	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/internal/framing"
)

// Limits of the tokenizer.
const (
	// InlineMax is the largest literal kept in memory as part of its line.
	// Larger literals are streamed to a writer chosen by the caller, or
	// counted and dropped.
	InlineMax = 4 << 10
	// MaxDepth bounds the nesting of parenthesised lists.
	MaxDepth = 100
	// maxLiterals bounds the literals recorded for one logical line.
	maxLiterals = 10000
	// maxLiteralSize is the largest literal size accepted (RFC 3501
	// "number" is an unsigned 32-bit integer); larger is hostile.
	maxLiteralSize = 1<<32 - 1
)

// Kind is the kind of a token.
type Kind uint8

const (
	KindAtom    Kind = iota // atom, number, flag, fetch item (BODY[...]<n>)
	KindQuoted              // quoted string, unescaped
	KindLiteral             // literal {n}: Value holds inlined data, Lit describes it
	KindList                // parenthesised list: List holds its items
	KindNil                 // NIL
)

func (k Kind) String() string {
	return [...]string{"atom", "quoted", "literal", "list", "nil"}[k]
}

// Token is one element of a parsed IMAP line.
type Token struct {
	Kind  Kind
	Value string  // atom text, unescaped quoted string, inlined literal data
	List  []Token // items of a list
	Open  bool    // a list whose closing parenthesis was not seen (yet)
	Lit   *Literal
}

// String returns the token's string value: atom text, quoted string or
// literal data ("" for NIL and lists).
func (t Token) String() string { return t.Value }

// IsString reports whether t is an astring/nstring value (atom, quoted or
// literal).
func (t Token) IsString() bool {
	return t.Kind == KindAtom || t.Kind == KindQuoted || t.Kind == KindLiteral
}

// Literal describes one literal of a logical line.
type Literal struct {
	Size    int64
	NonSync bool // {n+} or {n-}
	Binary  bool // ~{n} (literal8)
	// Inline is true when the data is in Data (size <= InlineMax and no
	// writer was chosen for it).
	Inline bool
	Data   []byte
	// Streamed is true when the data went to a writer chosen at EvLiteral.
	Streamed bool
	// Received counts the bytes that arrived (less than Size after a gap
	// or when the connection ended inside the literal).
	Received int64
	// Gap is true when bytes of the literal were lost.
	Gap bool
	// Absent is true when the client never sent it (the server refused
	// the continuation).
	Absent bool
}

// Complete reports whether all of the literal's bytes arrived.
func (l *Literal) Complete() bool { return !l.Absent && !l.Gap && l.Received == l.Size }

// Line is one logical line: a text line plus the literals that continue
// it, up to the CRLF that is not preceded by a literal marker.
type Line struct {
	// Text is the line's text with the literal data left out (the markers
	// stay), segments joined. Valid until the next call on the Tokenizer.
	Text []byte
	// First is the first text segment (up to the first literal marker).
	First    []byte
	Tokens   []Token
	Literals []*Literal
	// Overflow is set when the line was longer than the limits and parts
	// of it were dropped.
	Overflow bool
	// Deep is set when list nesting went past MaxDepth.
	Deep bool
	// BareLF is set when a segment ended in LF without CR.
	BareLF bool
}

// Event is what Tokenizer.Next found.
type Event uint8

const (
	// EvMore: all input was consumed without completing anything.
	EvMore Event = iota
	// EvLine: a logical line is complete (Tokenizer.Line).
	EvLine
	// EvLiteral: a literal starts (Tokenizer.Pending describes the line so
	// far and Tokenizer.Literal the literal). Before the next call to Next
	// the caller may call StreamTo. For a client synchronizing literal the
	// tokenizer then waits (Awaiting) until Accept or Reject.
	EvLiteral
)

type tokState uint8

const (
	stText tokState = iota
	stLitStart
	stAwait
	stLiteral
	stDone
)

// Tokenizer is a push tokenizer for one direction of an IMAP connection.
// Feed it bytes with Next; it never blocks and keeps a bounded buffer.
// The zero value is not ready: use NewTokenizer.
type Tokenizer struct {
	// Server is set for the server-to-client direction: literals never
	// wait for a continuation, and status responses carry none.
	Server bool
	// Raw, when set, delivers the next lines without literal detection
	// (SASL exchanges).
	Raw bool
	// Recognize, when set and resyncing, is called with each candidate
	// line; lines it refuses are dropped until one is accepted.
	Recognize func(first []byte) bool
	// Anomaly, when set, receives anomaly kinds.
	Anomaly func(kind decode.Anomaly)

	max    int
	lines  framing.Lines
	state  tokState
	resync bool

	text  []byte
	first int // length of the first segment in text (-1: not yet)
	marks []mark
	lits  []*Literal
	kept  int64
	over  bool
	bare  bool

	cur    *Literal
	remain int64
	w      io.Writer
	line   Line
}

// mark is a literal marker in text: text[start:end] is "{n}" etc.
type mark struct {
	start, end int
	lit        *Literal
}

// NewTokenizer returns a tokenizer whose text lines are bounded by maxLine
// (<= 0: 64 KiB).
func NewTokenizer(server bool, maxLine int) *Tokenizer {
	if maxLine <= 0 {
		maxLine = 64 << 10
	}
	t := &Tokenizer{Server: server, max: maxLine, first: -1}
	t.lines.Max = maxLine
	return t
}

func (t *Tokenizer) anomaly(k decode.Anomaly) {
	if t.Anomaly != nil {
		t.Anomaly(k)
	}
}

// Resync makes the tokenizer drop what it holds and skip lines until
// Recognize accepts one (after a gap, or when a capture starts midstream).
func (t *Tokenizer) Resync() {
	t.lines.Reset()
	t.reset()
	t.resync = true
}

// Resyncing reports whether the tokenizer is skipping to a known line.
func (t *Tokenizer) Resyncing() bool { return t.resync }

func (t *Tokenizer) reset() {
	t.state = stText
	t.text = t.text[:0]
	t.first = -1
	t.marks = t.marks[:0]
	t.lits = nil
	t.kept = 0
	t.over = false
	t.bare = false
	t.cur = nil
	t.remain = 0
	t.w = nil
}

// Idle reports whether the tokenizer is between lines: the next byte it
// gets starts a new line.
func (t *Tokenizer) Idle() bool {
	return (t.state == stDone || t.state == stText && t.first < 0 && len(t.text) == 0) && t.lines.Pending() == 0
}

// Awaiting reports whether a client synchronizing literal waits for the
// server's decision (Accept or Reject).
func (t *Tokenizer) Awaiting() bool { return t.state == stAwait }

// InLiteral reports whether literal bytes are expected next.
func (t *Tokenizer) InLiteral() bool {
	return t.state == stLiteral || t.state == stLitStart || t.state == stAwait
}

// Literal returns the literal being read (after EvLiteral), or nil.
func (t *Tokenizer) Literal() *Literal { return t.cur }

// StreamTo sends the current literal's bytes to w instead of keeping
// them. Call it right after EvLiteral.
func (t *Tokenizer) StreamTo(w io.Writer) {
	if t.cur != nil && (t.state == stLitStart || t.state == stAwait) {
		t.w = w
		t.cur.Streamed = true
		t.cur.Inline = false
	}
}

// Accept tells an awaiting tokenizer that the server sent its
// continuation: the literal follows.
func (t *Tokenizer) Accept() {
	if t.state == stAwait {
		t.state = stLitStart
	}
}

// Reject tells an awaiting tokenizer that the server refused the
// literal: it never comes, and the logical line ends here. It returns
// the completed line (valid until the next call).
func (t *Tokenizer) Reject() *Line {
	if t.state != stAwait {
		return nil
	}
	t.cur.Absent = true
	t.cur.Inline = false
	t.cur.Streamed = false
	t.cur = nil
	t.w = nil
	t.finish()
	return &t.line
}

// Pending parses the logical line received so far, up to (without) the
// literal that is starting.
func (t *Tokenizer) Pending() *Line {
	l := &Line{Text: t.text, Literals: t.lits, Overflow: t.over}
	l.First = t.firstSeg()
	l.Tokens, l.Deep = parseTokens(t.text, t.marks)
	if t.cur != nil {
		l.Tokens = stripLiteral(l.Tokens, t.cur)
	}
	return l
}

// stripLiteral removes the token of lit from the end of toks (at the
// innermost open list).
func stripLiteral(toks []Token, lit *Literal) []Token {
	if len(toks) == 0 {
		return toks
	}
	last := &toks[len(toks)-1]
	if last.Kind == KindLiteral && last.Lit == lit {
		return toks[:len(toks)-1]
	}
	if last.Kind == KindList && last.Open {
		last.List = stripLiteral(last.List, lit)
	}
	return toks
}

func (t *Tokenizer) firstSeg() []byte {
	if t.first < 0 {
		return t.text
	}
	return t.text[:t.first]
}

// Line returns the line completed by the last EvLine.
func (t *Tokenizer) Line() *Line { return &t.line }

// Flush ends the input: a literal or line cut short is completed as far
// as it went and returned (nil if nothing was pending).
func (t *Tokenizer) Flush() *Line {
	if t.lines.Overflowing() {
		t.anomaly(decode.AnomalyLineTooLong) // a long line the close cut
	}
	switch t.state {
	case stDone:
		return nil
	case stLiteral, stLitStart, stAwait:
		if t.cur != nil {
			if t.state == stAwait {
				t.cur.Absent = true
			}
			t.cur.Inline = t.cur.Inline && t.cur.Received == t.cur.Size
		}
	default:
		if t.first < 0 {
			return nil
		}
	}
	if t.resync {
		return nil
	}
	t.finish()
	t.lines.Reset()
	return &t.line
}

// Gap reports n bytes lost (n < 0: unknown). Inside a literal of at
// least n remaining bytes the literal is marked and reading goes on;
// otherwise the tokenizer resynchronises. It reports whether the gap
// fell inside a literal.
func (t *Tokenizer) Gap(n int) bool {
	if t.state == stLiteral || t.state == stLitStart {
		if n >= 0 && int64(n) <= t.remain {
			t.remain -= int64(n)
			t.cur.Gap = true
			t.cur.Inline = false
			if t.state == stLitStart {
				t.state = stLiteral
			}
			return true
		}
	}
	t.Resync()
	return false
}

// Next consumes bytes from p until an event, returning it and the number
// of bytes consumed. With EvMore all of p was consumed. While Awaiting it
// consumes nothing.
func (t *Tokenizer) Next(p []byte) (Event, int) {
	if t.state == stDone {
		t.reset()
	}
	n := 0
	for {
		switch t.state {
		case stAwait:
			return EvMore, n
		case stLitStart:
			t.state = stLiteral
			continue
		case stLiteral:
			if t.remain > 0 {
				if n == len(p) {
					return EvMore, n
				}
				k := int64(len(p) - n)
				if k > t.remain {
					k = t.remain
				}
				chunk := p[n : n+int(k)]
				n += int(k)
				t.remain -= k
				t.cur.Received += k
				if t.w != nil {
					t.w.Write(chunk)
				} else if t.cur.Inline {
					t.cur.Data = append(t.cur.Data, chunk...)
				}
			}
			if t.remain == 0 {
				t.cur = nil
				t.w = nil
				t.state = stText
			}
			continue
		}
		if n == len(p) {
			return EvMore, n
		}
		ln, k, ok := t.lines.Next(p[n:])
		n += k
		if !ok {
			return EvMore, n
		}
		if ev, done := t.segment(ln); done {
			return ev, n
		}
	}
}

// segment handles one complete text segment.
func (t *Tokenizer) segment(ln framing.Line) (Event, bool) {
	seg := ln.Text
	if t.resync {
		if t.Recognize != nil && !t.Recognize(seg) {
			return EvMore, false
		}
		t.resync = false
		t.reset()
	}
	if ln.Overflow {
		t.anomaly(decode.AnomalyLineTooLong)
		t.over = true
	}
	if !ln.CRLF {
		t.bare = true
	}
	firstSeg := t.first < 0
	start := len(t.text)
	orig := seg
	if t.kept+int64(len(seg)) > int64(2*t.max) {
		if !t.over {
			t.anomaly(decode.AnomalyLineTooLong)
		}
		t.over = true
		seg = nil
	}
	t.text = append(t.text, seg...)
	t.kept += int64(len(seg))
	if firstSeg {
		t.first = len(t.text)
	}
	if t.Raw || ln.Overflow || (t.Server && firstSeg && isStatusLine(seg)) {
		t.finish()
		return EvLine, true
	}
	m, ok := ParseLiteralSuffix(orig)
	if !ok {
		t.finish()
		return EvLine, true
	}
	if m.Invalid {
		t.anomaly(decode.AnomalyLiteralSizeInvalid)
		t.finish()
		return EvLine, true
	}
	lit := &Literal{Size: m.Size, NonSync: m.NonSync, Binary: m.Binary, Inline: m.Size <= InlineMax}
	if len(t.lits) >= maxLiterals {
		if len(t.lits) == maxLiterals {
			t.anomaly(decode.AnomalyTooManyLiterals)
			t.over = true
		}
		lit.Inline = false
	} else if seg != nil {
		t.lits = append(t.lits, lit)
		t.marks = append(t.marks, mark{start: start + m.Start, end: start + len(seg), lit: lit})
	} else {
		lit.Inline = false
	}
	if lit.Inline {
		if t.kept+lit.Size > int64(4*t.max) {
			lit.Inline = false
			t.over = true
		} else {
			t.kept += lit.Size
			lit.Data = make([]byte, 0, int(lit.Size))
		}
	}
	t.cur = lit
	t.remain = lit.Size
	t.w = nil
	if !t.Server && !lit.NonSync {
		t.state = stAwait
	} else {
		t.state = stLitStart
	}
	return EvLiteral, true
}

func (t *Tokenizer) finish() {
	t.line = Line{Text: t.text, Literals: t.lits, Overflow: t.over, BareLF: t.bare}
	t.line.First = t.firstSeg()
	t.line.Tokens, t.line.Deep = parseTokens(t.text, t.marks)
	if t.line.Deep {
		t.anomaly(decode.AnomalyListTooDeep)
	}
	t.state = stDone
}

// isStatusLine reports whether a server line is a status response or a
// continuation request, whose text is free and carries no literal.
func isStatusLine(seg []byte) bool {
	if len(seg) > 0 && seg[0] == '+' {
		return true
	}
	sp := bytes.IndexByte(seg, ' ')
	if sp < 0 {
		return false
	}
	rest := seg[sp+1:]
	if e := bytes.IndexByte(rest, ' '); e >= 0 {
		rest = rest[:e]
	}
	switch strings.ToUpper(string(rest)) {
	case "OK", "NO", "BAD", "BYE", "PREAUTH":
		return true
	}
	return false
}

// parseTokens parses text (with literal markers at marks) into tokens.
// It never fails: malformed input yields best-effort tokens. deep reports
// nesting past MaxDepth (deeper parentheses are flattened).
func parseTokens(text []byte, marks []mark) (toks []Token, deep bool) {
	type frame struct {
		items []Token
	}
	stack := []frame{{}}
	extra := 0 // unmatched '(' past MaxDepth
	mi := 0
	i := 0
	for i < len(text) {
		for mi < len(marks) && marks[mi].start < i {
			mi++
		}
		c := text[i]
		top := &stack[len(stack)-1]
		switch {
		case mi < len(marks) && marks[mi].start == i:
			l := marks[mi].lit
			tok := Token{Kind: KindLiteral, Lit: l}
			if l.Inline && !l.Absent {
				tok.Value = string(l.Data)
			}
			top.items = append(top.items, tok)
			i = marks[mi].end
			mi++
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '(':
			i++
			if len(stack) > MaxDepth {
				deep = true
				extra++
				continue
			}
			stack = append(stack, frame{})
		case c == ')':
			i++
			if extra > 0 {
				extra--
				continue
			}
			if len(stack) == 1 {
				continue // stray
			}
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			p := &stack[len(stack)-1]
			p.items = append(p.items, Token{Kind: KindList, List: f.items})
		case c == '"':
			var sb strings.Builder
			i++
			for i < len(text) && text[i] != '"' {
				if text[i] == '\\' && i+1 < len(text) {
					i++
				}
				sb.WriteByte(text[i])
				i++
			}
			i++ // closing quote
			top.items = append(top.items, Token{Kind: KindQuoted, Value: sb.String()})
		default:
			start := i
			bracket := 0
			for i < len(text) {
				if mi < len(marks) && marks[mi].start == i {
					break
				}
				c := text[i]
				if c == '[' {
					bracket++
				} else if c == ']' && bracket > 0 {
					bracket--
				} else if bracket == 0 && (c == ' ' || c == '(' || c == ')') {
					break
				}
				i++
			}
			v := string(text[start:i])
			if strings.EqualFold(v, "NIL") {
				top.items = append(top.items, Token{Kind: KindNil, Value: v})
			} else {
				top.items = append(top.items, Token{Kind: KindAtom, Value: v})
			}
		}
	}
	for len(stack) > 1 {
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		p := &stack[len(stack)-1]
		p.items = append(p.items, Token{Kind: KindList, List: f.items, Open: true})
	}
	return stack[0].items, deep
}
