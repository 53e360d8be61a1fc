package imapd

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mailtap/mailtap/replay/server/internal/netsrv"
	"github.com/mailtap/mailtap/replay/server/mailstore"
)

// view is the selected mailbox as this session has announced it.
type view struct {
	name     string
	readOnly bool
	validity uint32
	uids     []uint32 // index = sequence number - 1
	flags    map[uint32][]string
	watcher  *mailstore.Watcher
	// recent are the messages \Recent in this session (RFC 3501
	// 2.3.2): claimed from the store at SELECT and as they arrive.
	recent map[uint32]bool
}

// recentCount is the number of the view's messages recent in this session.
func (v *view) recentCount() int {
	n := 0
	for _, u := range v.uids {
		if v.recent[u] {
			n++
		}
	}
	return n
}

// claimRecent takes the store's unclaimed \Recent messages into a
// read-write view; a read-only one shows them without claiming (RFC 3501
// EXAMINE: the \Recent flag is not cleared).
func (c *conn) claimRecent(v *view) {
	st := c.srv.opts.Store
	claim := st.ClaimRecent
	if v.readOnly {
		claim = st.PeekRecent
	}
	uids, _ := claim(c.user, v.name)
	for _, u := range uids {
		v.recent[u] = true
	}
}

// flagsOut is a message's FLAGS list as this session shows it: with
// \Recent when the message is recent in it (not in IMAP4rev2, which has
// no \Recent).
func (c *conn) flagsOut(uid uint32, f []string) string {
	if c.sel != nil && c.sel.recent[uid] && !c.rev2 {
		f = append(slices.Clone(f), `\Recent`)
	}
	return flagList(f)
}

func (v *view) close() { v.watcher.Close() }

func (v *view) seqOf(uid uint32) int {
	i, ok := slices.BinarySearch(v.uids, uid)
	if !ok {
		return 0
	}
	return i + 1
}

// storeErr maps store errors to replies.
func storeErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mailstore.ErrNoMailbox):
		return no("NONEXISTENT", "No such mailbox")
	case errors.Is(err, mailstore.ErrMailboxExists):
		return no("ALREADYEXISTS", "Mailbox already exists")
	case errors.Is(err, mailstore.ErrOverQuota):
		return no("OVERQUOTA", "Quota exceeded") // RFC 9208
	case errors.Is(err, mailstore.ErrBadMailboxName), errors.Is(err, mailstore.ErrInboxOp):
		return no("CANNOT", "%v", strings.TrimPrefix(err.Error(), "mailstore: "))
	}
	return no("SERVERBUG", "%v", err)
}

func (c *conn) mailboxArg(p *parser) (string, bool) {
	if !p.sp() {
		return "", false
	}
	name, ok := p.astring()
	if ok && strings.EqualFold(name, mailstore.Inbox) {
		name = mailstore.Inbox
	}
	return name, ok
}

func flagList(flags []string) string { return "(" + strings.Join(flags, " ") + ")" }

