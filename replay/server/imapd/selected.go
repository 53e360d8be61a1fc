package imapd

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mailtap/mailtap/replay/server/mailstore"
)

// poll brings the view up to date with the store and announces the
// differences. allowExpunge is false during FETCH, STORE and SEARCH.
func (c *conn) poll(allowExpunge bool) {
	v := c.sel
	if v == nil {
		return
	}
	select {
	case <-v.watcher.C:
	default:
	}
	snap, err := c.srv.opts.Store.Snapshot(c.user, v.name)
	if err != nil || snap.UIDValidity != v.validity {
		return // deleted or renamed away: nothing more to announce
	}
	present := make(map[uint32][]string, len(snap.Messages))
	for _, m := range snap.Messages {
		present[m.UID] = m.Flags
	}
	recentGone := false
	if allowExpunge {
		for i := len(v.uids) - 1; i >= 0; i-- {
			uid := v.uids[i]
			if _, ok := present[uid]; !ok {
				c.untagged(fmt.Sprintf("%d EXPUNGE", i+1))
				delete(v.flags, uid)
				if v.recent[uid] {
					delete(v.recent, uid)
					recentGone = true
				}
				v.uids = slices.Delete(v.uids, i, i+1)
			}
		}
	}
	for i, uid := range v.uids {
		if f, ok := present[uid]; ok && !slices.Equal(f, v.flags[uid]) {
			v.flags[uid] = f
			c.untagged(fmt.Sprintf("%d FETCH (UID %d FLAGS %s)", i+1, uid, c.flagsOut(uid, f)))
		}
	}
	var last uint32
	if n := len(v.uids); n > 0 {
		last = v.uids[n-1]
	}
	added := false
	for _, m := range snap.Messages {
		if m.UID > last {
			v.uids = append(v.uids, m.UID)
			v.flags[m.UID] = m.Flags
			added = true
		}
	}
	if added {
		c.claimRecent(v)
		c.untagged(fmt.Sprintf("%d EXISTS", len(v.uids)))
	}
	if (added || recentGone) && !c.rev2 {
		c.untagged(fmt.Sprintf("%d RECENT", v.recentCount()))
	}
}

// resolve returns the UIDs of the view selected by set, in view order.
func (c *conn) resolve(set seqSet, uid bool) ([]uint32, error) {
	v := c.sel
	var out []uint32
	if uid {
		var star uint32
		if n := len(v.uids); n > 0 {
			star = v.uids[n-1]
		}
		for _, u := range v.uids {
			if set.contains(u, star) {
				out = append(out, u)
			}
		}
		return out, nil
	}
	n := uint32(len(v.uids))
	for _, r := range set {
		if r.lo > n || r.hi > n {
			return nil, bad("Invalid sequence number")
		}
	}
	for i, u := range v.uids {
		if set.contains(uint32(i+1), n) {
			out = append(out, u)
		}
	}
	return out, nil
}

// formatUIDs renders a UID list as a compact set ("1:3,7").
// messagesByUID reads the selected mailbox from the store, the messages
// indexed by UID (FETCH and SEARCH work from it).
func (c *conn) messagesByUID() (map[uint32]*mailstore.Message, error) {
	snap, err := c.srv.opts.Store.Snapshot(c.user, c.sel.name)
	if err != nil {
		return nil, storeErr(err)
	}
	byUID := make(map[uint32]*mailstore.Message, len(snap.Messages))
	for i := range snap.Messages {
		byUID[snap.Messages[i].UID] = &snap.Messages[i]
	}
	return byUID, nil
}

func formatUIDs(uids []uint32) string {
	var sb strings.Builder
	for i := 0; i < len(uids); {
		j := i
		for j+1 < len(uids) && uids[j+1] == uids[j]+1 {
			j++
		}
		if sb.Len() > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.FormatUint(uint64(uids[i]), 10))
		if j > i {
			sb.WriteString(":" + strconv.FormatUint(uint64(uids[j]), 10))
		}
		i = j + 1
	}
	return sb.String()
}

