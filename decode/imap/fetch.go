package imap

import (
	"strconv"
	"strings"

	"github.com/mailtap/mailtap/decode"
)

// bodyItem reports whether a FETCH item name carries message data:
// BODY[...], BODY.PEEK[...], BINARY[...], RFC822, RFC822.HEADER,
// RFC822.TEXT (with an optional <origin>).
func bodyItem(name string) bool {
	u := strings.ToUpper(name)
	switch u {
	case "RFC822", "RFC822.HEADER", "RFC822.TEXT":
		return true
	}
	return (strings.HasPrefix(u, "BODY[") || strings.HasPrefix(u, "BODY.PEEK[") || strings.HasPrefix(u, "BINARY[") || strings.HasPrefix(u, "BINARY.PEEK[")) && strings.Contains(u, "]")
}

// sectionSpec returns the section inside the brackets ("" for BODY[]
// and RFC822), the partial origin (-1: none).
func sectionSpec(name string) (spec string, origin int64) {
	origin = -1
	u := strings.ToUpper(name)
	switch u {
	case "RFC822", "RFC822.HEADER":
		return strings.TrimPrefix(strings.TrimPrefix(u, "RFC822"), "."), -1
	case "RFC822.TEXT":
		return "TEXT", -1
	}
	i := strings.IndexByte(u, '[')
	j := strings.LastIndexByte(u, ']')
	if i < 0 || j < i {
		return u, -1
	}
	spec = u[i+1 : j]
	rest := u[j+1:]
	if strings.HasPrefix(rest, "<") && strings.HasSuffix(rest, ">") {
		o := rest[1 : len(rest)-1]
		if k := strings.IndexByte(o, '.'); k >= 0 {
			o = o[:k]
		}
		if v, err := strconv.ParseInt(o, 10, 64); err == nil {
			origin = v
		}
	}
	return spec, origin
}

// isWholeSection reports whether a section is a whole message or a
// message header (summarised by the message parser); other sections are
// MIME parts (counted and hashed).
func isWholeSection(name string) bool {
	if name == "" { // APPEND
		return true
	}
	spec, _ := sectionSpec(name)
	if spec == "" {
		return true
	}
	if spec == "TEXT" || strings.HasSuffix(spec, ".TEXT") || strings.HasSuffix(spec, "MIME") {
		return false
	}
	return strings.HasSuffix(spec, "HEADER") || strings.Contains(spec, "HEADER.FIELDS")
}

// fetchItems returns the item list of "* n FETCH (...)", or nil.
func fetchItems(toks []Token) ([]Token, bool) {
	if len(toks) < 4 || toks[0].Value != "*" || !strings.EqualFold(toks[2].Value, "FETCH") || toks[3].Kind != KindList {
		return nil, false
	}
	return toks[3].List, true
}

// serverLiteral chooses a sink for a literal starting in a server line:
// the data of a FETCH body item.
func (x *Session) serverLiteral(pre *Line, lit *Literal) *litSink {
	items, ok := fetchItems(pre.Tokens)
	if !ok || !pre.Tokens[3].Open || len(items) == 0 {
		return nil
	}
	name := items[len(items)-1]
	if name.Kind != KindAtom || !bodyItem(name.Value) || len(items)%2 != 1 {
		return nil
	}
	s := x.newSink(lit, name.Value, "fetch")
	if n, err := strconv.ParseUint(pre.Tokens[1].Value, 10, 32); err == nil {
		s.seq = uint32(n)
	}
	return s
}

// clientLiteral chooses a sink for a literal starting in a client line:
// a message of APPEND (every literal after the mailbox name).
func (x *Session) clientLiteral(pre *Line, lit *Literal) *litSink {
	t := pre.Tokens
	if len(t) < 3 || !strings.EqualFold(t[1].Value, "APPEND") {
		return nil
	}
	return x.newSink(lit, "", "append")
}

