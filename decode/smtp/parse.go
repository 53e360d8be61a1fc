package smtp

import (
	"errors"
	"strings"
	"unicode"
)

// Errors returned by the pure parsers.
var (
	ErrEmptyCommand = errors.New("smtp: empty command line")
	ErrBadVerb      = errors.New("smtp: command verb is not a word")
	ErrNoPathPrefix = errors.New("smtp: path lacks its FROM: or TO: prefix")
	ErrBadPath      = errors.New("smtp: malformed path")
)

// maxVerb bounds a command verb; longer words are not commands.
const maxVerb = 32

// ParseCommand splits one command line (without its line terminator) into
// its verb, upper-cased, and its arguments. MAIL FROM: and RCPT TO: keep
// "FROM:..." and "TO:..." in args (see ParsePath). Leading spaces before the
// verb, several spaces after it and trailing white space are tolerated. A
// verb must be a letter followed by letters, digits or '-'.
func ParseCommand(line []byte) (verb, args string, err error) {
	v, rest, _, err := parseCommand(line)
	if err != nil {
		return "", "", err
	}
	return v, string(rest), nil
}

// parseCommand is ParseCommand on the bytes in place: args is a slice of
// line, and known tells whether verb is one of knownVerbs (then verb is the
// interned constant and nothing was allocated).
func parseCommand(line []byte) (verb string, args []byte, known bool, err error) {
	v, args, err := splitCommand(line)
	if err != nil {
		return "", nil, false, err
	}
	if verb, known = knownVerb(v); !known {
		verb = upperVerb(v)
	}
	return verb, args, known, nil
}

// splitCommand splits a command line into its verb and its arguments,
// both slices of line.
func splitCommand(line []byte) (verb, args []byte, err error) {
	b := trimLeftSpTab(trimRightSpace(line))
	if len(b) == 0 {
		return nil, nil, ErrEmptyCommand
	}
	v, rest := b, []byte(nil)
	for i, c := range b {
		if c == ' ' || c == '\t' {
			v, rest = b[:i], b[i+1:]
			break
		}
	}
	if len(v) > maxVerb || !isVerb(v) {
		return nil, nil, ErrBadVerb
	}
	return v, trimLeftSpTab(rest), nil
}

// trimRightSpace drops trailing ' ', '\t', '\r' and '\n'.
func trimRightSpace(b []byte) []byte {
	for len(b) > 0 {
		switch b[len(b)-1] {
		case ' ', '\t', '\r', '\n':
			b = b[:len(b)-1]
			continue
		}
		break
	}
	return b
}