func (c *conn) handleSelect(tag string, readOnly bool, p *parser) error {
	name, ok := c.mailboxArg(p)
	if !ok {
		return p.err
	}
	if p.consume(' ') { // select parameters (e.g. CONDSTORE) are ignored
		if _, ok := p.flagList(); !ok {
			return p.err
		}
	}
	if !p.end() {
		return p.err
	}
	if c.sel != nil {
		c.sel.close()
		c.sel = nil
		c.state = stateAuthenticated
		// RFC 7162 and 9051 want it; a RFC 3501 client ignores an
		// unknown code, and Dovecot sends it to every client.
		c.untagged("OK [CLOSED] Previous mailbox closed")
	}
	st := c.srv.opts.Store
	w := st.Watch(c.user, name)
	snap, err := st.Snapshot(c.user, name)
	if err != nil {
		w.Close()
		return storeErr(err)
	}
	v := &view{name: snap.Name, readOnly: readOnly, validity: snap.UIDValidity, flags: make(map[uint32][]string), watcher: w,
		recent: map[uint32]bool{}}
	var keywords []string
	firstUnseen := 0
	for i, m := range snap.Messages {
		v.uids = append(v.uids, m.UID)
		v.flags[m.UID] = m.Flags
		for _, f := range m.Flags {
			if !strings.HasPrefix(f, `\`) && !slices.Contains(keywords, f) {
				keywords = append(keywords, f)
			}
		}
		if firstUnseen == 0 && !slices.Contains(m.Flags, mailstore.FlagSeen) {
			firstUnseen = i + 1
		}
	}
	slices.Sort(keywords)
	sys := []string{`\Answered`, `\Flagged`, `\Deleted`, `\Seen`, `\Draft`}
	c.untagged("FLAGS " + flagList(append(slices.Clone(sys), keywords...)))
	if readOnly {
		c.untagged("OK [PERMANENTFLAGS ()] Read-only mailbox")
	} else {
		c.untagged("OK [PERMANENTFLAGS " + flagList(append(append(slices.Clone(sys), keywords...), `\*`)) + "] Flags permitted")
	}
	c.untagged(fmt.Sprintf("%d EXISTS", len(v.uids)))
	if !c.rev2 {
		// A read-write SELECT claims the messages still \Recent; EXAMINE
		// shows them and leaves them to the next SELECT.
		c.claimRecent(v)
		c.untagged(fmt.Sprintf("%d RECENT", v.recentCount()))
		if firstUnseen > 0 {
			c.untagged(fmt.Sprintf("OK [UNSEEN %d] First unseen", firstUnseen))
		}
	}
	c.untagged(fmt.Sprintf("OK [UIDVALIDITY %d] UIDs valid", snap.UIDValidity))
	c.untagged(fmt.Sprintf("OK [UIDNEXT %d] Predicted next UID", snap.UIDNext))
	if c.rev2 {
		c.untagged(`LIST () "/" ` + quote(snap.Name))
	}
	c.sel, c.state = v, stateSelected
	mode := "READ-WRITE"
	if readOnly {
		mode = "READ-ONLY"
	}
	cmd := "SELECT"
	if readOnly {
		cmd = "EXAMINE"
	}
	return &statusError{"OK", mode, cmd + " completed"}
}

func (c *conn) handleClose(expunge bool, p *parser) error {
	if !p.end() {
		return p.err
	}
	if expunge && !c.sel.readOnly {
		if _, err := c.srv.opts.Store.Expunge(c.user, c.sel.name, nil); err != nil && !errors.Is(err, mailstore.ErrNoMailbox) {
			return storeErr(err)
		}
	}
	c.sel.close()
	c.sel, c.state = nil, stateAuthenticated
	return nil
}

func (c *conn) handleCreate(p *parser) error {
	name, ok := c.mailboxArg(p)
	if !ok {
		return p.err
	}
	use := ""
	if p.consume(' ') { // CREATE-SPECIAL-USE: (USE (\Sent))
		if !p.expect('(') {
			return p.err
		}
		a, ok := p.atom()
		if !ok || !strings.EqualFold(a, "USE") || !p.sp() {
			p.fail("expected USE")
			return p.err
		}
		uses, ok := p.flagList()
		if !ok || !p.expect(')') {
			return p.err
		}
		if len(uses) > 0 {
			use = uses[0]
		}
	}
	if !p.end() {
		return p.err
	}
	name = strings.TrimSuffix(name, "/")
	if name == mailstore.Inbox {
		return no("ALREADYEXISTS", "INBOX always exists")
	}
	return storeErr(c.srv.opts.Store.CreateMailbox(c.user, name, use))
}

func (c *conn) handleDelete(p *parser) error {
	name, ok := c.mailboxArg(p)
	if !ok || !p.end() {
		return p.err
	}
	if c.sel != nil && c.sel.name == name {
		return no("INUSE", "Mailbox is selected")
	}
	return storeErr(c.srv.opts.Store.DeleteMailbox(c.user, name))
}

func (c *conn) handleRename(p *parser) error {
	from, ok := c.mailboxArg(p)
	if !ok {
		return p.err
	}
	to, ok := c.mailboxArg(p)
	if !ok || !p.end() {
		return p.err
	}
	return storeErr(c.srv.opts.Store.RenameMailbox(c.user, from, to))
}

func (c *conn) handleSubscribe(sub bool, p *parser) error {
	name, ok := c.mailboxArg(p)
	if !ok || !p.end() {
		return p.err
	}
	return storeErr(c.srv.opts.Store.SetSubscribed(c.user, name, sub))
}

// match reports whether name matches an IMAP LIST pattern: "*" matches
// anything, "%" anything but the hierarchy delimiter.
func match(pattern, name string) bool {
	if pattern == "" {
		return name == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(name); i++ {
			if match(pattern[1:], name[i:]) {
				return true
			}
		}
		return false
	case '%':
		for i := 0; i <= len(name); i++ {
			if match(pattern[1:], name[i:]) {
				return true
			}
			if i < len(name) && name[i] == '/' {
				return false
			}
		}
		return false
	}
	if name == "" {
		return false
	}
	pc, nc := pattern[0], name[0]
	return pc == nc && match(pattern[1:], name[1:])
}

func matchName(pattern, name string) bool {
	if strings.HasPrefix(strings.ToUpper(pattern), "INBOX") && name == mailstore.Inbox {
		pattern = mailstore.Inbox + pattern[5:]
	}
	if strings.Count(pattern, "*")+strings.Count(pattern, "%") > 20 {
		return false // bound the backtracking
	}
	return match(pattern, name)
}

func (c *conn) handleList(lsub bool, p *parser) error {
	var selSubscribed, selSpecial, retSubscribed, retChildren, retSpecial bool
	var statusItems []string
	if !p.sp() {
		return p.err
	}
	if !lsub && p.peek() == '(' {
		opts, ok := p.flagList()
		if !ok {
			return p.err
		}
		for _, o := range opts {
			switch strings.ToUpper(o) {
			case "SUBSCRIBED":
				selSubscribed, retSubscribed = true, true
			case "SPECIAL-USE":
				selSpecial, retSpecial = true, true
			case "RECURSIVEMATCH", "REMOTE":
			default:
				return bad("Unknown LIST selection option %s", o)
			}
		}
		if !p.sp() {
			return p.err
		}
	}
	ref, ok := p.astring()
	if !ok || !p.sp() {
		return p.err
	}
	var patterns []string
	if !lsub && p.consume('(') {
		for !p.consume(')') {
			if len(patterns) > 0 && !p.sp() {
				return p.err
			}
			pat, ok := p.listMailbox()
			if !ok {
				return p.err
			}
			patterns = append(patterns, pat)
		}
	} else {
		pat, ok := p.listMailbox()
		if !ok {
			return p.err
		}
		patterns = append(patterns, pat)
	}
	if !lsub && p.consume(' ') {
		a, ok := p.atom()
		if !ok || !strings.EqualFold(a, "RETURN") || !p.sp() || !p.expect('(') {
			p.fail("expected RETURN options")
			return p.err
		}
		for !p.consume(')') {
			p.consume(' ')
			o, ok := p.atom()
			if !ok {
				return p.err
			}
			switch strings.ToUpper(o) {
			case "SUBSCRIBED":
				retSubscribed = true
			case "CHILDREN":
				retChildren = true
			case "SPECIAL-USE":
				retSpecial = true
			case "STATUS":
				if !p.sp() {
					return p.err
				}
				items, ok := p.flagList()
				if !ok {
					return p.err
				}
				statusItems = items
			default:
				return bad("Unknown LIST return option %s", o)
			}
		}
	}
	if !p.end() {
		return p.err
	}
	_ = retChildren // \HasChildren/\HasNoChildren are always returned (CHILDREN)
	if len(patterns) == 1 && patterns[0] == "" && !lsub {
		c.untagged(`LIST (\Noselect) "/" ""`)
		return nil
	}
	boxes, err := c.srv.opts.Store.Mailboxes(c.user)
	if err != nil {
		return storeErr(err)
	}
	verb := "LIST"
	if lsub {
		verb = "LSUB"
	}
	for _, mb := range boxes {
		matched := false
		for _, pat := range patterns {
			full := pat
			if ref != "" && !strings.HasPrefix(pat, "/") {
				full = ref + pat
			}
			if matchName(full, mb.Name) {
				matched = true
			}
		}
		if !matched || ((lsub || selSubscribed) && !mb.Subscribed) || (selSpecial && mb.SpecialUse == "") {
			continue
		}
		var attrs []string
		hasChildren := false
		for _, o := range boxes {
			if strings.HasPrefix(o.Name, mb.Name+"/") {
				hasChildren = true
			}
		}
		if !lsub {
			if hasChildren {
				attrs = append(attrs, `\HasChildren`)
			} else {
				attrs = append(attrs, `\HasNoChildren`)
			}
			if mb.SpecialUse != "" && (retSpecial || !selSpecial) {
				attrs = append(attrs, mb.SpecialUse)
			}
			if retSubscribed && mb.Subscribed {
				attrs = append(attrs, `\Subscribed`)
			}
		}
		c.untagged(verb + " " + flagList(attrs) + ` "/" ` + quote(mb.Name))
		if len(statusItems) > 0 {
			if line, err := c.statusLine(mb, statusItems); err == nil {
				c.untagged(line)
			}
		}
	}
	return nil
}

func (c *conn) statusLine(mb mailstore.MailboxInfo, items []string) (string, error) {
	var out []string
	for _, it := range items {
		var v any
		switch strings.ToUpper(it) {
		case "MESSAGES":
			v = mb.Messages
		case "UIDNEXT":
			v = mb.UIDNext
		case "UIDVALIDITY":
			v = mb.UIDValidity
		case "UNSEEN":
			v = mb.Unseen
		case "DELETED":
			v = mb.Deleted
		case "SIZE":
			v = mb.Size
		case "RECENT":
			uids, _ := c.srv.opts.Store.PeekRecent(c.user, mb.Name)
			v = len(uids)
		default:
			return "", bad("Unknown STATUS item %s", it)
		}
		out = append(out, fmt.Sprintf("%s %v", strings.ToUpper(it), v))
	}
	return "STATUS " + quote(mb.Name) + " (" + strings.Join(out, " ") + ")", nil
}

func (c *conn) handleStatus(p *parser) error {
	name, ok := c.mailboxArg(p)
	if !ok || !p.sp() {
		return p.err
	}
	items, ok := p.flagList()
	if !ok || !p.end() {
		return p.err
	}
	mb, err := c.srv.opts.Store.Mailbox(c.user, name)
	if err != nil {
		return storeErr(err)
	}
	line, err := c.statusLine(mb, items)
	if err != nil {
		return err
	}
	c.untagged(line)
	return nil
}

func (c *conn) handleAppend(tag string, p *parser) error {
	name, ok := c.mailboxArg(p)
	if !ok || !p.sp() {
		return p.err
	}
	var flags []string
	var date time.Time
	if p.peek() == '(' {
		if flags, ok = p.flagList(); !ok || !p.sp() {
			return p.err
		}
	}
	if p.peek() == '"' {
		if date, ok = p.dateTime(); !ok || !p.sp() {
			return p.err
		}
	}
	var msg []byte
	if p.consume('~') { // literal8 (BINARY) is accepted as is
	}
	if msg, ok = p.literal(); !ok || !p.end() {
		return p.err
	}
	validity, uid, err := c.srv.opts.Store.Append(c.user, name, msg, flags, date)
	if errors.Is(err, mailstore.ErrNoMailbox) {
		return no("TRYCREATE", "No such mailbox")
	}
	if err != nil {
		return storeErr(err)
	}
	c.poll(true)
	return &statusError{"OK", fmt.Sprintf("APPENDUID %d %d", validity, uid), "APPEND completed"}
}

func (c *conn) handleIdle(tag string, p *parser) error {
	if !p.end() {
		return p.err
	}
	var changes <-chan struct{}
	if c.sel != nil {
		changes = c.sel.watcher.C
	}
	c.bw.WriteString("+ idling\r\n")
	c.poll(true)
	if err := c.flush(); err != nil {
		return err
	}
	type result struct {
		line []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		c.nc.SetReadDeadline(time.Now().Add(c.srv.opts.IdleTimeout))
		line, err := netsrv.ReadLine(c.br, c.srv.opts.MaxLineLength)
		done <- result{line, err}
	}()
	for {
		select {
		case <-changes:
			c.poll(true)
			if err := c.flush(); err != nil {
				<-done
				return err
			}
		case r := <-done:
			if r.err != nil {
				if errors.Is(r.err, netsrv.ErrLineTooLong) {
					return bad("Line too long")
				}
				return r.err
			}
			if !strings.EqualFold(string(r.line), "DONE") {
				return bad("Expected DONE")
			}
			return nil
		}
	}
}
