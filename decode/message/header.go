package message

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mailtap/mailtap/decode"
)

// field is one header field: lower-case name, unfolded value.
type field struct {
	name, value string
}

func fieldValue(fs []field, name string) string {
	for _, f := range fs {
		if f.name == name {
			return f.value
		}
	}
	return ""
}

// parseHeader splits a header block into fields, unfolding continuation
// lines (the line break is removed, the white space kept). Lines that are
// not fields are skipped and reported. over says the block was cut at its
// size limit: its last, partial line is dropped.
func (p *impl) parseHeader(b []byte, over bool) []field {
	if over {
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			b = b[:i+1]
		} else {
			b = nil
		}
	}
	type rawField struct {
		name   string
		value  []byte
		folded bool // value was unfolded: a copy, not a slice of b
		off    int  // else where value starts in b
	}
	fs := make([]rawField, 0, 32)
	whole := b
	skipping := false
	first := true
	for len(b) > 0 {
		var line []byte
		lineOff := len(whole) - len(b)
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		isFirst := first
		first = false
		if len(line) == 0 {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			switch {
			case skipping:
			case len(fs) == 0:
				p.anomaly(decode.AnomalyHeaderWithoutColon)
			default:
				fs[len(fs)-1].value = append(fs[len(fs)-1].value, line...)
				fs[len(fs)-1].folded = true
			}
			continue
		}
		i := bytes.IndexByte(line, ':')
		name := bytes.TrimRight(line[:max(i, 0)], " \t")
		if i <= 0 || !validFieldName(name) {
			if isFirst && bytes.HasPrefix(line, []byte("From ")) {
				p.anomaly(decode.AnomalyMboxFromLine)
			} else {
				p.anomaly(decode.AnomalyHeaderWithoutColon)
			}
			skipping = true
			continue
		}
		skipping = false
		// The value aliases b (capped: unfolding appends copy it).
		fs = append(fs, rawField{name: fieldName(name), value: line[i+1 : len(line) : len(line)], off: lineOff + i + 1})
	}
	// One string for the block: values that were not unfolded are
	// slices of it, not an allocation each.
	hs := string(whole)
	// The fields are for endHeader alone: their slice is the parser's,
	// reused from header to header.
	out := p.fields[:0]
	if cap(out) < len(fs) {
		out = make([]field, 0, max(len(fs), 16))
	}
	out = out[:len(fs)]
	clear(out)
	p.fields = out
	for i, f := range fs {
		v := bytes.TrimSpace(f.value)
		switch {
		case len(v) == 0:
		case f.folded:
			out[i].value = string(v)
		default:
			// value's capacity ends with it: the difference is what
			// TrimSpace cut from its front
			off := f.off + cap(f.value) - cap(v)
			out[i].value = hs[off : off+len(v)]
		}
		out[i].name = f.name
	}
	return out
}

// commonFields are names met in most headers: fieldName returns them
// without allocating.
var commonFields = []string{"from", "to", "cc", "subject", "date", "message-id", "in-reply-to",
	"references", "user-agent", "x-mailer", "content-type", "content-transfer-encoding",
	"content-disposition", "mime-version", "received", "return-path", "reply-to", "sender"}

// fieldName returns the lower-case name.
func fieldName(b []byte) string {
	for _, n := range commonFields {
		if len(n) == len(b) && bytes.EqualFold(b, []byte(n)) {
			return n
		}
	}
	return strings.ToLower(string(b))
}

