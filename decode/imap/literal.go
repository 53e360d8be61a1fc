package imap

// LiteralMarker is the literal announcement that ends an IMAP line: the
// line goes on with Size octets of literal data after its line end.
type LiteralMarker struct {
	// Start is the offset of the marker in the line: of its "{", or of
	// the "~" of a literal8.
	Start int
	// Size is the announced number of octets (0 when Invalid).
	Size int64
	// NonSync is set for "{n+}" (RFC 7888 LITERAL+) and "{n-}" (RFC 7888
	// LITERAL-): the client sends the data without waiting for a "+"
	// continuation request.
	NonSync bool
	// Minus is set for "{n-}" only; LITERAL- allows it up to 4096 octets.
	Minus bool
	// Binary is set for "~{n}" (RFC 3516 literal8), which may carry NUL.
	Binary bool
	// Invalid is set when the size exceeds 4294967295 (RFC 3501 "number" is an unsigned 32-bit integer). The
	// marker is still a marker: a reader must not take the line's end as
	// the end of the command, nor wait for the data.
	Invalid bool
}

// ParseLiteralSuffix reports whether line ends with a literal marker and
// parses it. line is one line as sent, with or without its CRLF (or LF).
// The forms are
//
//	{n}    synchronizing literal (RFC 3501 / RFC 9051 §4.3)
//	{n+}   non-synchronizing literal (RFC 7888 LITERAL+)
//	{n-}   non-synchronizing literal up to 4096 octets (RFC 7888 LITERAL-)
//	~{n}   literal8 (RFC 3516 BINARY), also ~{n+} and ~{n-}
//
// where n is one or more decimal digits. The marker must start the line or
// follow a space, "(", ")" or "]" (as in "BODY[] {5}"), and must not sit
// inside a quoted string ("\"a {5}" is text). The same rule serves both
// directions: the decoder's tokenizer, replay's response framer and the
// built-in IMAP server all call it, so they agree on what a literal is.
func ParseLiteralSuffix(line []byte) (LiteralMarker, bool) {
	var m LiteralMarker
	i := len(line) - 1
	if i >= 0 && line[i] == '\n' {
		i--
		if i >= 0 && line[i] == '\r' {
			i--
		}
	}
	if i < 0 || line[i] != '}' {
		return m, false
	}
	i--
	if i >= 0 && (line[i] == '+' || line[i] == '-') {
		m.NonSync = true
		m.Minus = line[i] == '-'
		i--
	}
	end := i + 1
	for i >= 0 && line[i] >= '0' && line[i] <= '9' {
		i--
	}
	digits := line[i+1 : end]
	if len(digits) == 0 || i < 0 || line[i] != '{' {
		return LiteralMarker{}, false
	}
	m.Start = i
	if i > 0 && line[i-1] == '~' {
		m.Binary = true
		m.Start = i - 1
	}
	if m.Start > 0 {
		switch line[m.Start-1] {
		case ' ', '(', ')', ']':
		default:
			return LiteralMarker{}, false
		}
	}
	if inQuote(line[:m.Start]) {
		return LiteralMarker{}, false
	}
	for len(digits) > 1 && digits[0] == '0' {
		digits = digits[1:]
	}
	if len(digits) > 10 {
		m.Invalid = true
		return m, true
	}
	var v int64
	for _, c := range digits {
		v = v*10 + int64(c-'0')
	}
	if v > maxLiteralSize {
		m.Invalid = true
		return m, true
	}
	m.Size = v
	return m, true
}

// inQuote reports whether b ends inside a quoted string.
func inQuote(b []byte) bool {
	q := false
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '\\':
			if q {
				i++
			}
		case '"':
			q = !q
		}
	}
	return q
}
