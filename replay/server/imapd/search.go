package imapd

import (
	"bytes"
	"fmt"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailtap/mailtap/replay/server/mailstore"
)

// searchMsg is what a search key looks at.
type searchMsg struct {
	seq  uint32
	star uint32 // highest sequence number
	max  uint32 // highest UID
	m    *mailstore.Message
	root *part
	raw  []byte // the message's bytes, read when a key needs them
	// recent: \Recent in this session.
	recent bool
}

func (s *searchMsg) part() *part {
	if s.root == nil {
		s.root = parsePart(s.body(), 0, "text/plain")
	}
	return s.root
}

// body returns the message's bytes, read from a disk store's file the
// first time a key asks; a message that cannot be read (expunged by
// another session since the snapshot) is empty.
func (s *searchMsg) body() []byte {
	if s.raw == nil {
		s.raw, _ = s.m.Body()
		if s.raw == nil {
			s.raw = []byte{}
		}
	}
	return s.raw
}

type matcher func(*searchMsg) bool

func containsFold(hay []byte, needle string) bool {
	return bytes.Contains(bytes.ToLower(hay), bytes.ToLower([]byte(needle)))
}

func hasFlag(f string) matcher {
	return func(s *searchMsg) bool {
		return slices.ContainsFunc(s.m.Flags, func(x string) bool { return strings.EqualFold(x, f) })
	}
}

func not(m matcher) matcher { return func(s *searchMsg) bool { return !m(s) } }

func dayOf(t time.Time) time.Time {
	y, mo, d := t.Date()
	return time.Date(y, mo, d, 0, 0, 0, 0, time.UTC)
}

func sentDate(s *searchMsg) (time.Time, bool) {
	t, err := mail.ParseDate(s.part().hdr.Get("Date"))
	return t, err == nil
}

// searchKeys parses keys until the end of the command or a ")".
func (p *parser) searchKeys(depth int) ([]matcher, bool) {
	var keys []matcher
	for {
		if p.eof() || p.peek() == ')' {
			break
		}
		if len(keys) > 0 && !p.sp() {
			return nil, false
		}
		if p.eof() { // trailing space
			break
		}
		k, ok := p.searchKey(depth)
		if !ok {
			return nil, false
		}
		keys = append(keys, k)
	}
	return keys, true
}

func and(keys []matcher) matcher {
	return func(s *searchMsg) bool {
		for _, k := range keys {
			if !k(s) {
				return false
			}
		}
		return true
	}
}

func (p *parser) searchKey(depth int) (matcher, bool) {
	if depth > maxDepth {
		return nil, p.fail("search too deeply nested")
	}
	if p.consume('(') {
		keys, ok := p.searchKeys(depth + 1)
		if !ok || !p.expect(')') {
			return nil, false
		}
		return and(keys), true
	}
	if c := p.peek(); c >= '0' && c <= '9' || c == '*' {
		set, ok := p.seqSet()
		if !ok {
			return nil, false
		}
		return func(s *searchMsg) bool { return set.contains(s.seq, s.star) }, true
	}
	name, ok := p.atom()
	if !ok {
		return nil, false
	}
	str := func() (string, bool) {
		if !p.sp() {
			return "", false
		}
		return p.astring()
	}
	date := func() (time.Time, bool) {
		if !p.sp() {
			return time.Time{}, false
		}
		return p.date()
	}
	num := func() (uint32, bool) {
		if !p.sp() {
			return 0, false
		}
		return p.number()
	}
	headerHas := func(field string) (matcher, bool) {
		v, ok := str()
		return func(s *searchMsg) bool { return containsFold([]byte(headerValue(s.part(), field)), v) }, ok
	}
	switch strings.ToUpper(name) {
	case "ALL":
		return func(*searchMsg) bool { return true }, true
	case "ANSWERED":
		return hasFlag(mailstore.FlagAnswered), true
	case "DELETED":
		return hasFlag(mailstore.FlagDeleted), true
	case "DRAFT":
		return hasFlag(mailstore.FlagDraft), true
	case "FLAGGED":
		return hasFlag(mailstore.FlagFlagged), true
	case "SEEN":
		return hasFlag(mailstore.FlagSeen), true
	case "UNANSWERED":
		return not(hasFlag(mailstore.FlagAnswered)), true
	case "UNDELETED":
		return not(hasFlag(mailstore.FlagDeleted)), true
	case "UNDRAFT":
		return not(hasFlag(mailstore.FlagDraft)), true
	case "UNFLAGGED":
		return not(hasFlag(mailstore.FlagFlagged)), true
	case "UNSEEN":
		return not(hasFlag(mailstore.FlagSeen)), true
	case "RECENT":
		return func(s *searchMsg) bool { return s.recent }, true
	case "NEW":
		return func(s *searchMsg) bool { return s.recent && !slices.Contains(s.m.Flags, mailstore.FlagSeen) }, true
	case "OLD":
		return func(s *searchMsg) bool { return !s.recent }, true
	case "KEYWORD", "UNKEYWORD":
		if !p.sp() {
			return nil, false
		}
		f, ok := p.flag()
		if strings.ToUpper(name) == "UNKEYWORD" {
			return not(hasFlag(f)), ok
		}
		return hasFlag(f), ok
	case "BCC", "CC", "FROM", "TO", "SUBJECT":
		return headerHas(name)
	case "HEADER":
		if !p.sp() {
			return nil, false
		}
		field, ok := p.astring()
		if !ok {
			return nil, false
		}
		v, ok := str()
		return func(s *searchMsg) bool {
			vals := s.part().hdr.Values(field)
			if v == "" {
				return len(vals) > 0
			}
			return containsFold([]byte(strings.Join(vals, "\n")), v)
		}, ok
	case "BODY":
		v, ok := str()
		return func(s *searchMsg) bool { return containsFold(s.part().body, v) }, ok
	case "TEXT":
		v, ok := str()
		return func(s *searchMsg) bool { return containsFold(s.body(), v) }, ok
	case "LARGER", "SMALLER":
		n, ok := num()
		larger := strings.ToUpper(name) == "LARGER"
		return func(s *searchMsg) bool {
			if larger {
				return s.m.Size > int64(n)
			}
			return s.m.Size < int64(n)
		}, ok
	case "BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE":
		d, ok := date()
		up := strings.ToUpper(name)
		sent := strings.HasPrefix(up, "SENT")
		op := strings.TrimPrefix(up, "SENT")
		return func(s *searchMsg) bool {
			t := s.m.InternalDate
			if sent {
				var ok bool
				if t, ok = sentDate(s); !ok {
					return false
				}
			}
			day := dayOf(t)
			switch op {
			case "BEFORE":
				return day.Before(d)
			case "ON":
				return day.Equal(d)
			}
			return !day.Before(d)
		}, ok
	case "UID":
		if !p.sp() {
			return nil, false
		}
		set, ok := p.seqSet()
		return func(s *searchMsg) bool { return set.contains(s.m.UID, s.max) }, ok
	case "NOT":
		if !p.sp() {
			return nil, false
		}
		k, ok := p.searchKey(depth + 1)
		return not(k), ok
	case "OR":
		if !p.sp() {
			return nil, false
		}
		a, ok := p.searchKey(depth + 1)
		if !ok || !p.sp() {
			return nil, false
		}
		b, ok := p.searchKey(depth + 1)
		return func(s *searchMsg) bool { return a(s) || b(s) }, ok
	}
	return nil, p.fail("unknown search key %q", name)
}