func validFieldName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// summarise fills the message summary from the top-level header.
func (p *impl) summarise(fs []field) {
	for i := range fs {
		switch fs[i].name {
		case "from", "to", "cc", "subject", "date", "message-id", "in-reply-to",
			"user-agent", "x-mailer", "content-type", "reply-to", "received", "x-originating-ip":
			fs[i].value = p.fixUTF8(fs[i].value)
		}
	}
	m := &p.msg
	m.Subject = p.decodeWords(fieldValue(fs, "subject"))
	m.From = strings.Join(p.addresses(fs, "from"), ", ")
	m.To = p.addresses(fs, "to")
	m.Cc = p.addresses(fs, "cc")
	m.Date = fieldValue(fs, "date")
	m.MessageID = fieldValue(fs, "message-id")
	m.InReplyTo = fieldValue(fs, "in-reply-to")
	m.UserAgent = p.decodeWords(fieldValue(fs, "user-agent"))
	if m.UserAgent == "" {
		m.UserAgent = p.decodeWords(fieldValue(fs, "x-mailer"))
	}
	m.ContentType = fieldValue(fs, "content-type")
	p.zeekFields(fs)
}

// zeekFields keeps what Zeek's smtp.log takes from the header, with
// Zeek's rules (base/protocols/smtp/main.zeek): the last Reply-To value;
// the first address in the last X-Originating-IP that has one; the
// Received fields, whose last in the message (the first hop the message
// took) is first_received and the one above it second_received; and per
// Received field the address of receivedIP, top (latest hop) first.
func (p *impl) zeekFields(fs []field) {
	m := &p.msg
	for _, f := range fs {
		switch f.name {
		case "reply-to":
			m.ReplyTo = capValue(f.value)
		case "x-originating-ip":
			if ips := ipAddresses(f.value, false); len(ips) > 0 {
				m.XOriginatingIP = ips[0].String()
			}
		case "received":
			m.SecondReceived = m.FirstReceived
			m.FirstReceived = capValue(f.value)
			if ip := receivedIP(f.value); ip != "" && len(m.ReceivedIPs) < maxReceivedIPs {
				m.ReceivedIPs = append(m.ReceivedIPs, ip)
			}
		}
	}
}

// fixUTF8 returns s as UTF-8: raw 8-bit header text that is not UTF-8 is
// read as Windows-1252 (the usual culprit, and a superset of ISO-8859-1).
func (p *impl) fixUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	p.anomaly(decode.AnomalyHeaderInvalidUTF8)
	return decodeWindows1252([]byte(s))
}

// addresses parses the values of the fields called name as address
// lists with net/mail; a list it rejects is split loosely instead, so no
// address is lost.
func (p *impl) addresses(fs []field, name string) []string {
	var out []string
	for _, f := range fs {
		v := f.value
		if f.name != name || strings.TrimSpace(v) == "" {
			continue
		}
		out = append(out, p.parseAddressValue(v)...)
	}
	if len(out) > maxAddresses {
		p.anomaly(decode.AnomalyTooManyAddresses)
		out = out[:maxAddresses]
	}
	return out
}

func (p *impl) formatAddress(name, addr string) string {
	// net/mail's word decoder passes invalid UTF-8 through for utf-8 words
	name = strings.ToValidUTF8(strings.TrimSpace(p.decodeWords(name)), "\uFFFD")
	addr = strings.ToValidUTF8(strings.TrimSpace(addr), "\uFFFD")
	switch {
	case name == "" || name == addr:
		return addr
	case addr == "":
		return name
	}
	return name + " <" + addr + ">"
}

// looseAddresses splits an address list net/mail rejected at commas and
// semicolons outside quotes and angle brackets, and takes from each piece
// the <addr-spec> or the word with an @.
func (p *impl) looseAddresses(v string) []string {
	var out []string
	var pieces []string
	quoted, angle, start := false, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == '<' && !quoted:
			angle = true
		case c == '>' && !quoted:
			angle = false
		case (c == ',' || c == ';') && !quoted && !angle:
			pieces = append(pieces, v[start:i])
			start = i + 1
		}
	}
	pieces = append(pieces, v[start:])
	for _, s := range pieces {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if a, err := p.ap.Parse(s); err == nil {
			out = append(out, p.formatAddress(a.Name, a.Address))
			continue
		}
		name, addr := s, ""
		if lt := strings.IndexByte(s, '<'); lt >= 0 {
			rest := s[lt+1:]
			if gt := strings.IndexByte(rest, '>'); gt >= 0 {
				rest = rest[:gt]
			}
			name, addr = s[:lt], rest
		} else {
			// bare words: every word with an @ is an address; with
			// only one, the other words are its name
			var at, rest []string
			for _, w := range strings.Fields(s) {
				if strings.Contains(w, "@") {
					at = append(at, w)
				} else {
					rest = append(rest, w)
				}
			}
			switch len(at) {
			case 0:
			case 1:
				name, addr = strings.Join(rest, " "), at[0]
			default:
				for _, a := range at {
					out = append(out, strings.Trim(a, "<>\"'(),; "))
				}
				continue
			}
		}
		name = strings.Trim(strings.TrimSpace(name), `"'`)
		addr = strings.Trim(addr, "<>\"'(),; ")
		if out1 := p.formatAddress(name, addr); out1 != "" {
			out = append(out, out1)
		}
	}
	return out
}

