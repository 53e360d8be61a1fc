package imapd

import (
	"bytes"
	"fmt"
	"mime"
	"net/mail"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
)

// maxPartDepth bounds MIME nesting when parsing stored messages.
const maxPartDepth = 20

// part is one MIME entity of a stored message, as byte ranges of the raw
// message: header (including the blank line) and body.
type part struct {
	header   []byte
	body     []byte
	hdr      textproto.MIMEHeader
	mtype    string // lower-case "type/subtype"
	params   map[string]string
	children []*part // multipart parts, or the one message/rfc822 message
}

// parsePart splits raw into header and body and parses its structure.
// It never fails: anything odd becomes text/plain.
func parsePart(raw []byte, depth int, defType string) *part {
	p := &part{}
	i, n := headerEnd(raw)
	p.header, p.body = raw[:i+n], raw[i+n:]
	if n == 0 { // no blank line: all header (or none)
		p.header, p.body = raw, nil
	}
	p.hdr = parseHeader(p.header)
	ct := p.hdr.Get("Content-Type")
	if ct == "" {
		ct = defType
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		mt, params = "text/plain", map[string]string{"charset": "us-ascii"}
	}
	p.mtype, p.params = mt, params
	if depth >= maxPartDepth {
		return p
	}
	switch {
	case strings.HasPrefix(mt, "multipart/") && params["boundary"] != "":
		childType := "text/plain"
		if mt == "multipart/digest" {
			childType = "message/rfc822"
		}
		for _, b := range splitMultipart(p.body, params["boundary"]) {
			p.children = append(p.children, parsePart(b, depth+1, childType))
		}
		if len(p.children) == 0 {
			p.children = append(p.children, parsePart(nil, depth+1, childType))
		}
	case mt == "message/rfc822" || mt == "message/global":
		p.children = []*part{parsePart(p.body, depth+1, "text/plain")}
	}
	return p
}

// headerEnd finds the blank line that ends the header: it returns its index
// and length (4 for CRLFCRLF, 2 for LFLF), or len(raw), 0.
func headerEnd(raw []byte) (int, int) {
	if bytes.HasPrefix(raw, []byte("\r\n")) {
		return 0, 2
	}
	if bytes.HasPrefix(raw, []byte("\n")) {
		return 0, 1
	}
	crlf := bytes.Index(raw, []byte("\r\n\r\n"))
	lf := bytes.Index(raw, []byte("\n\n"))
	switch {
	case crlf >= 0 && (lf < 0 || crlf+1 <= lf):
		return crlf + 2, 2
	case lf >= 0:
		return lf + 1, 1
	}
	return len(raw), 0
}

func parseHeader(h []byte) textproto.MIMEHeader {
	m, err := mail.ReadMessage(bytes.NewReader(append(bytes.TrimRight(h, "\r\n"), "\r\n\r\n"...)))
	if err != nil {
		return textproto.MIMEHeader{}
	}
	return textproto.MIMEHeader(m.Header)
}

// splitMultipart returns the bodies between boundary delimiter lines. The
// CRLF before a delimiter belongs to the delimiter (RFC 2046 5.1.1).
func splitMultipart(body []byte, boundary string) [][]byte {
	delim := []byte("--" + boundary)
	var parts [][]byte
	start := -1
	pos := 0
	for pos <= len(body) {
		nl := bytes.IndexByte(body[pos:], '\n')
		lineEnd := len(body)
		if nl >= 0 {
			lineEnd = pos + nl
		}
		line := bytes.TrimRight(body[pos:lineEnd], " \t\r")
		if bytes.HasPrefix(line, delim) {
			rest := line[len(delim):]
			if len(rest) == 0 || bytes.Equal(rest, []byte("--")) {
				if start >= 0 {
					end := pos
					if end > start && body[end-1] == '\n' {
						end--
						if end > start && body[end-1] == '\r' {
							end--
						}
					}
					parts = append(parts, body[start:end])
				}
				if len(rest) == 2 {
					return parts
				}
				start = lineEnd + 1
				if start > len(body) {
					start = len(body)
				}
			}
		}
		if nl < 0 {
			break
		}
		pos = lineEnd + 1
	}
	return parts
}

func countLines(b []byte) int {
	n := bytes.Count(b, []byte("\n"))
	if len(b) > 0 && b[len(b)-1] != '\n' {
		n++
	}
	return n
}

func splitType(mt string) (string, string) {
	t, s, ok := strings.Cut(mt, "/")
	if !ok {
		return mt, ""
	}
	return t, s
}