func (c *conn) handleSearch(tag string, uid bool, p *parser) error {
	if !p.sp() {
		return p.err
	}
	var ret []string
	esearch := c.rev2
	if save := p.pos; true {
		if a, ok := p.atom(); ok && strings.EqualFold(a, "RETURN") {
			if !p.sp() {
				return p.err
			}
			opts, ok := p.flagList()
			if !ok || !p.sp() {
				return p.err
			}
			esearch = true
			for _, o := range opts {
				o = strings.ToUpper(o)
				switch o {
				case "MIN", "MAX", "COUNT", "ALL":
					ret = append(ret, o)
				case "SAVE":
					return bad("SEARCHRES is not supported")
				default:
					return bad("Unknown RETURN option %s", o)
				}
			}
		} else {
			p.pos, p.err = save, nil
		}
	}
	if save := p.pos; true {
		if a, ok := p.atom(); ok && strings.EqualFold(a, "CHARSET") {
			if !p.sp() {
				return p.err
			}
			cs, ok := p.astring()
			if !ok || !p.sp() {
				return p.err
			}
			switch strings.ToUpper(cs) {
			case "", "US-ASCII", "UTF-8":
			default:
				return no("BADCHARSET (US-ASCII UTF-8)", "Unsupported charset")
			}
		} else {
			p.pos, p.err = save, nil
		}
	}
	keys, ok := p.searchKeys(0)
	if !ok || !p.end() {
		return p.err
	}
	if len(keys) == 0 {
		return bad("Missing search criteria")
	}
	match := and(keys)
	byUID, err := c.messagesByUID()
	if err != nil {
		return err
	}
	v := c.sel
	var maxUID uint32
	if n := len(v.uids); n > 0 {
		maxUID = v.uids[n-1]
	}
	var hits []uint32
	for i, u := range v.uids {
		m, ok := byUID[u]
		if !ok {
			continue
		}
		if match(&searchMsg{seq: uint32(i + 1), star: uint32(len(v.uids)), max: maxUID, m: m, recent: v.recent[m.UID]}) {
			if uid {
				hits = append(hits, u)
			} else {
				hits = append(hits, uint32(i+1))
			}
		}
	}
	if !esearch {
		var sb strings.Builder
		sb.WriteString("SEARCH")
		for _, h := range hits {
			sb.WriteString(" " + strconv.FormatUint(uint64(h), 10))
		}
		c.untagged(sb.String())
		c.poll(false)
		return nil
	}
	if len(ret) == 0 {
		ret = []string{"ALL"}
	}
	line := "ESEARCH (TAG " + quote(tag) + ")"
	if uid {
		line += " UID"
	}
	if len(hits) > 0 {
		for _, r := range ret {
			switch r {
			case "MIN":
				line += fmt.Sprintf(" MIN %d", hits[0])
			case "MAX":
				line += fmt.Sprintf(" MAX %d", hits[len(hits)-1])
			case "ALL":
				line += " ALL " + formatUIDs(hits)
			}
		}
	}
	if slices.Contains(ret, "COUNT") {
		line += fmt.Sprintf(" COUNT %d", len(hits))
	}
	c.untagged(line)
	c.poll(false)
	return nil
}