// decodeWords decodes the RFC 2047 encoded words in s. White space between
// adjacent encoded words is dropped, and the bytes of adjacent words in the
// same charset are joined before conversion, so a character split across
// two words survives. A word that does not decode is kept as written.
func (p *impl) decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	var out strings.Builder
	var run []byte
	runCS := ""
	flush := func() {
		if len(run) > 0 {
			out.WriteString(p.convert(runCS, run))
			run = run[:0]
		}
	}
	afterWord := false
	// words end at a "?=": none can start past the last one
	last, off := strings.LastIndex(s, "?="), 0
	literal := func(t string) {
		if t == "" {
			return
		}
		flush()
		out.WriteString(t)
		afterWord = false
	}
	for {
		i := strings.Index(s, "=?")
		if i < 0 || off+i+2 > last {
			break
		}
		cs, data, n, ok := p.encodedWord(s[i:])
		if !ok {
			if n < 0 {
				break // no "?=" further on: no more words
			}
			// keep it as written; a word that ended is skipped whole,
			// so the text is scanned once
			literal(s[:i+max(n, 2)])
			off += i + max(n, 2)
			s = s[i+max(n, 2):]
			continue
		}
		if between := s[:i]; !afterWord || strings.Trim(between, " \t\r\n") != "" {
			literal(between)
		}
		if len(run) > 0 && !strings.EqualFold(cs, runCS) {
			flush()
		}
		runCS = cs
		run = append(run, data...)
		afterWord = true
		off += i + n
		s = s[i+n:]
	}
	literal(s)
	flush()
	return out.String()
}

// encodedWord parses "=?charset?enc?text?=" at the start of s, returning
// the charset, the decoded bytes and the length of the word. When it fails,
// n is the length of what looked like a word (0 when not even its start
// did, -1 when it has no end).
func (p *impl) encodedWord(s string) (cs string, data []byte, n int, ok bool) {
	rest := s[2:]
	q := strings.IndexByte(rest, '?')
	if q <= 0 || q > 64 || strings.ContainsAny(rest[:q], " \t\r\n") {
		return "", nil, 0, false
	}
	cs = rest[:q]
	if star := strings.IndexByte(cs, '*'); star >= 0 { // RFC 2231 language
		cs = cs[:star]
	}
	rest = rest[q+1:]
	if len(rest) < 4 || rest[1] != '?' {
		return "", nil, 0, false
	}
	enc := rest[0] | 0x20
	rest = rest[2:]
	end := strings.Index(rest, "?=")
	if end < 0 {
		return "", nil, -1, false
	}
	text := rest[:end]
	n = len(s) - len(rest) + end + 2
	switch enc {
	case 'b':
		t := strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
				return -1
			}
			return r
		}, text)
		d, err := base64.StdEncoding.DecodeString(t)
		if err != nil {
			d, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(t, "="))
		}
		if err != nil {
			p.anomaly(decode.AnomalyBadEncodedWord)
			return "", nil, n, false
		}
		return cs, d, n, true
	case 'q':
		d := make([]byte, 0, len(text))
		for i := 0; i < len(text); i++ {
			c := text[i]
			switch {
			case c == '_':
				c = ' '
			case c == '=' && i+2 < len(text):
				h, ok1 := unhex(text[i+1])
				lo, ok2 := unhex(text[i+2])
				if ok1 && ok2 {
					c = h<<4 | lo
					i += 2
				}
			}
			d = append(d, c)
		}
		return cs, d, n, true
	}
	return "", nil, n, false
}