func paramList(params map[string]string) string {
	if len(params) == 0 {
		return "NIL"
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var sb strings.Builder
	sb.WriteByte('(')
	for i, k := range keys {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(quote(strings.ToUpper(k)) + " " + quote(params[k]))
	}
	sb.WriteByte(')')
	return sb.String()
}

func (p *part) disposition() string {
	d := p.hdr.Get("Content-Disposition")
	if d == "" {
		return "NIL"
	}
	disp, params, err := mime.ParseMediaType(d)
	if err != nil {
		return "NIL"
	}
	return "(" + quote(strings.ToUpper(disp)) + " " + paramList(params) + ")"
}

// bodyStructure renders BODY (ext=false) or BODYSTRUCTURE (ext=true).
func (p *part) bodyStructure(ext bool) string {
	var sb strings.Builder
	p.writeStructure(&sb, ext)
	return sb.String()
}

func (p *part) writeStructure(sb *strings.Builder, ext bool) {
	t, sub := splitType(p.mtype)
	if t == "multipart" && len(p.children) > 0 {
		sb.WriteByte('(')
		for _, c := range p.children {
			c.writeStructure(sb, ext)
		}
		sb.WriteString(" " + quote(strings.ToUpper(sub)))
		if ext {
			sb.WriteString(" " + paramList(p.params) + " " + p.disposition() + " NIL NIL")
		}
		sb.WriteByte(')')
		return
	}
	enc := strings.ToUpper(p.hdr.Get("Content-Transfer-Encoding"))
	if enc == "" {
		enc = "7BIT"
	}
	params := p.params
	if t == "text" && params["charset"] == "" {
		params = map[string]string{"charset": "us-ascii"}
		for k, v := range p.params {
			params[k] = v
		}
	}
	fmt.Fprintf(sb, "(%s %s %s %s %s %s %d", quote(strings.ToUpper(t)), quote(strings.ToUpper(sub)), paramList(params),
		nilOr(p.hdr.Get("Content-Id")), nilOr(p.hdr.Get("Content-Description")), quote(enc), len(p.body))
	switch {
	case t == "text":
		fmt.Fprintf(sb, " %d", countLines(p.body))
	case (p.mtype == "message/rfc822" || p.mtype == "message/global") && len(p.children) == 1:
		c := p.children[0]
		sb.WriteString(" " + envelope(c.hdr) + " ")
		c.writeStructure(sb, ext)
		fmt.Fprintf(sb, " %d", countLines(p.body))
	}
	if ext {
		sb.WriteString(" " + nilOr(p.hdr.Get("Content-Md5")) + " " + p.disposition() + " NIL NIL")
	}
	sb.WriteByte(')')
}

// envelope renders the ENVELOPE of a header (RFC 3501 7.4.2).
func envelope(h textproto.MIMEHeader) string {
	from := addrList(h, "From")
	sender, replyTo := addrList(h, "Sender"), addrList(h, "Reply-To")
	if sender == "NIL" {
		sender = from
	}
	if replyTo == "NIL" {
		replyTo = from
	}
	return "(" + strings.Join([]string{
		nilOr(h.Get("Date")), nilOr(h.Get("Subject")), from, sender, replyTo,
		addrList(h, "To"), addrList(h, "Cc"), addrList(h, "Bcc"),
		nilOr(h.Get("In-Reply-To")), nilOr(h.Get("Message-Id")),
	}, " ") + ")"
}

func addrList(h textproto.MIMEHeader, key string) string {
	v := h.Get(key)
	if v == "" {
		return "NIL"
	}
	list, err := (&mail.AddressParser{}).ParseList(v)
	if err != nil || len(list) == 0 {
		return "NIL"
	}
	var sb strings.Builder
	sb.WriteByte('(')
	for _, a := range list {
		local, domain := a.Address, ""
		if i := strings.LastIndexByte(a.Address, '@'); i >= 0 {
			local, domain = a.Address[:i], a.Address[i+1:]
		}
		sb.WriteString("(" + nilOr(a.Name) + " NIL " + nilOr(local) + " " + nilOr(domain) + ")")
	}
	sb.WriteByte(')')
	return sb.String()
}

// section is a parsed BODY[...] section spec.
type section struct {
	path   []int
	spec   string   // "", HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME
	fields []string // for HEADER.FIELDS(.NOT)
}

func (s section) String() string {
	var parts []string
	for _, n := range s.path {
		parts = append(parts, strconv.Itoa(n))
	}
	if s.spec != "" {
		parts = append(parts, s.spec)
	}
	out := strings.Join(parts, ".")
	if len(s.fields) > 0 {
		out += " (" + strings.Join(s.fields, " ") + ")"
	}
	return out
}

// extract returns the bytes of a section of the message m, or nil.
func (s section) extract(m *part) []byte {
	p := m
	for i, n := range s.path {
		if p.mtype == "message/rfc822" || p.mtype == "message/global" {
			if len(p.children) == 1 {
				p = p.children[0]
			}
		}
		if strings.HasPrefix(p.mtype, "multipart/") {
			if n < 1 || n > len(p.children) {
				return nil
			}
			p = p.children[n-1]
		} else if n != 1 || (i == 0 && p != m) {
			return nil
		}
	}
	if s.spec == "MIME" {
		return p.header
	}
	if len(s.path) > 0 && s.spec != "" && (p.mtype == "message/rfc822" || p.mtype == "message/global") && len(p.children) == 1 {
		p = p.children[0] // HEADER and TEXT of an encapsulated message
	}
	switch s.spec {
	case "":
		if len(s.path) == 0 {
			return append(append([]byte{}, p.header...), p.body...)
		}
		return p.body
	case "HEADER":
		return p.header
	case "TEXT":
		return p.body
	case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
		return filterHeader(p.header, s.fields, s.spec == "HEADER.FIELDS.NOT")
	}
	return nil
}

// filterHeader keeps (or drops) the named fields, with their folded lines,
// and ends with the blank line.
func filterHeader(h []byte, fields []string, not bool) []byte {
	var out []byte
	keep := false
	for len(h) > 0 {
		i := bytes.IndexByte(h, '\n')
		var line []byte
		if i < 0 {
			line, h = h, nil
		} else {
			line, h = h[:i+1], h[i+1:]
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break
		}
		if line[0] != ' ' && line[0] != '\t' {
			name, _, _ := bytes.Cut(line, []byte(":"))
			in := false
			for _, f := range fields {
				if strings.EqualFold(strings.TrimSpace(string(name)), f) {
					in = true
				}
			}
			keep = in != not
		}
		if keep {
			out = append(out, line...)
		}
	}
	return append(out, "\r\n"...)
}
