package imapd

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// maxDepth bounds parenthesised nesting in commands (SEARCH, FETCH lists).
const maxDepth = 32

// parser tokenizes one complete command: the wire bytes of the command line
// with its literals inlined exactly as sent ("{3}\r\nabc"). Errors are
// sticky: after the first one every method returns false.
type parser struct {
	b   []byte
	pos int
	err error
}

type syntaxError struct{ msg string }

func (e *syntaxError) Error() string { return e.msg }

func (p *parser) fail(format string, args ...any) bool {
	if p.err == nil {
		p.err = &syntaxError{fmt.Sprintf(format, args...)}
	}
	return false
}

func (p *parser) eof() bool { return p.pos >= len(p.b) }

func (p *parser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.b[p.pos]
}

func (p *parser) consume(c byte) bool {
	if p.err == nil && p.peek() == c && !p.eof() {
		p.pos++
		return true
	}
	return false
}

func (p *parser) expect(c byte) bool {
	if p.consume(c) {
		return true
	}
	return p.fail("expected %q at %d", c, p.pos)
}

func (p *parser) sp() bool { return p.expect(' ') }

// end expects the end of the command (a trailing space is tolerated).
func (p *parser) end() bool {
	if p.err != nil {
		return false
	}
	p.consume(' ')
	if !p.eof() {
		return p.fail("unexpected %q at end of command", p.rest(16))
	}
	return true
}

func (p *parser) rest(n int) string {
	r := p.b[p.pos:]
	if len(r) > n {
		r = r[:n]
	}
	return string(r)
}

func isAtomChar(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return c >= 0x80 // UTF-8 in atoms is tolerated (UTF8=ACCEPT)
	}
	return !strings.ContainsRune(`(){%*"\]`, rune(c))
}

// atom reads an atom; extra chars (like ']' or '%*') can be allowed.
func (p *parser) atomWith(extra string) (string, bool) {
	if p.err != nil {
		return "", false
	}
	start := p.pos
	for !p.eof() {
		c := p.b[p.pos]
		if !isAtomChar(c) && !strings.ContainsRune(extra, rune(c)) {
			break
		}
		p.pos++
	}
	if p.pos == start {
		return "", p.fail("expected atom at %d", p.pos)
	}
	return string(p.b[start:p.pos]), true
}

func (p *parser) atom() (string, bool) { return p.atomWith("") }

func (p *parser) number() (uint32, bool) {
	s, ok := p.atom()
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, p.fail("bad number %q", s)
	}
	return uint32(n), true
}

// literal reads "{N}", "{N+}" or "{N-}" CRLF and N bytes (readCommand
// has already framed it with decode/imap's ParseLiteralSuffix).
func (p *parser) literal() ([]byte, bool) {
	if !p.expect('{') {
		return nil, false
	}
	start := p.pos
	for !p.eof() && p.peek() >= '0' && p.peek() <= '9' {
		p.pos++
	}
	n, err := strconv.Atoi(string(p.b[start:p.pos]))
	if err != nil {
		return nil, p.fail("bad literal size")
	}
	if !p.consume('+') {
		p.consume('-')
	}
	if !p.expect('}') || !p.expect('\r') || !p.expect('\n') {
		return nil, false
	}
	if len(p.b)-p.pos < n {
		return nil, p.fail("literal truncated")
	}
	lit := p.b[p.pos : p.pos+n]
	p.pos += n
	return lit, true
}

func (p *parser) quoted() (string, bool) {
	if !p.expect('"') {
		return "", false
	}
	var sb strings.Builder
	for {
		if p.eof() {
			return "", p.fail("unterminated quoted string")
		}
		c := p.b[p.pos]
		p.pos++
		switch c {
		case '"':
			return sb.String(), true
		case '\\':
			if p.eof() {
				return "", p.fail("unterminated quoted string")
			}
			sb.WriteByte(p.b[p.pos])
			p.pos++
		case '\r', '\n':
			return "", p.fail("newline in quoted string")
		default:
			sb.WriteByte(c)
		}
	}
}

// str reads a quoted string or a literal.
func (p *parser) str() (string, bool) {
	if p.err != nil {
		return "", false
	}
	switch p.peek() {
	case '"':
		return p.quoted()
	case '{':
		b, ok := p.literal()
		return string(b), ok
	case '~':
		p.pos++
		b, ok := p.literal()
		return string(b), ok
	}
	return "", p.fail("expected string at %d", p.pos)
}