// trimLeftSpTab drops leading ' ' and '\t'.
func trimLeftSpTab(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// knownVerb returns v (at most maxVerb bytes) upper-cased as the constant
// when it is a known verb, without allocating.
func knownVerb(v []byte) (verb string, known bool) {
	var u [maxVerb]byte
	k, ok := verbNames[string(upperASCII(u[:0], v))] // no allocation: map lookup
	return k, ok
}

// upperVerb returns v (at most maxVerb bytes) upper-cased.
func upperVerb(v []byte) string {
	var u [maxVerb]byte
	return string(upperASCII(u[:0], v))
}

func upperASCII(dst, v []byte) []byte {
	for _, c := range v {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

func isVerb(v []byte) bool {
	if len(v) == 0 || !isLetter(v[0]) {
		return false
	}
	for i := 1; i < len(v); i++ {
		c := v[i]
		if !isLetter(c) && !(c >= '0' && c <= '9') && c != '-' {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// knownVerbs are the commands a client is expected to send (RFC 5321 and
// common extensions). They drive resynchronisation: after a gap or in a
// midstream capture, decoding restarts at a line whose verb is known.
var knownVerbs = map[string]bool{
	"HELO": true, "EHLO": true, "LHLO": true, "MAIL": true, "RCPT": true,
	"DATA": true, "BDAT": true, "RSET": true, "NOOP": true, "QUIT": true,
	"VRFY": true, "EXPN": true, "HELP": true, "STARTTLS": true, "AUTH": true,
	"TURN": true, "ETRN": true, "ATRN": true, "SEND": true, "SOML": true,
	"SAML": true, "XCLIENT": true, "XFORWARD": true, "BURL": true,
}

// verbNames interns the known verbs.
var verbNames = func() map[string]string {
	m := make(map[string]string, len(knownVerbs))
	for v := range knownVerbs {
		m[v] = v
	}
	return m
}()

// isKnownCommand reports whether line parses as a command with a known verb.
func isKnownCommand(line []byte) bool {
	v, _, err := splitCommand(line)
	if err != nil {
		return false
	}
	_, known := knownVerb(v)
	return known
}

// ParseReplyLine parses one reply line (without its line terminator):
// a three-digit code whose first digit is 1-5, then ' ' (last line), '-'
// (more lines follow) or the end of the line (treated as ' '). text is
// what follows the separator.
func ParseReplyLine(line []byte) (code int, sep byte, text string, ok bool) {
	code, sep, b, ok := parseReplyLine(line)
	return code, sep, string(b), ok
}

// parseReplyLine is ParseReplyLine with text a slice of line.
func parseReplyLine(line []byte) (code int, sep byte, text []byte, ok bool) {
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	if len(line) < 3 {
		return 0, 0, nil, false
	}
	if line[0] < '1' || line[0] > '5' || !isDigit(line[1]) || !isDigit(line[2]) {
		return 0, 0, nil, false
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	if len(line) == 3 {
		return code, ' ', nil, true
	}
	switch line[3] {
	case ' ', '-':
		return code, line[3], line[4:], true
	}
	return 0, 0, nil, false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// ParseEnhanced splits an RFC 3463 enhanced status code off the start of a
// reply text whose basic code is code ("2.1.0 Ok" -> "2.1.0", "Ok"). The
// class must match the first digit of code. It returns "" and text when
// there is none.
func ParseEnhanced(code int, text string) (enhanced, rest string) {
	end := strings.IndexByte(text, ' ')
	tok := text
	if end >= 0 {
		tok = text[:end]
	}
	if len(tok) < 5 || tok[0] != byte('0'+code/100) || tok[1] != '.' {
		return "", text
	}
	sub, det, ok := strings.Cut(tok[2:], ".")
	if !ok || !digits(sub, 3) || !digits(det, 3) {
		return "", text
	}
	if end < 0 {
		return tok, ""
	}
	return tok, strings.TrimLeft(text[end:], " ")
}

func digits(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// ParsePath parses the arguments of MAIL ("FROM:<a@b> SIZE=1") or RCPT
// ("TO:<c@d> NOTIFY=NEVER") into the address without angle brackets and the
// parameters. Tolerated: any case of FROM:/TO:, spaces around the colon,
// an address without angle brackets (then it ends at the first space), a
// source route ("<@relay:a@b>", dropped) and quoted local parts containing
// '>' or spaces. The null path "<>" gives addr "". On error addr and params
// are a best effort.
func ParsePath(args string) (addr, params string, err error) {
	s := strings.TrimLeft(args, " ")
	switch {
	case hasPrefixFold(s, "FROM"):
		s = s[4:]
	case hasPrefixFold(s, "TO"):
		s = s[2:]
	default:
		return "", "", ErrNoPathPrefix
	}
	s = strings.TrimLeft(s, " ")
	if !strings.HasPrefix(s, ":") {
		return "", "", ErrNoPathPrefix
	}
	s = strings.TrimLeft(s[1:], " ")
	if !strings.HasPrefix(s, "<") {
		// Tolerated: no angle brackets.
		addr, params, _ = strings.Cut(s, " ")
		if strings.ContainsAny(addr, "<>") {
			err = ErrBadPath
		}
		return addr, strings.TrimSpace(params), err
	}
	end := closingBracket(s)
	if end < 0 {
		addr, params, _ = strings.Cut(s[1:], " ")
		return addr, strings.TrimSpace(params), ErrBadPath
	}
	addr = s[1:end]
	params = strings.TrimSpace(s[end+1:])
	if strings.HasPrefix(addr, "@") {
		// Source route "@a,@b:user@host" (RFC 5321 §4.1.2): drop it.
		if i := strings.IndexByte(addr, ':'); i >= 0 {
			addr = addr[i+1:]
		} else {
			err = ErrBadPath
		}
	}
	return addr, params, err
}

// closingBracket returns the index of the '>' closing the path that starts
// with '<' at s[0], skipping quoted strings, or -1.
func closingBracket(s string) int {
	quoted := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == '>':
			return i
		}
	}
	return -1
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// parseBDAT parses "n [LAST]" into the chunk size and the LAST flag.
func parseBDAT(args string) (n int64, last, ok bool) {
	size, rest := nextField(args)
	flag, rest := nextField(rest)
	if extra, _ := nextField(rest); size == "" || extra != "" || len(size) > 18 || !digits(size, 18) {
		return 0, false, false
	}
	for i := 0; i < len(size); i++ {
		n = n*10 + int64(size[i]-'0')
	}
	if flag != "" {
		if !strings.EqualFold(flag, "LAST") {
			return 0, false, false
		}
		last = true
	}
	return n, last, true
}

// nextField returns the first field of s, split as strings.Fields does
// (around runs of Unicode white space), and what follows it; field is ""
// when s has none. It allocates nothing.
func nextField(s string) (field, rest string) {
	s = strings.TrimLeftFunc(s, unicode.IsSpace)
	if i := strings.IndexFunc(s, unicode.IsSpace); i >= 0 {
		return s[:i], s[i:]
	}
	return s, ""
}
