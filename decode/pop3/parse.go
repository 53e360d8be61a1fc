package pop3

import (
	"bytes"
	"strconv"
	"strings"
)

// ParseCommand splits a client command line (without its line end) into
// an upper-cased verb and the rest of the line. The verb must be 1 to 16
// characters, a letter first, then letters, digits, '-' or '_'; it is
// separated from its arguments by one space (RFC 1939 §3). args keeps the
// bytes after that space as they are, so a PASS argument with spaces
// survives; callers trim where the command's grammar allows it.
func ParseCommand(line []byte) (verb, args string, ok bool) {
	i := 0
	for i < len(line) && line[i] != ' ' {
		c := line[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case i > 0 && (c >= '0' && c <= '9' || c == '-' || c == '_'):
		default:
			return "", "", false
		}
		i++
	}
	if i == 0 || i > 16 {
		return "", "", false
	}
	verb = strings.ToUpper(string(line[:i]))
	if i < len(line) {
		args = string(line[i+1:])
	}
	return verb, args, true
}

// MultiLine reports whether a +OK answer to the command verb args (as
// ParseCommand splits it) is multi-line, ending with a "." line: always
// for RETR and TOP (RFC 1939) and CAPA (RFC 2449); for LIST and UIDL
// (RFC 1939), AUTH (RFC 5034 §4: the mechanism list) and LANG (RFC 6856
// §3: the language list) only without an argument. -ERR is always one
// line; so is every other command. The decoder and replay's response
// framer both use this rule.
func MultiLine(verb, args string) bool {
	switch strings.ToUpper(verb) {
	case "RETR", "TOP", "CAPA":
		return true
	case "LIST", "UIDL", "AUTH", "LANG":
		return strings.TrimSpace(args) == ""
	}
	return false
}

// ParseStatus parses a server status line: "+OK" or "-ERR" (any case),
// alone or followed by a space or tab and text. ok tells which; text is
// what follows the separator. valid is false for anything else, including
// a SASL continuation ("+ ..." or "+").
func ParseStatus(line []byte) (ok bool, text string, valid bool) {
	var rest []byte
	switch {
	case hasPrefixFold(line, "+OK"):
		ok, rest = true, line[3:]
	case hasPrefixFold(line, "-ERR"):
		rest = line[4:]
	default:
		return false, "", false
	}
	if len(rest) > 0 {
		if rest[0] != ' ' && rest[0] != '\t' {
			return false, "", false
		}
		rest = rest[1:]
	}
	return ok, string(rest), true
}

// isContinuation reports whether a server line is a SASL continuation
// request (RFC 5034 §4): "+" alone or "+ " and base64.
func isContinuation(line []byte) bool {
	return len(line) == 1 && line[0] == '+' || len(line) >= 2 && line[0] == '+' && line[1] == ' '
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && strings.EqualFold(string(b[:len(prefix)]), prefix)
}

// knownVerbs are the commands of RFC 1939, 2449, 2595, 5034, 6856 and
// the obsolete LAST; after a gap only these resynchronise the client side.
var knownVerbs = map[string]bool{
	"USER": true, "PASS": true, "APOP": true, "AUTH": true, "QUIT": true,
	"STAT": true, "LIST": true, "RETR": true, "DELE": true, "NOOP": true,
	"RSET": true, "TOP": true, "UIDL": true, "CAPA": true, "STLS": true,
	"LAST": true, "UTF8": true, "LANG": true,
}

// fields splits s on runs of spaces and tabs.
func fields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' })
}

// atoi parses a non-negative decimal that fits comfortably in an int;
// ok is false for anything else.
func atoi(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// atoi64 parses a non-negative decimal int64.
func atoi64(s string) (int64, bool) {
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= 0
}

// parseScanListing parses "n size" (a STAT answer, a LIST line or a
// single-message LIST answer); trailing text is allowed (RFC 1939 §5).
func parseScanListing(s string) (n int, size int64, ok bool) {
	f := fields(s)
	if len(f) < 2 {
		return 0, 0, false
	}
	n, ok1 := atoi(f[0])
	size, ok2 := atoi64(f[1])
	return n, size, ok1 && ok2
}

// parseUIDListing parses "n unique-id" (a UIDL line or a single-message
// UIDL answer). RFC 1939 §7 limits the id to 1-70 chars 0x21-0x7E.
func parseUIDListing(s string) (n int, uid string, ok bool) {
	f := fields(s)
	if len(f) < 2 {
		return 0, "", false
	}
	n, ok = atoi(f[0])
	uid = f[1]
	if !ok || len(uid) > 70 {
		return 0, "", false
	}
	for i := 0; i < len(uid); i++ {
		if uid[i] < 0x21 || uid[i] > 0x7e {
			return 0, "", false
		}
	}
	return n, uid, true
}

// apopTimestamp returns the "<...>" msg-id in a greeting (RFC 1939 §7),
// with its angle brackets, or "".
func apopTimestamp(greeting string) string {
	i := strings.IndexByte(greeting, '<')
	if i < 0 {
		return ""
	}
	j := strings.IndexByte(greeting[i:], '>')
	if j < 0 {
		return ""
	}
	ts := greeting[i : i+j+1]
	if !strings.Contains(ts, "@") {
		return ""
	}
	return ts
}

// maildropText extracts the counts many servers put in the +OK answering
// a login or RSET: "... has 3 messages (19191 octets)". It is only a
// fallback when neither STAT nor LIST was seen.
func maildropText(s string) (n int, octets int64, ok bool) {
	f := fields(s)
	for i := 0; i+2 < len(f); i++ {
		if !strings.HasPrefix(strings.ToLower(f[i+1]), "message") {
			continue
		}
		o := strings.TrimPrefix(f[i+2], "(")
		if len(o) == len(f[i+2]) || i+3 >= len(f) || !strings.HasPrefix(strings.ToLower(f[i+3]), "octet") {
			continue
		}
		n, ok1 := atoi(f[i])
		octets, ok2 := atoi64(o)
		if ok1 && ok2 {
			return n, octets, true
		}
	}
	return 0, 0, false
}

// cleanText makes a line safe to keep as a string: bytes are kept as
// they are (JSON replaces invalid UTF-8) but trailing spaces go.
func cleanText(b []byte) string {
	return string(bytes.TrimRight(b, " \t"))
}