// astring reads an atom (']' allowed), a quoted string or a literal.
func (p *parser) astring() (string, bool) {
	if p.err != nil {
		return "", false
	}
	if c := p.peek(); c == '"' || c == '{' || c == '~' {
		return p.str()
	}
	return p.atomWith("]")
}

// listMailbox reads a LIST pattern: like astring, also with % and *.
func (p *parser) listMailbox() (string, bool) {
	if c := p.peek(); c == '"' || c == '{' {
		return p.str()
	}
	return p.atomWith("]%*")
}

// nilOrString reads NIL or a string.
func (p *parser) nstring() (string, bool, bool) {
	if p.peek() == 'N' || p.peek() == 'n' {
		a, ok := p.atom()
		if ok && strings.EqualFold(a, "NIL") {
			return "", true, true
		}
		return "", false, p.fail("expected NIL")
	}
	s, ok := p.str()
	return s, false, ok
}

// flagList reads "(" flag *(SP flag) ")".
func (p *parser) flagList() ([]string, bool) {
	if !p.expect('(') {
		return nil, false
	}
	var flags []string
	for !p.consume(')') {
		if len(flags) > 0 && !p.sp() {
			return nil, false
		}
		f, ok := p.flag()
		if !ok {
			return nil, false
		}
		flags = append(flags, f)
	}
	return flags, true
}

func (p *parser) flag() (string, bool) {
	if p.consume('\\') {
		if p.consume('*') {
			return `\*`, true
		}
		a, ok := p.atom()
		return `\` + a, ok
	}
	return p.atom()
}

// seqRange is one range of a sequence set; 0 stands for "*".
type seqRange struct{ lo, hi uint32 }

// seqSet is a parsed sequence set; "$" (SEARCHRES) is not supported.
type seqSet []seqRange

func (p *parser) seqSet() (seqSet, bool) {
	s, ok := p.atomWith("*")
	if !ok {
		return nil, false
	}
	set, err := parseSeqSet(s)
	if err != nil {
		return nil, p.fail("%v", err)
	}
	return set, true
}

func parseSeqSet(s string) (seqSet, error) {
	var set seqSet
	for _, part := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(part, ":")
		lo, err := seqNum(a)
		if err != nil {
			return nil, err
		}
		hi := lo
		if isRange {
			if hi, err = seqNum(b); err != nil {
				return nil, err
			}
		}
		set = append(set, seqRange{lo, hi})
	}
	return set, nil
}

func seqNum(s string) (uint32, error) {
	if s == "*" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, errors.New("bad sequence set")
	}
	return uint32(n), nil
}

// contains reports whether n is in the set, where "*" stands for star.
func (set seqSet) contains(n, star uint32) bool {
	for _, r := range set {
		lo, hi := r.lo, r.hi
		if lo == 0 {
			lo = star
		}
		if hi == 0 {
			hi = star
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		if n >= lo && n <= hi {
			return true
		}
	}
	return false
}

const dateTimeLayout = "02-Jan-2006 15:04:05 -0700"

// dateTime reads a quoted date-time ("d-Mon-yyyy hh:mm:ss +zzzz").
func (p *parser) dateTime() (time.Time, bool) {
	s, ok := p.quoted()
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(dateTimeLayout, strings.TrimLeft(s, " "))
	if err != nil {
		if t, err = time.Parse("2-Jan-2006 15:04:05 -0700", strings.TrimLeft(s, " ")); err != nil {
			return time.Time{}, p.fail("bad date-time %q", s)
		}
	}
	return t, true
}

// date reads a search date ("d-Mon-yyyy", optionally quoted).
func (p *parser) date() (time.Time, bool) {
	var s string
	var ok bool
	if p.peek() == '"' {
		s, ok = p.quoted()
	} else {
		s, ok = p.atom()
	}
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse("2-Jan-2006", s)
	if err != nil {
		return time.Time{}, p.fail("bad date %q", s)
	}
	return t, true
}

// quote returns s as an IMAP quoted string, or as a literal when it cannot
// be quoted.
func quote(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\r' || c == '\n' || c == 0 || c >= 0x80 {
			return fmt.Sprintf("{%d}\r\n%s", len(s), s)
		}
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

func nilOr(s string) string {
	if s == "" {
		return "NIL"
	}
	return quote(s)
}
