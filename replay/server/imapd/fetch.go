package imapd

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/mailtap/mailtap/replay/server/mailstore"
)

func (c *conn) handleFetch(uid bool, p *parser) error {
	if !p.sp() {
		return p.err
	}
	set, ok := p.seqSet()
	if !ok || !p.sp() {
		return p.err
	}
	var items []fetchItem
	addMacro := func(names ...string) {
		for _, n := range names {
			items = append(items, fetchItem{name: n})
		}
	}
	readOne := func() bool {
		save := p.pos
		name, ok := p.fetchItemName()
		if !ok {
			return false
		}
		switch name {
		case "ALL":
			addMacro("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE")
			return true
		case "FAST":
			addMacro("FLAGS", "INTERNALDATE", "RFC822.SIZE")
			return true
		case "FULL":
			addMacro("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY")
			return true
		}
		p.pos = save
		it, ok := p.fetchItem()
		if !ok {
			return false
		}
		switch it.name {
		case "BODY[]", "BODY", "BODYSTRUCTURE", "ENVELOPE", "FLAGS", "INTERNALDATE", "UID",
			"RFC822", "RFC822.HEADER", "RFC822.TEXT", "RFC822.SIZE":
		default:
			p.fail("unknown fetch item %s", it.name)
			return false
		}
		items = append(items, it)
		return true
	}
	if p.consume('(') {
		for !p.consume(')') {
			if len(items) > 0 && !p.sp() {
				return p.err
			}
			if len(items) > 100 || !readOne() {
				return p.err
			}
		}
	} else if !readOne() {
		return p.err
	}
	if p.consume(' ') && p.peek() == '(' { // fetch modifiers (CHANGEDSINCE) are not supported
		return bad("FETCH modifiers not supported")
	}
	if !p.end() {
		return p.err
	}
	uids, err := c.resolve(set, uid)
	if err != nil {
		return err
	}
	if uid && !slices.ContainsFunc(items, func(it fetchItem) bool { return it.name == "UID" }) {
		items = append([]fetchItem{{name: "UID"}}, items...)
	}
	setSeen := false
	for _, it := range items {
		if (it.name == "BODY[]" && !it.peek) || it.name == "RFC822" || it.name == "RFC822.TEXT" {
			setSeen = !c.sel.readOnly
		}
	}
	needBody := slices.ContainsFunc(items, func(it fetchItem) bool {
		switch it.name {
		case "UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE":
			return false
		}
		return true
	})
	byUID, err := c.messagesByUID()
	if err != nil {
		return err
	}
	for _, u := range uids {
		m, ok := byUID[u]
		if !ok {
			continue // expunged by another session, not yet announced
		}
		if needBody && m.Raw == nil {
			// A disk store reads the message's file, for this one
			// response only.
			raw, err := m.Body()
			if errors.Is(err, fs.ErrNotExist) {
				continue // expunged by another session since the snapshot
			}
			if err != nil {
				return storeErr(err)
			}
			m.Raw = raw
		}
		flagsChanged := false
		if setSeen && !slices.Contains(m.Flags, mailstore.FlagSeen) {
			res, err := c.srv.opts.Store.StoreFlags(c.user, c.sel.name, []uint32{u}, mailstore.FlagsAdd, []string{mailstore.FlagSeen})
			if err == nil && res[u] != nil {
				m.Flags = res[u]
				c.sel.flags[u] = res[u]
				flagsChanged = true
			}
		}
		c.writeFetch(c.sel.seqOf(u), m, items, flagsChanged)
		m.Raw = nil
	}
	c.poll(false)
	return nil
}

func (c *conn) writeFetch(seq int, m *mailstore.Message, items []fetchItem, addFlags bool) {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "* %d FETCH (", seq)
	var root *part
	msg := func() *part {
		if root == nil {
			root = parsePart(m.Raw, 0, "text/plain")
		}
		return root
	}
	sep := func() {
		if buf.Bytes()[buf.Len()-1] != '(' {
			buf.WriteByte(' ')
		}
	}
	literal := func(b []byte) {
		fmt.Fprintf(&buf, "{%d}\r\n", len(b))
		buf.Write(b)
	}
	hasFlags := false
	for _, it := range items {
		sep()
		switch it.name {
		case "UID":
			fmt.Fprintf(&buf, "UID %d", m.UID)
		case "FLAGS":
			hasFlags = true
			buf.WriteString("FLAGS " + c.flagsOut(m.UID, m.Flags))
		case "INTERNALDATE":
			buf.WriteString(`INTERNALDATE "` + m.InternalDate.Format(dateTimeLayout) + `"`)
		case "RFC822.SIZE":
			fmt.Fprintf(&buf, "RFC822.SIZE %d", m.Size)
		case "ENVELOPE":
			buf.WriteString("ENVELOPE " + envelope(msg().hdr))
		case "BODY":
			buf.WriteString("BODY " + msg().bodyStructure(false))
		case "BODYSTRUCTURE":
			buf.WriteString("BODYSTRUCTURE " + msg().bodyStructure(true))
		case "RFC822":
			buf.WriteString("RFC822 ")
			literal(m.Raw)
		case "RFC822.HEADER":
			buf.WriteString("RFC822.HEADER ")
			literal(msg().header)
		case "RFC822.TEXT":
			buf.WriteString("RFC822.TEXT ")
			literal(msg().body)
		case "BODY[]":
			var data []byte
			if len(it.sec.path) == 0 && it.sec.spec == "" {
				data = m.Raw
			} else {
				data = it.sec.extract(msg())
			}
			buf.WriteString("BODY[" + it.sec.String() + "]")
			if it.partial {
				fmt.Fprintf(&buf, "<%d>", it.off)
				if int(it.off) >= len(data) {
					data = nil
				} else {
					data = data[it.off:]
					if int(it.n) < len(data) {
						data = data[:it.n]
					}
				}
			}
			buf.WriteByte(' ')
			literal(data)
		}
	}
	if addFlags && !hasFlags {
		sep()
		buf.WriteString("FLAGS " + c.flagsOut(m.UID, m.Flags))
	}
	buf.WriteString(")\r\n")
	c.bw.Write(buf.Bytes())
}

// headerValue helps search: all values of a header field joined.
func headerValue(p *part, key string) string {
	return strings.Join(p.hdr.Values(key), ", ")
}