func (c *conn) handleExpunge(tag string, uid bool, p *parser) error {
	var uids []uint32
	if uid {
		if !p.sp() {
			return p.err
		}
		set, ok := p.seqSet()
		if !ok {
			return p.err
		}
		var err error
		if uids, err = c.resolve(set, true); err != nil {
			return err
		}
		if uids == nil {
			uids = []uint32{}
		}
	}
	if !p.end() {
		return p.err
	}
	if c.sel.readOnly {
		return no("READ-ONLY", "Mailbox is read-only")
	}
	if _, err := c.srv.opts.Store.Expunge(c.user, c.sel.name, uids); err != nil {
		return storeErr(err)
	}
	c.poll(true)
	return nil
}

// storeFlagsArg reads the flags of STORE: a list or space-separated flags.
func (p *parser) storeFlags() ([]string, bool) {
	if p.peek() == '(' {
		return p.flagList()
	}
	var flags []string
	for {
		f, ok := p.flag()
		if !ok {
			return nil, false
		}
		flags = append(flags, f)
		if !p.consume(' ') {
			return flags, true
		}
	}
}

func (c *conn) handleStore(uid bool, p *parser) error {
	if !p.sp() {
		return p.err
	}
	set, ok := p.seqSet()
	if !ok || !p.sp() {
		return p.err
	}
	if p.consume('(') { // store modifiers (UNCHANGEDSINCE) are not supported
		return bad("STORE modifiers not supported")
	}
	item, ok := p.atom()
	if !ok || !p.sp() {
		return p.err
	}
	flags, ok := p.storeFlags()
	if !ok || !p.end() {
		return p.err
	}
	item = strings.ToUpper(item)
	silent := strings.HasSuffix(item, ".SILENT")
	var op mailstore.FlagOp
	switch strings.TrimSuffix(item, ".SILENT") {
	case "FLAGS":
		op = mailstore.FlagsSet
	case "+FLAGS":
		op = mailstore.FlagsAdd
	case "-FLAGS":
		op = mailstore.FlagsRemove
	default:
		return bad("Unknown STORE item %s", item)
	}
	uids, err := c.resolve(set, uid)
	if err != nil {
		return err
	}
	if c.sel.readOnly {
		return no("READ-ONLY", "Mailbox is read-only")
	}
	if slices.Contains(flags, `\*`) {
		return bad(`\* is not a flag`)
	}
	res, err := c.srv.opts.Store.StoreFlags(c.user, c.sel.name, uids, op, flags)
	if err != nil {
		return storeErr(err)
	}
	for _, u := range uids {
		f, ok := res[u]
		if !ok {
			continue
		}
		c.sel.flags[u] = f
		if !silent { // .SILENT also for UID STORE (RFC 3501 6.4.6; Dovecot, Cyrus)
			items := "FLAGS " + c.flagsOut(u, f)
			if uid {
				items = fmt.Sprintf("UID %d %s", u, items)
			}
			c.untagged(fmt.Sprintf("%d FETCH (%s)", c.sel.seqOf(u), items))
		}
	}
	c.poll(false)
	return nil
}

func (c *conn) handleCopy(tag string, uid, move bool, p *parser) error {
	if !p.sp() {
		return p.err
	}
	set, ok := p.seqSet()
	if !ok {
		return p.err
	}
	dest, ok := c.mailboxArg(p)
	if !ok || !p.end() {
		return p.err
	}
	uids, err := c.resolve(set, uid)
	if err != nil {
		return err
	}
	if move && c.sel.readOnly {
		return no("READ-ONLY", "Mailbox is read-only")
	}
	st := c.srv.opts.Store
	var res *mailstore.CopyResult
	if move {
		res, err = st.Move(c.user, c.sel.name, dest, uids)
	} else {
		res, err = st.Copy(c.user, c.sel.name, dest, uids)
	}
	if errors.Is(err, mailstore.ErrNoMailbox) {
		if _, serr := st.Mailbox(c.user, dest); serr != nil {
			return no("TRYCREATE", "No such mailbox")
		}
	}
	if err != nil {
		return storeErr(err)
	}
	code := ""
	if len(res.Source) > 0 {
		code = fmt.Sprintf("COPYUID %d %s %s", res.UIDValidity, formatUIDs(res.Source), formatUIDs(res.Dest))
	}
	name := "COPY"
	if move {
		name = "MOVE"
		if code != "" {
			c.untagged("OK [" + code + "] Moved")
			code = ""
		}
	}
	if uid {
		name = "UID " + name
	}
	c.poll(true)
	if code == "" {
		return &statusError{"OK", "", name + " completed"}
	}
	return &statusError{"OK", code, name + " completed"}
}

