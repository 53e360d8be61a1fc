package replay

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailtap/mailtap/decode"
)

// An Obs is what one command (or the greeting, index 0) showed of the
// server: the decoder's verb, status, response code and text, and the
// fields extracted from the raw answer (EHLO keywords, FETCH items ...).
// The captured and the replayed exchange are observed by the same code
// (observe), so every difference is the server's.
type Obs struct {
	// Index is the command's position in the captured exchange (0 the
	// greeting, commands from 1).
	Index        int
	Tag          string
	Verb         string
	Args         string
	Status       any
	Code         string
	Text         string
	Intermediate []int
	Latency      *float64  // ms, from the decoder
	At           time.Time // when the command was sent
	Fields       []Field
}

// A Field is one compared value of an answer. Set-valued fields (EHLO
// keywords, CAPABILITY, LIST entries, SEARCH results) are compared as
// sets and report what was added and removed.
type Field struct {
	// Name says where the value is ("EHLO", "FETCH 2 BODY[]", "STAT").
	Name string
	// Key is the rule name (--ignore) of the field: "EHLO", "BODY[]",
	// "INTERNALDATE", "CAPABILITY" ...
	Key   string
	Value string
	Set   []string
	IsSet bool
	// Pair names the scope ("session" or "run") in which the value is
	// compared as "the same value where the capture had the same value"
	// instead of literally (UIDVALIDITY, UIDL); empty: literal.
	Pair string
	// Unverifiable is set on a replayed value that shows a placeholder
	// of the built-in server (content the capture never showed).
	Unverifiable bool
}

func valueField(name, key, v string) Field { return Field{Name: name, Key: key, Value: v} }

func setField(name, key string, set []string) Field {
	s := slices.Clone(set)
	slices.Sort(s)
	s = slices.Compact(s)
	return Field{Name: name, Key: key, Set: s, IsSet: true, Value: strings.Join(s, " ")}
}

// observe decodes one exchange (greeting and turns, as events) with the
// protocol's decoder and extracts, per command record, the fields of its
// raw answer. greet says whether the first server answer is a greeting.
// The result has the greeting at index 0 (Verb "greeting"; absent
// greeting: a zero Obs) and the commands from index 1.
//
// skip lists the verbs left out of the replay (--skip): a skipped DELE
// does not count in the captured POP3 deleted set.
func observe(s *Session, ev []event, greet bool, skip map[string]bool) []Obs {
	cmds := decodeCommands(s, ev)
	var stream []byte
	for _, e := range ev {
		if e.dir == decode.ServerToClient {
			stream = append(stream, e.data...)
		}
	}
	out := make([]Obs, len(cmds)+1)
	for i, c := range cmds {
		out[i+1] = Obs{Index: i + 1, Tag: c.Tag, Verb: c.Verb, Args: c.Args, Status: c.Status, Code: c.Code, Text: c.Text,
			Intermediate: c.Intermediate, Latency: c.LatencyMS, At: c.TS}
	}
	switch s.Proto {
	case decode.ProtoSMTP:
		observeSMTP(out, stream, greet)
	case decode.ProtoPOP3:
		observePOP3(out, stream, greet, skip)
	case decode.ProtoIMAP:
		observeIMAP(out, stream, greet)
	}
	for i := range out {
		out[i].Fields = uniqueNames(out[i].Fields)
	}
	return out
}