// params splits a structured header value `value; a=b; c*0*=...` into its
// lower-cased leading value and its parameters (names lower-cased),
// joining RFC 2231 continuations and converting RFC 2231 charsets. The
// extended form of a parameter wins over the plain one.
func (p *impl) params(s string) (string, map[string]string) {
	i := strings.IndexByte(s, ';')
	if i < 0 {
		return strings.ToLower(strings.TrimSpace(s)), nil
	}
	val := strings.ToLower(strings.TrimSpace(s[:i]))
	rest := s[i+1:]
	type section struct {
		v   string
		enc bool
	}
	params := map[string]string{}
	var ext map[string]map[int]section
	bad := false
	for {
		rest = strings.TrimLeft(rest, " \t\r\n;")
		if rest == "" {
			break
		}
		j := strings.IndexAny(rest, "=;")
		if j < 0 {
			bad = true
			break
		}
		if rest[j] == ';' {
			bad = true
			rest = rest[j:]
			continue
		}
		key := strings.ToLower(strings.TrimSpace(rest[:j]))
		rest = strings.TrimLeft(rest[j+1:], " \t\r\n")
		var v string
		if strings.HasPrefix(rest, `"`) {
			var ok bool
			v, rest, ok = quotedString(rest)
			if !ok {
				bad = true
			}
		} else {
			k := strings.IndexByte(rest, ';')
			if k < 0 {
				k = len(rest)
			}
			v, rest = strings.TrimRight(rest[:k], " \t\r\n"), rest[k:]
		}
		if key == "" {
			bad = true
			continue
		}
		star := strings.IndexByte(key, '*')
		if star < 0 {
			if _, dup := params[key]; !dup {
				params[key] = v
			}
			continue
		}
		name, spec := key[:star], key[star+1:]
		sec := section{v: v}
		n := 0
		if spec == "" {
			sec.enc = true
		} else {
			if strings.HasSuffix(spec, "*") {
				sec.enc = true
				spec = spec[:len(spec)-1]
			}
			var err error
			if n, err = strconv.Atoi(spec); err != nil || n < 0 || n > 999 {
				bad = true
				continue
			}
		}
		if ext == nil {
			ext = map[string]map[int]section{}
		}
		if ext[name] == nil {
			ext[name] = map[int]section{}
		}
		if _, dup := ext[name][n]; !dup {
			ext[name][n] = sec
		}
	}
	for name, secs := range ext {
		if _, ok := secs[0]; !ok {
			bad = true
			continue
		}
		var buf []byte
		cs := ""
		for n := 0; ; n++ {
			sec, ok := secs[n]
			if !ok {
				break
			}
			v := sec.v
			if sec.enc {
				if n == 0 {
					if a := strings.IndexByte(v, '\''); a >= 0 {
						if b := strings.IndexByte(v[a+1:], '\''); b >= 0 {
							cs, v = v[:a], v[a+1+b+1:]
						}
					}
				}
				buf = append(buf, percentDecode(v)...)
			} else {
				buf = append(buf, v...)
			}
		}
		params[name] = p.convert(cs, buf)
	}
	if bad {
		p.anomaly(decode.AnomalyBadHeaderParameters)
	}
	return val, params
}

// quotedString reads a quoted-string at the start of s (which begins with
// a quote), returning its content and the rest; ok is false when the
// closing quote is missing.
func quotedString(s string) (v, rest string, ok bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:], true
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), "", false
}

func percentDecode(s string) []byte {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) {
			h, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				c = h<<4 | lo
				i += 2
			}
		}
		b = append(b, c)
	}
	return b
}