// fetch handles "* n FETCH (...)": one imap.message per body item.
func (x *Session) fetch(seq uint32, l *Line, c *command) {
	items, ok := fetchItems(l.Tokens)
	if !ok {
		x.Anomaly(decode.AnomalyServerSyntax)
		return
	}
	var uid uint32
	var flags []string
	var size int64 = -1
	var structure *Token
	type body struct {
		name string
		val  Token
	}
	var bodies []body
	for i := 0; i+1 < len(items); i += 2 {
		name, val := items[i], items[i+1]
		switch u := strings.ToUpper(name.Value); {
		case u == "UID":
			if v, err := strconv.ParseUint(val.Value, 10, 32); err == nil {
				uid = uint32(v)
			}
		case u == "FLAGS":
			flags = atoms(val.List)
			if flags == nil {
				flags = []string{}
			}
		case u == "RFC822.SIZE":
			if v, err := strconv.ParseInt(val.Value, 10, 64); err == nil {
				size = v
			}
		case u == "BODYSTRUCTURE" || u == "BODY":
			if val.Kind == KindList {
				structure = &items[i+1]
			}
		case bodyItem(name.Value):
			bodies = append(bodies, body{name.Value, val})
		}
	}
	key := x.mailbox + "\x00" + strconv.FormatUint(uint64(seq), 10)
	if uid != 0 {
		key = x.mailbox + "\x00u" + strconv.FormatUint(uint64(uid), 10)
	}
	if structure != nil {
		x.rememberStructure(key, structure)
	}
	for _, b := range bodies {
		var s *litSink
		switch b.val.Kind {
		case KindLiteral:
			for _, k := range x.s.sinks {
				if k.lit == b.val.Lit {
					s = k
				}
			}
			if s == nil {
				s = x.newSink(b.val.Lit, b.name, "fetch")
				if b.val.Lit != nil && b.val.Lit.Inline {
					s.Write([]byte(b.val.Value))
				}
			}
		case KindQuoted, KindAtom:
			s = x.newSink(nil, b.name, "fetch")
			s.Write([]byte(b.val.Value))
			if b.val.Value == "" {
				s.start()
			}
		default: // NIL
			continue
		}
		s.seq, s.uid, s.flags, s.mailbox = seq, uid, flags, x.fetchMailbox()
		spec, origin := sectionSpec(b.name)
		if origin > 0 || (origin == 0 && (size < 0 || (b.val.Lit != nil && b.val.Lit.Size < size))) {
			s.trunc = true
		}
		m := s.finish(s.trunc)
		if m != nil && !s.whole && m.ContentType == "" {
			m.ContentType = x.partType(key, spec)
		}
		s.emit("")
	}
}

// rememberStructure keeps the content types of a message's parts, for
// later fetches of single parts.
func (x *Session) rememberStructure(key string, t *Token) {
	if x.structures == nil || len(x.structures) > 500 {
		x.structures = make(map[string]map[string]string)
	}
	m := make(map[string]string)
	walkStructure(t, "", m, 0)
	x.structures[key] = m
}

// walkStructure records "part number -> type/subtype" for a body
// structure.
func walkStructure(t *Token, path string, out map[string]string, depth int) {
	if depth > 20 || len(out) > 200 || t.Kind != KindList || len(t.List) == 0 {
		return
	}
	l := t.List
	if l[0].Kind == KindList { // multipart: parts then subtype
		n := 0
		for i := range l {
			if l[i].Kind != KindList {
				break
			}
			n++
			p := strconv.Itoa(n)
			if path != "" {
				p = path + "." + p
			}
			walkStructure(&l[i], p, out, depth+1)
		}
		return
	}
	if len(l) < 2 {
		return
	}
	ct := strings.ToLower(l[0].Value + "/" + l[1].Value)
	p := path
	if p == "" {
		p = "1"
	}
	out[p] = ct
	if ct == "message/rfc822" && len(l) > 8 && l[8].Kind == KindList {
		walkStructure(&l[8], p, out, depth+1)
	}
}

// partType returns the known content type of a section such as "2.1".
func (x *Session) partType(key, spec string) string {
	m := x.structures[key]
	if m == nil {
		return ""
	}
	return m[spec]
}