// fetchItem is one parsed FETCH data item.
type fetchItem struct {
	name    string // FLAGS, UID, ..., BODY, BODY[], RFC822...
	sec     section
	peek    bool
	partial bool
	off, n  uint32
}

func (p *parser) fetchItemName() (string, bool) {
	start := p.pos
	for !p.eof() {
		c := p.peek()
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' {
			p.pos++
			continue
		}
		break
	}
	if p.pos == start {
		return "", p.fail("expected fetch item at %d", p.pos)
	}
	return strings.ToUpper(string(p.b[start:p.pos])), true
}

func (p *parser) fetchItem() (fetchItem, bool) {
	name, ok := p.fetchItemName()
	if !ok {
		return fetchItem{}, false
	}
	it := fetchItem{name: name}
	if name == "BODY.PEEK" {
		it.name, it.peek = "BODY", true
		if p.peek() != '[' {
			return it, p.fail("expected [ after BODY.PEEK")
		}
	}
	if it.name != "BODY" || !p.consume('[') {
		return it, true
	}
	it.name = "BODY[]"
	// section: path numbers, then a spec
	for p.err == nil && p.peek() >= '0' && p.peek() <= '9' {
		n, ok := p.fetchItemName()
		if !ok {
			return it, false
		}
		for _, s := range strings.Split(strings.TrimSuffix(n, "."), ".") {
			if v, err := strconv.Atoi(s); err == nil && v > 0 && len(it.sec.path) < maxPartDepth {
				it.sec.path = append(it.sec.path, v)
			} else if err != nil {
				it.sec.spec = s // "1.HEADER" lands here
			} else {
				return it, p.fail("bad section part")
			}
		}
	}
	if it.sec.spec == "" && p.peek() != ']' {
		spec, ok := p.fetchItemName()
		if !ok {
			return it, false
		}
		it.sec.spec = strings.TrimPrefix(spec, ".")
	}
	switch it.sec.spec {
	case "", "HEADER", "TEXT":
	case "MIME":
		if len(it.sec.path) == 0 {
			return it, p.fail("MIME needs a part number")
		}
	case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
		if !p.sp() || !p.expect('(') {
			return it, false
		}
		for !p.consume(')') {
			if len(it.sec.fields) > 0 && !p.sp() {
				return it, false
			}
			f, ok := p.astring()
			if !ok {
				return it, false
			}
			it.sec.fields = append(it.sec.fields, strings.ToUpper(f))
		}
	default:
		return it, p.fail("bad section %q", it.sec.spec)
	}
	if !p.expect(']') {
		return it, false
	}
	if p.consume('<') {
		off, ok1 := p.digits()
		if !ok1 || !p.expect('.') {
			return it, false
		}
		n, ok2 := p.digits()
		if !ok2 || !p.expect('>') {
			return it, false
		}
		if n == 0 {
			return it, p.fail("partial length must be positive")
		}
		it.partial, it.off, it.n = true, off, n
	}
	return it, true
}

func (p *parser) digits() (uint32, bool) {
	start := p.pos
	for !p.eof() && p.peek() >= '0' && p.peek() <= '9' {
		p.pos++
	}
	v, err := strconv.ParseUint(string(p.b[start:p.pos]), 10, 32)
	if err != nil {
		return 0, p.fail("expected number at %d", start)
	}
	return uint32(v), true
}