func sha(p []byte) string {
	sum := sha256.Sum256(p)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// lines cuts a stream into lines without their CRLF/LF; a last line
// without a line end is kept (the answer was cut short).
func lines(p []byte) []string {
	var out []string
	for len(p) > 0 {
		i := strings.IndexByte(string(p), '\n')
		if i < 0 {
			out = append(out, string(p))
			break
		}
		out = append(out, strings.TrimSuffix(string(p[:i]), "\r"))
		p = p[i+1:]
	}
	return out
}

// ---- SMTP ----

type smtpReply struct {
	code  int
	lines []string // text after the code and separator
}

func smtpReplies(stream []byte) []smtpReply {
	var out []smtpReply
	var cur *smtpReply
	for _, l := range lines(stream) {
		if len(l) < 3 || !isDigit(l[0]) || !isDigit(l[1]) || !isDigit(l[2]) {
			continue
		}
		code, _ := strconv.Atoi(l[:3])
		text := ""
		if len(l) > 4 {
			text = l[4:]
		}
		if cur == nil {
			out = append(out, smtpReply{code: code})
			cur = &out[len(out)-1]
		}
		cur.lines = append(cur.lines, text)
		if len(l) == 3 || l[3] != '-' {
			cur = nil
		}
	}
	return out
}

func observeSMTP(out []Obs, stream []byte, greet bool) {
	rs := smtpReplies(stream)
	next := 0
	take := func() *smtpReply {
		if next >= len(rs) {
			return nil
		}
		next++
		return &rs[next-1]
	}
	if greet {
		if r := take(); r != nil {
			out[0] = Obs{Verb: "greeting", Status: r.code, Text: r.lines[0]}
		}
	}
	var accepted []string
	for i := 1; i < len(out); i++ {
		o := &out[i]
		for range o.Intermediate {
			take()
		}
		if o.Status == nil {
			continue
		}
		r := take()
		if r == nil {
			continue
		}
		switch o.Verb {
		case "EHLO":
			if len(r.lines) > 1 && r.code/100 == 2 {
				var ext []string
				for _, l := range r.lines[1:] {
					kw, params, _ := strings.Cut(strings.TrimSpace(l), " ")
					ext = append(ext, strings.TrimSpace(strings.ToUpper(kw)+" "+params))
				}
				o.Fields = append(o.Fields, setField("EHLO", "EHLO", ext))
			}
		case "MAIL", "RSET", "HELO":
			accepted = nil
		case "RCPT":
			if r.code/100 == 2 {
				accepted = append(accepted, strings.TrimSpace(o.Args))
			}
		case "DATA", "BDAT":
			if o.Verb == "BDAT" && !strings.Contains(strings.ToUpper(o.Args), "LAST") && r.code/100 == 2 {
				continue
			}
			o.Fields = append(o.Fields, setField("accepted recipients", "RCPT", accepted))
			accepted = nil
		}
	}
}

// ---- POP3 ----

type pop3Answer struct {
	status string // "+OK", "-ERR", "+" (continuation)
	line   string
	body   []string
	raw    []byte // the body as sent, dot-unstuffed, with CRLFs
}

func observePOP3(out []Obs, stream []byte, greet bool, skip map[string]bool) {
	ls := lines(stream)
	li := 0
	// next reads one status line (multi: with a body when +OK).
	next := func(multi bool) *pop3Answer {
		for li < len(ls) {
			l := ls[li]
			li++
			a := &pop3Answer{line: l}
			switch {
			case strings.HasPrefix(l, "+OK"):
				a.status = "+OK"
			case strings.HasPrefix(l, "-ERR"):
				a.status = "-ERR"
				return a
			case strings.HasPrefix(l, "+"):
				a.status = "+"
				return a
			default:
				continue
			}
			if !multi {
				return a
			}
			for li < len(ls) {
				b := ls[li]
				li++
				if b == "." {
					break
				}
				b = strings.TrimPrefix(b, ".")
				a.body = append(a.body, b)
				a.raw = append(a.raw, b...)
				a.raw = append(a.raw, '\r', '\n')
			}
			return a
		}
		return nil
	}
	if greet {
		if a := next(false); a != nil {
			out[0] = Obs{Verb: "greeting", Status: a.status, Text: strings.TrimSpace(strings.TrimPrefix(a.line, a.status))}
		}
	}
	deleted := []string{}
	for i := 1; i < len(out); i++ {
		o := &out[i]
		if o.Status == nil {
			continue
		}
		args := strings.Fields(o.Args)
		multi := false
		switch o.Verb {
		case "RETR", "TOP", "CAPA":
			multi = true
		case "LIST", "UIDL", "AUTH", "LANG":
			multi = len(args) == 0
		}
		var a *pop3Answer
		for {
			a = next(multi)
			if a == nil || a.status != "+" || o.Verb != "AUTH" || len(args) == 0 {
				break
			}
		}
		if a == nil || a.status != "+OK" {
			continue
		}
		rest := strings.Fields(strings.TrimPrefix(a.line, "+OK"))
		switch o.Verb {
		case "CAPA":
			var caps []string
			for _, b := range a.body {
				kw, params, _ := strings.Cut(strings.TrimSpace(b), " ")
				caps = append(caps, strings.TrimSpace(strings.ToUpper(kw)+" "+params))
			}
			o.Fields = append(o.Fields, setField("CAPA", "CAPA", caps))
		case "STAT":
			if len(rest) >= 2 {
				o.Fields = append(o.Fields, valueField("STAT", "STAT", rest[0]+" "+rest[1]))
			}
		case "LIST":
			if multi {
				o.Fields = append(o.Fields, setField("LIST", "LIST", a.body))
			} else if len(rest) >= 2 {
				o.Fields = append(o.Fields, valueField("LIST", "LIST", rest[0]+" "+rest[1]))
			}
		case "UIDL":
			entries := a.body
			if !multi {
				entries = []string{strings.Join(rest, " ")}
			}
			for _, e := range entries {
				f := strings.Fields(e)
				if len(f) >= 2 {
					o.Fields = append(o.Fields, Field{Name: "UIDL " + f[0], Key: "UIDL", Value: f[1], Pair: "run"})
				}
			}
			if multi {
				o.Fields = append(o.Fields, valueField("UIDL count", "UIDL", strconv.Itoa(len(a.body))))
			}
		case "RETR", "TOP":
			ph := bytes.Contains(a.raw, []byte(PlaceholderMark))
			o.Fields = append(o.Fields, Field{Name: o.Verb + " sha256", Key: o.Verb, Value: sha(a.raw), Unverifiable: ph},
				Field{Name: o.Verb + " size", Key: o.Verb, Value: strconv.Itoa(len(a.raw)), Unverifiable: ph})
		case "DELE":
			if len(args) > 0 && !skip["DELE"] {
				deleted = append(deleted, args[0])
			}
		case "RSET":
			deleted = deleted[:0]
		case "QUIT":
			o.Fields = append(o.Fields, setField("deleted", "deleted", deleted))
		}
	}
}

// ---- IMAP ----

// imapResp is one server response: its text with literals cut out (a
// literal's text is in lits, its place marked in the text by its
// "{n}" and the line end that followed).
type imapResp struct {
	segs []string // text segments; literal i follows segs[i]
	lits [][]byte
}

// imapResponses cuts a server stream into responses, literals kept.
func imapResponses(stream []byte) []imapResp {
	var out []imapResp
	var cur *imapResp
	for len(stream) > 0 {
		i := strings.IndexByte(string(stream), '\n')
		var l string
		if i < 0 {
			l, stream = string(stream), nil
		} else {
			l, stream = strings.TrimSuffix(string(stream[:i]), "\r"), stream[i+1:]
		}
		if cur == nil {
			out = append(out, imapResp{})
			cur = &out[len(out)-1]
		}
		cur.segs = append(cur.segs, l)
		if n, ok := litSuffix(l); ok {
			k := min(int64(len(stream)), n)
			cur.lits = append(cur.lits, stream[:k])
			stream = stream[k:]
			continue
		}
		cur = nil
	}
	return out
}

// litSuffix reads a "{n}" (or "{n+}", "{n-}") at the end of a line.
func litSuffix(l string) (int64, bool) {
	if !strings.HasSuffix(l, "}") {
		return 0, false
	}
	i := strings.LastIndexByte(l, '{')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimRight(l[i+1:len(l)-1], "+-"), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// A tok is one parsed IMAP value: an atom (number, flag, section name),
// a string (quoted or literal), NIL, or a parenthesised list.
type tok struct {
	kind byte // 'a' atom, 's' string, 'n' NIL, 'l' list
	s    string
	list []tok
}

type tokenizer struct {
	r   *imapResp
	seg int
	pos int
}

func (t *tokenizer) cur() string {
	if t.seg >= len(t.r.segs) {
		return ""
	}
	return t.r.segs[t.seg]
}

func (t *tokenizer) skipSpace() {
	for t.seg < len(t.r.segs) && t.pos < len(t.cur()) && t.cur()[t.pos] == ' ' {
		t.pos++
	}
}

func (t *tokenizer) atEnd() bool {
	t.skipSpace()
	return t.seg >= len(t.r.segs) || (t.pos >= len(t.cur()) && t.seg == len(t.r.segs)-1)
}

// next parses one value; depth bounds nesting.
func (t *tokenizer) next(depth int) (tok, bool) {
	t.skipSpace()
	if t.seg >= len(t.r.segs) || depth > 64 {
		return tok{}, false
	}
	l := t.cur()
	if t.pos >= len(l) {
		return tok{}, false
	}
	switch c := l[t.pos]; {
	case c == '(':
		t.pos++
		var lst []tok
		for {
			t.skipSpace()
			if t.pos < len(t.cur()) && t.cur()[t.pos] == ')' {
				t.pos++
				return tok{kind: 'l', list: lst}, true
			}
			v, ok := t.next(depth + 1)
			if !ok {
				return tok{kind: 'l', list: lst}, false
			}
			lst = append(lst, v)
		}
	case c == '"':
		var b strings.Builder
		i := t.pos + 1
		for ; i < len(l) && l[i] != '"'; i++ {
			if l[i] == '\\' && i+1 < len(l) {
				i++
			}
			b.WriteByte(l[i])
		}
		t.pos = min(i+1, len(l))
		return tok{kind: 's', s: b.String()}, true
	case c == '{':
		// A literal: the rest of this segment is "{n}", its bytes are
		// lits[seg], and the response goes on in the next segment.
		if t.seg < len(t.r.lits) {
			s := string(t.r.lits[t.seg])
			t.seg++
			t.pos = 0
			return tok{kind: 's', s: s}, true
		}
		t.pos = len(l)
		return tok{}, false
	default:
		i, depthB := t.pos, 0
		for ; i < len(l); i++ {
			ch := l[i]
			if ch == '[' {
				depthB++
			} else if ch == ']' && depthB > 0 {
				depthB--
			} else if depthB == 0 && (ch == ' ' || ch == '(' || ch == ')') {
				break
			}
		}
		if i == t.pos { // a stray ")"
			t.pos++
			return tok{kind: 'a', s: l[i : i+1]}, true
		}
		s := l[t.pos:i]
		t.pos = i
		if strings.EqualFold(s, "NIL") {
			return tok{kind: 'n', s: "NIL"}, true
		}
		return tok{kind: 'a', s: s}, true
	}
}

// render writes a value canonically (strings quoted, lists in parens).
func (v tok) render(b *strings.Builder) {
	switch v.kind {
	case 'l':
		b.WriteByte('(')
		for i, e := range v.list {
			if i > 0 {
				b.WriteByte(' ')
			}
			e.render(b)
		}
		b.WriteByte(')')
	case 's':
		b.WriteString(strconv.Quote(v.s))
	default:
		b.WriteString(v.s)
	}
}

func (v tok) String() string {
	var b strings.Builder
	v.render(&b)
	return b.String()
}

func (v tok) strs() []string {
	var out []string
	for _, e := range v.list {
		out = append(out, e.s)
	}
	return out
}

// respCode splits "[NAME args] text" into the code's name and args.
func respCode(text string) (name, args, rest string) {
	if !strings.HasPrefix(text, "[") {
		return "", "", text
	}
	end := strings.IndexByte(text, ']')
	if end < 0 {
		return "", "", text
	}
	name, args, _ = strings.Cut(text[1:end], " ")
	return strings.ToUpper(name), args, strings.TrimSpace(text[end+1:])
}

// imapObserver accumulates the fields of the untagged responses of the
// command in flight.
type imapObserver struct {
	fields []Field
	kinds  map[string]int
	order  []string
}

func (ob *imapObserver) kind(k string) {
	if ob.kinds == nil {
		ob.kinds = map[string]int{}
	}
	if ob.kinds[k] == 0 {
		ob.order = append(ob.order, k)
	}
	ob.kinds[k]++
}

// code adds the fields of a response code.
func (ob *imapObserver) code(name, args string) {
	switch name {
	case "":
	case "CAPABILITY":
		ob.fields = append(ob.fields, setField("CAPABILITY", "CAPABILITY", upperFields(args)))
	case "PERMANENTFLAGS":
		ob.fields = append(ob.fields, setField("PERMANENTFLAGS", "PERMANENTFLAGS", strings.Fields(strings.Trim(args, "()"))))
	case "UIDVALIDITY":
		ob.fields = append(ob.fields, Field{Name: "UIDVALIDITY", Key: "UIDVALIDITY", Value: args, Pair: "session"})
	case "APPENDUID", "COPYUID":
		f := strings.Fields(args)
		if len(f) == 0 {
			return
		}
		ob.fields = append(ob.fields, Field{Name: name + " uidvalidity", Key: "UIDVALIDITY", Value: f[0], Pair: "session"})
		var shape []string
		for _, set := range f[1:] {
			shape = append(shape, strconv.Itoa(uidSetLen(set)))
		}
		ob.fields = append(ob.fields, valueField(name, name, strings.Join(shape, " -> ")))
	default:
		ob.fields = append(ob.fields, valueField(name, name, args))
	}
}

// uidSetLen counts the UIDs of a set such as "1:3,7" (a range counts its
// size; "*" and bad parts count one).
func uidSetLen(s string) int {
	n := 0
	for _, part := range strings.Split(s, ",") {
		a, b, ok := strings.Cut(part, ":")
		x, e1 := strconv.Atoi(a)
		y, e2 := strconv.Atoi(b)
		if ok && e1 == nil && e2 == nil {
			n += max(x, y) - min(x, y) + 1
		} else {
			n++
		}
	}
	return n
}

func upperFields(s string) []string {
	f := strings.Fields(s)
	for i := range f {
		f[i] = strings.ToUpper(f[i])
	}
	return f
}

// untagged adds the fields of one untagged response.
func (ob *imapObserver) untagged(r *imapResp) {
	first := strings.TrimPrefix(r.segs[0], "* ")
	word, rest, _ := strings.Cut(first, " ")
	if n, err := strconv.ParseUint(word, 10, 32); err == nil {
		kw, more, _ := strings.Cut(rest, " ")
		kw = strings.ToUpper(kw)
		ob.kind(kw)
		switch kw {
		case "EXISTS", "RECENT":
			ob.fields = append(ob.fields, valueField(kw, kw, word))
		case "EXPUNGE":
			ob.fields = append(ob.fields, valueField("EXPUNGE", "EXPUNGE", word))
		case "FETCH":
			ob.fetch(n, r, len(first)-len(more))
		}
		return
	}
	word = strings.ToUpper(word)
	ob.kind(word)
	switch word {
	case "OK", "NO", "BAD", "PREAUTH", "BYE":
		name, args, _ := respCode(rest)
		ob.code(name, args)
	case "CAPABILITY":
		ob.fields = append(ob.fields, setField("CAPABILITY", "CAPABILITY", upperFields(rest)))
	case "ENABLED":
		ob.fields = append(ob.fields, setField("ENABLED", "ENABLED", upperFields(rest)))
	case "FLAGS":
		ob.fields = append(ob.fields, setField("FLAGS", "FLAGS", strings.Fields(strings.Trim(rest, "()"))))
	case "SEARCH", "SORT":
		ob.fields = append(ob.fields, setField(word, word, strings.Fields(rest)))
	case "LIST", "LSUB", "XLIST":
		t := &tokenizer{r: r, pos: len(r.segs[0]) - len(rest)}
		attrs, _ := t.next(0)
		delim, _ := t.next(0)
		name, _ := t.next(0)
		a := attrs.strs()
		for i := range a {
			a[i] = strings.ToLower(a[i])
		}
		slices.Sort(a)
		ob.fields = append(ob.fields, setField(word+" "+name.s, word, []string{fmt.Sprintf("(%s) %s", strings.Join(a, " "), delim.String())}))
	case "STATUS":
		t := &tokenizer{r: r, pos: len(r.segs[0]) - len(rest)}
		mbox, _ := t.next(0)
		items, _ := t.next(0)
		for i := 0; i+1 < len(items.list); i += 2 {
			k := strings.ToUpper(items.list[i].s)
			f := valueField("STATUS "+mbox.s+" "+k, k, items.list[i+1].s)
			if k == "UIDVALIDITY" {
				f.Pair = "session"
			}
			ob.fields = append(ob.fields, f)
		}
	case "NAMESPACE":
		t := &tokenizer{r: r, pos: len(r.segs[0]) - len(rest)}
		var parts []string
		for !t.atEnd() {
			v, ok := t.next(0)
			if !ok {
				break
			}
			parts = append(parts, v.String())
		}
		ob.fields = append(ob.fields, valueField("NAMESPACE", "NAMESPACE", strings.Join(parts, " ")))
	}
}

// fetch adds one field per item of "* n FETCH (...)"; bodies by hash.
// When any item shows a placeholder of the built-in server, the items
// that depend on the content are unverifiable.
func (ob *imapObserver) fetch(n uint64, r *imapResp, off int) {
	t := &tokenizer{r: r, pos: off + len("* ")}
	list, _ := t.next(0)
	start := len(ob.fields)
	defer func() {
		if !strings.Contains(list.String(), PlaceholderMark) {
			return
		}
		for i := start; i < len(ob.fields); i++ {
			if k := ob.fields[i].Key; k != "FLAGS" && k != "UID" && k != "MODSEQ" {
				ob.fields[i].Unverifiable = true
			}
		}
	}()
	for i := 0; i+1 < len(list.list); i += 2 {
		name := strings.ToUpper(list.list[i].s)
		v := list.list[i+1]
		key := name
		var val string
		switch {
		case strings.HasPrefix(name, "BODY[") || strings.HasPrefix(name, "BINARY[") || strings.HasPrefix(name, "RFC822") && name != "RFC822.SIZE":
			if j := strings.IndexByte(key, '['); j >= 0 {
				key = key[j:]
			}
			if v.kind == 'n' {
				val = "NIL"
			} else {
				val = fmt.Sprintf("%s (%d bytes)", sha([]byte(v.s)), len(v.s))
			}
		case name == "FLAGS":
			f := setField(fmt.Sprintf("FETCH %d FLAGS", n), "FLAGS", v.strs())
			ob.fields = append(ob.fields, f)
			continue
		default:
			val = v.String()
		}
		ob.fields = append(ob.fields, valueField(fmt.Sprintf("FETCH %d %s", n, name), key, val))
	}
}

func (ob *imapObserver) take() []Field {
	// EXISTS and RECENT announce the mailbox's state: a server may send
	// one for two arrivals or one each, so only the last counts (and
	// its presence among the kinds).
	for _, k := range []string{"EXISTS", "RECENT"} {
		last := -1
		for i, f := range ob.fields {
			if f.Key == k {
				last = i
			}
		}
		if last < 0 {
			continue
		}
		kept := ob.fields[:0]
		for i, f := range ob.fields {
			if f.Key != k || i == last {
				kept = append(kept, f)
			}
		}
		ob.fields = kept
		ob.kinds[k] = 1
	}
	f := ob.fields
	if len(ob.order) > 0 {
		slices.Sort(ob.order)
		var parts []string
		for _, k := range ob.order {
			parts = append(parts, fmt.Sprintf("%s %d", k, ob.kinds[k]))
		}
		f = append([]Field{valueField("untagged", "untagged", strings.Join(parts, ", "))}, f...)
	}
	*ob = imapObserver{}
	return f
}

// uniqueNames numbers repeated field names ("EXISTS", "EXISTS #2") so
// that every value of a command is compared.
func uniqueNames(fs []Field) []Field {
	seen := map[string]int{}
	for i := range fs {
		seen[fs[i].Name]++
		if n := seen[fs[i].Name]; n > 1 {
			fs[i].Name = fmt.Sprintf("%s #%d", fs[i].Name, n)
		}
	}
	return fs
}

func observeIMAP(out []Obs, stream []byte, greet bool) {
	rs := imapResponses(stream)
	// Command records by tag, in order (a reused tag takes the next).
	byTag := map[string][]int{}
	for i := 1; i < len(out); i++ {
		if out[i].Status != nil {
			byTag[out[i].Tag] = append(byTag[out[i].Tag], i)
		}
	}
	var ob imapObserver
	start := 0
	if greet && len(rs) > 0 && strings.HasPrefix(rs[0].segs[0], "* ") {
		first := strings.TrimPrefix(rs[0].segs[0], "* ")
		word, rest, _ := strings.Cut(first, " ")
		name, args, text := respCode(rest)
		ob.code(name, args)
		out[0] = Obs{Verb: "greeting", Status: strings.ToUpper(word), Code: name, Text: text, Fields: ob.take()}
		start = 1
	}
	for k := start; k < len(rs); k++ {
		r := &rs[k]
		l := r.segs[0]
		switch {
		case strings.HasPrefix(l, "* "):
			ob.untagged(r)
		case strings.HasPrefix(l, "+"):
		default:
			tag, rest, _ := strings.Cut(l, " ")
			_, rest, _ = strings.Cut(rest, " ")
			name, args, _ := respCode(rest)
			ob.code(name, args)
			idx := byTag[tag]
			if len(idx) == 0 {
				ob.take()
				continue
			}
			byTag[tag] = idx[1:]
			out[idx[0]].Fields = ob.take()
		}
	}
}
