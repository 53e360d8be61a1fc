// Package textsafe makes strings from the wire safe to show to a person.
//
// mailtap reads hostile traffic by design: a Subject, a HELO argument or a
// mailbox name may carry terminal escape sequences, carriage returns that
// overwrite a line, bidi overrides that reorder it, or zero-width
// characters that hide text. Every human-facing renderer (text output,
// the credentials table, the TUI, serve and replay logs, error messages
// that quote wire data) passes such strings through String or Quote, so
// there is one rule for all of them:
//
//   - control characters (Unicode Cc: C0 U+0000–U+001F, DEL U+007F, C1
//     U+0080–U+009F) become \t, \n, \r or \xNN for the C0 range and DEL,
//     \u0085 style for C1;
//   - format characters (Unicode Cf: bidi embeddings, overrides and
//     isolates U+202A–U+202E, U+2066–U+2069, marks U+200E, U+200F, U+061C,
//     zero-width U+200B–U+200D, U+2060, U+FEFF, soft hyphen, tag
//     characters, ...) and the line and paragraph separators U+2028, U+2029
//     become \uXXXX (\UXXXXXXXX above the BMP);
//   - each byte of invalid UTF-8 becomes \xNN.
//
// Everything else, including printable non-ASCII text and backslashes, is
// kept as is. JSON output needs none of this: encoding/json escapes.
package textsafe

import (
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Unsafe reports whether r would be escaped by String.
func Unsafe(r rune) bool {
	if r < 0x80 {
		return r < 0x20 || r == 0x7f
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp)
}

// String returns s with every unsafe rune and invalid UTF-8 byte replaced
// by a visible escape. A string with nothing to escape is returned as is.
func String(s string) string {
	i := firstUnsafe(s)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	escape(&b, s[i:], false)
	return b.String()
}

// Quote returns s in double quotes, escaped as String does and with `"`
// and `\` also escaped, for fields whose limits must be unambiguous (an
// authentication user, an attachment file name).
func Quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	escape(&b, s, true)
	b.WriteByte('"')
	return b.String()
}

// Strings applies String to each element, returning a new slice.
func Strings(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = String(s)
	}
	return out
}

// firstUnsafe is the byte offset of the first thing String escapes, or -1.
func firstUnsafe(s string) int {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return i
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || Unsafe(r) {
			return i
		}
		i += n
	}
	return -1
}

const hexdigits = "0123456789abcdef"

func escape(b *strings.Builder, s string, quote bool) {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case c == '\t':
				b.WriteString(`\t`)
			case c == '\n':
				b.WriteString(`\n`)
			case c == '\r':
				b.WriteString(`\r`)
			case c < 0x20 || c == 0x7f:
				b.WriteString(`\x`)
				b.WriteByte(hexdigits[c>>4])
				b.WriteByte(hexdigits[c&0xf])
			case quote && (c == '"' || c == '\\'):
				b.WriteByte('\\')
				b.WriteByte(c)
			default:
				b.WriteByte(c)
			}
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\x`)
			b.WriteByte(hexdigits[c>>4])
			b.WriteByte(hexdigits[c&0xf])
		case Unsafe(r) && r > 0xffff:
			b.WriteString(`\U`)
			writeHex(b, uint32(r), 8)
		case Unsafe(r):
			b.WriteString(`\u`)
			writeHex(b, uint32(r), 4)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
}

func writeHex(b *strings.Builder, v uint32, digits int) {
	for shift := (digits - 1) * 4; shift >= 0; shift -= 4 {
		b.WriteByte(hexdigits[(v>>uint(shift))&0xf])
	}
}

// Check describes the first thing in s that String would have escaped
// (`U+001B at byte 5`, `invalid UTF-8 at byte 9`), or returns "" when
// there is none. Tests use it to assert that output is safe.
func Check(s string) string {
	i := firstUnsafe(s)
	if i < 0 {
		return ""
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && n == 1 {
		return fmt.Sprintf("invalid UTF-8 at byte %d", i)
	}
	return fmt.Sprintf("U+%04X at byte %d", r, i)
}

// AppendJSON appends encoded JSON src to dst with the runes String would
// escape, that encoding/json leaves raw (DEL, C1 controls, bidi and
// zero-width characters), written as \uXXXX escapes (surrogate pairs above
// the BMP). Outside strings JSON is ASCII without controls, so the result
// decodes to the same value and is safe to print to a terminal as is.
// Invalid UTF-8 is written as \ufffd, as encoding/json would.
func AppendJSON(dst, src []byte) []byte {
	for i := 0; i < len(src); {
		// ASCII below DEL, the common case, is copied by runs
		j := i
		for j < len(src) && src[j] < 0x7f {
			j++
		}
		dst = append(dst, src[i:j]...)
		if i = j; i == len(src) {
			break
		}
		r, n := utf8.DecodeRune(src[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			dst = append(dst, `\ufffd`...)
		case !Unsafe(r):
			dst = append(dst, src[i:i+n]...)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			dst = appendU(appendU(dst, r1), r2)
		default:
			dst = appendU(dst, r)
		}
		i += n
	}
	return dst
}

func appendU(dst []byte, r rune) []byte {
	dst = append(dst, '\\', 'u')
	for shift := 12; shift >= 0; shift -= 4 {
		dst = append(dst, hexdigits[(r>>uint(shift))&0xf])
	}
	return dst
}

// NewWriter returns a writer that passes what it is given to w with the
// escapes of String applied, except that newlines are kept: wrap a log's or
// a report's output with it so no line can carry raw wire bytes. Each
// Write should hold whole lines (as log.Logger's do); a rune split across
// two writes is escaped as bytes.
func NewWriter(w io.Writer) io.Writer { return &writer{w: w} }

type writer struct {
	w   io.Writer
	buf strings.Builder
}

func (w *writer) Write(p []byte) (int, error) {
	s := string(p)
	if firstUnsafe(strings.ReplaceAll(s, "\n", "")) < 0 {
		if _, err := io.WriteString(w.w, s); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	w.buf.Reset()
	for i, line := range strings.Split(s, "\n") {
		if i > 0 {
			w.buf.WriteByte('\n')
		}
		escape(&w.buf, line, false)
	}
	if _, err := io.WriteString(w.w, w.buf.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// NewJSONWriter returns a writer for a json.Encoder's output that applies
// AppendJSON to each Write (an Encoder writes each value in one call).
func NewJSONWriter(w io.Writer) io.Writer { return &jsonWriter{w: w} }

type jsonWriter struct {
	w   io.Writer
	buf []byte
}

func (j *jsonWriter) Write(p []byte) (int, error) {
	j.buf = AppendJSON(j.buf[:0], p)
	if _, err := j.w.Write(j.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}
