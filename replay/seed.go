package replay

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/replay/server"
	"github.com/mailtap/mailtap/replay/server/mailstore"
)

// Seed is what the built-in server needs to answer a capture's sessions
// as the captured server did: users with passwords, and every mailbox the
// capture showed as it was when first seen.
type Seed struct {
	Users map[string]string
	// Boxes are each user's mailboxes by name.
	Boxes map[string]map[string]*SeedBox
	// Listed is set for the users whose complete mailbox list the
	// capture showed (LIST "" "*"): the store's default mailboxes the
	// capture never named are removed.
	Listed map[string]bool
}

// SeedBox is one mailbox as the capture first showed it.
type SeedBox struct {
	// Exists is false for a mailbox the capture showed did not exist
	// then (CREATE succeeded, SELECT said NONEXISTENT): not seeded.
	Exists bool
	Use    string
	// Seen is set when SELECT/EXAMINE or STATUS gave the contents.
	Seen        bool
	bySelect    bool
	UIDValidity uint32
	UIDNext     uint32
	// Msgs are the messages in sequence order.
	Msgs []*SeedMsg

	// POP3: the maildrop's first reported size (STAT or login text), for
	// the placeholders whose own size the capture did not show; and
	// whether a session committed deletions (DELE then QUIT), after
	// which later sessions number the messages differently.
	octets, octetsN int
	hasOctets       bool
	dropChanged     bool
}

// SeedMsg is one message: what the capture showed of it. Raw nil means a
// placeholder of Size bytes (-1: unknown) is seeded.
type SeedMsg struct {
	UID   uint32
	Size  int64
	Raw   []byte
	Flags []string
	Date  time.Time
	// Recent: among the last RECENT n messages of the first SELECT,
	// \Recent for the first session that selects the mailbox.
	Recent bool
	// UIDL is the POP3 unique id the captured server gave the message
	// (empty: not shown; the built-in server makes one).
	UIDL string

	// unseen is set for the message SELECT's [UNSEEN n] named: it was
	// not \Seen then, whatever a later non-PEEK FETCH shows.
	unseen bool
}

// maxSeedMessages bounds one mailbox's seeded messages.
const maxSeedMessages = 10000

// rcptPassword is the password of users made from SMTP recipients only.
const rcptPassword = "replay"

// PlaceholderMark is in every placeholder message (headers and body): a
// replayed answer that shows it depends on content the capture did not
// show, and its comparison is unverifiable.
const PlaceholderMark = "mailtap-placeholder"

// Seed derives the built-in server's users and mailboxes from the
// replayable sessions, in capture order: users and passwords from
// successful USER/PASS, LOGIN and PLAIN authentications, accepted SMTP
// recipients (local part) as users; for IMAP every mailbox named (LIST,
// LSUB, SELECT, EXAMINE, STATUS, COPY/MOVE and APPEND targets) unless its
// first mention created it, with the UIDVALIDITY, UIDNEXT and messages
// (UIDs, flags, sizes, internal dates, bodies) shown while it was
// unchanged since selected; for POP3 the maildrop (count, sizes, unique
// ids, retrieved messages) when IMAP did not show that INBOX.
func (r *Recorder) Seed(sessions []*Session) *Seed {
	sd := &Seed{Users: map[string]string{}, Boxes: map[string]map[string]*SeedBox{}, Listed: map[string]bool{}}
	for _, s := range sessions {
		if s.Skip != "" {
			continue
		}
		for _, a := range s.Record.Auths {
			if a.Success != nil && *a.Success && a.User != "" && a.Password != "" {
				if _, ok := sd.Users[a.User]; !ok || sd.Users[a.User] == rcptPassword {
					sd.Users[a.User] = a.Password
				}
			}
		}
		for _, m := range s.mails {
			for _, rc := range m.RcptTo {
				local, _, _ := strings.Cut(rc.Addr, "@")
				if rc.Accepted && local != "" {
					if _, ok := sd.Users[local]; !ok {
						sd.Users[local] = rcptPassword
					}
				}
			}
		}
	}
	for _, s := range sessions {
		if s.Skip != "" || s.Record.Auth == nil || s.Record.Auth.Success == nil || !*s.Record.Auth.Success {
			continue
		}
		user := s.Record.Auth.User
		if user == "" {
			continue
		}
		obs := observe(s, capturedEvents(s), hasGreeting(s), nil)
		switch s.Proto {
		case decode.ProtoIMAP:
			r.seedIMAP(sd, user, obs)
		case decode.ProtoPOP3:
			r.seedPOP3(sd, user, s, obs)
		}
	}
	for _, boxes := range sd.Boxes {
		if b := boxes[mailstore.Inbox]; b != nil {
			b.spreadOctets()
		}
	}
	return sd
}

// spreadOctets gives the POP3 placeholders whose size the capture did
// not show the rest of the maildrop's reported size, evenly, so that STAT
// and LIST answer as the captured server did.
func (b *SeedBox) spreadOctets() {
	if !b.hasOctets || b.octetsN > len(b.Msgs) {
		return
	}
	left, unknown := int64(b.octets), 0
	for _, m := range b.Msgs[:b.octetsN] {
		if m.Size < 0 {
			unknown++
		} else {
			left -= m.Size
		}
	}
	if unknown == 0 || left < 0 {
		return
	}
	each, extra := left/int64(unknown), left%int64(unknown)
	for _, m := range b.Msgs[:b.octetsN] {
		if m.Size < 0 {
			m.Size = each
			if extra > 0 {
				m.Size++
				extra--
			}
		}
	}
}

func (sd *Seed) box(user, name string) *SeedBox {
	if strings.EqualFold(name, mailstore.Inbox) {
		name = mailstore.Inbox
	}
	m := sd.Boxes[user]
	if m == nil {
		m = map[string]*SeedBox{}
		sd.Boxes[user] = m
	}
	b := m[name]
	if b == nil {
		b = &SeedBox{Exists: true}
		m[name] = b
	}
	return b
}

// mention records a mailbox's existence at its first mention.
func (sd *Seed) mention(user, name string, exists bool) *SeedBox {
	_, known := sd.Boxes[user][name]
	if strings.EqualFold(name, mailstore.Inbox) {
		exists = true
	}
	b := sd.box(user, name)
	if !known {
		b.Exists = exists
	}
	return b
}

// imapArgs splits command arguments into atoms and quoted strings.
func imapArgs(s string) []string {
	r := &imapResp{segs: []string{s}}
	t := &tokenizer{r: r}
	var out []string
	for !t.atEnd() {
		v, ok := t.next(0)
		if !ok {
			break
		}
		if v.kind == 'l' {
			out = append(out, v.String())
			continue
		}
		out = append(out, v.s)
	}
	return out
}

// specialUse maps LIST attributes to the store's special uses.
func specialUse(attrs string) string {
	for _, u := range []string{mailstore.SpecialDrafts, mailstore.SpecialSent, mailstore.SpecialJunk, mailstore.SpecialTrash} {
		if strings.Contains(attrs, strings.ToLower(u)) {
			return u
		}
	}
	return ""
}

func fieldsByKey(o *Obs, key string) []Field {
	var out []Field
	for _, f := range o.Fields {
		if f.Key == key {
			out = append(out, f)
		}
	}
	return out
}

func fieldInt(o *Obs, key string) (int64, bool) {
	fs := fieldsByKey(o, key)
	if len(fs) == 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(fs[0].Value, 10, 64)
	return n, err == nil
}

// readOnlyVerbs leave a selected mailbox as it was.
var readOnlyVerbs = map[string]bool{"FETCH": true, "UID FETCH": true, "SEARCH": true, "UID SEARCH": true,
	"CAPABILITY": true, "LIST": true, "LSUB": true, "STATUS": true, "NAMESPACE": true, "ID": true,
	"ENABLE": true, "NOOP": true, "CHECK": true, "SORT": true, "UID SORT": true, "THREAD": true, "UID THREAD": true}

func (r *Recorder) seedIMAP(sd *Seed, user string, obs []Obs) {
	var sel *SeedBox
	pristine := false
	var seqLimit uint32 // UIDs below it existed when the mailbox was first seen
	for i := 1; i < len(obs); i++ {
		o := &obs[i]
		ok := o.Status == "OK"
		args := imapArgs(o.Args)
		arg := func(k int) string {
			if k < len(args) {
				return args[k]
			}
			return ""
		}
		if !readOnlyVerbs[o.Verb] && o.Verb != "SELECT" && o.Verb != "EXAMINE" {
			pristine = false
		}
		for _, f := range o.Fields {
			if f.Key == "EXISTS" || f.Key == "EXPUNGE" {
				if o.Verb != "SELECT" && o.Verb != "EXAMINE" {
					pristine = false
				}
			}
		}
		switch o.Verb {
		case "LIST", "LSUB", "XLIST":
			if !ok {
				continue
			}
			for _, f := range fieldsByKey(o, o.Verb) {
				name := strings.TrimPrefix(f.Name, o.Verb+" ")
				if j := strings.LastIndex(name, " #"); j > 0 {
					name = name[:j]
				}
				b := sd.mention(user, name, true)
				if b.Use == "" && len(f.Set) > 0 {
					b.Use = specialUse(f.Set[0])
				}
			}
			if o.Verb == "LIST" && arg(0) == "" && arg(1) == "*" {
				sd.Listed[user] = true
			}
		case "SELECT", "EXAMINE":
			name := arg(0)
			sel, pristine = nil, false
			if !ok {
				sd.mention(user, name, o.Code != "NONEXISTENT")
				continue
			}
			b := sd.mention(user, name, true)
			sel = b
			if b.bySelect {
				continue
			}
			b.Seen, b.bySelect, pristine = true, true, true
			if n, ok := fieldInt(o, "EXISTS"); ok && n <= maxSeedMessages {
				b.Msgs = make([]*SeedMsg, n)
				for k := range b.Msgs {
					b.Msgs[k] = &SeedMsg{Size: -1}
				}
			}
			if n, ok := fieldInt(o, "RECENT"); ok && n > 0 && int(n) <= len(b.Msgs) {
				for _, m := range b.Msgs[len(b.Msgs)-int(n):] {
					m.Recent = true
				}
			}
			// [UNSEEN n]: the messages before n were \Seen, n was not;
			// without it (RFC 3501 sends it when a message is unseen)
			// every message was \Seen. Flags a FETCH shows replace these.
			if n, ok := fieldInt(o, "UNSEEN"); ok && n >= 1 && int(n) <= len(b.Msgs) {
				for _, m := range b.Msgs[:n-1] {
					m.Flags = []string{`\Seen`}
				}
				b.Msgs[n-1].unseen = true
			} else if !ok {
				for _, m := range b.Msgs {
					m.Flags = []string{`\Seen`}
				}
			}
			if v, ok := fieldInt(o, "UIDVALIDITY"); ok {
				b.UIDValidity = uint32(v)
			}
			if v, ok := fieldInt(o, "UIDNEXT"); ok {
				b.UIDNext = uint32(v)
			}
			seqLimit = b.UIDNext
		case "STATUS":
			if !ok {
				continue
			}
			b := sd.mention(user, arg(0), true)
			if b.Seen {
				continue
			}
			b.Seen = true
			for _, f := range o.Fields {
				n, err := strconv.ParseInt(f.Value, 10, 64)
				if err != nil {
					continue
				}
				switch f.Key {
				case "MESSAGES":
					if n <= maxSeedMessages {
						b.Msgs = make([]*SeedMsg, n)
						for k := range b.Msgs {
							b.Msgs[k] = &SeedMsg{Size: -1}
						}
					}
				case "UIDNEXT":
					b.UIDNext = uint32(n)
				case "UIDVALIDITY":
					b.UIDValidity = uint32(n)
				}
			}
		case "FETCH", "UID FETCH":
			if sel != nil && ok {
				r.seedFetch(sel, o, pristine, seqLimit)
			}
		case "COPY", "UID COPY", "MOVE", "UID MOVE":
			sd.mention(user, arg(len(args)-1), !(o.Status == "NO" && o.Code == "TRYCREATE"))
		case "APPEND":
			sd.mention(user, arg(0), !(o.Status == "NO" && o.Code == "TRYCREATE"))
		case "CREATE":
			sd.mention(user, arg(0), !ok)
		case "DELETE":
			sd.mention(user, arg(0), ok)
		case "RENAME":
			sd.mention(user, arg(0), ok)
			sd.mention(user, arg(1), !ok)
		}
	}
}

// seedFetch takes what a FETCH showed of the selected mailbox's messages:
// everything while the mailbox is unchanged since selected (pristine),
// later only bodies of messages that existed then (by UID).
func (r *Recorder) seedFetch(b *SeedBox, o *Obs, pristine bool, seqLimit uint32) {
	type item struct{ name, value string }
	per := map[int][]item{}
	var order []int
	for _, f := range o.Fields {
		rest, ok := strings.CutPrefix(f.Name, "FETCH ")
		if !ok {
			continue
		}
		ns, name, _ := strings.Cut(rest, " ")
		n, err := strconv.Atoi(ns)
		if err != nil {
			continue
		}
		if _, seen := per[n]; !seen {
			order = append(order, n)
		}
		v := f.Value
		if f.IsSet {
			v = strings.Join(f.Set, " ")
		}
		per[n] = append(per[n], item{name, v})
	}
	for _, n := range order {
		var m *SeedMsg
		var uid uint32
		for _, it := range per[n] {
			if it.name == "UID" {
				if u, err := strconv.ParseUint(it.value, 10, 32); err == nil {
					uid = uint32(u)
				}
			}
		}
		switch {
		case pristine && n >= 1 && n <= len(b.Msgs):
			m = b.Msgs[n-1]
			if uid != 0 {
				m.UID = uid
			}
		case uid != 0 && (seqLimit == 0 || uid < seqLimit):
			for _, c := range b.Msgs {
				if c.UID == uid {
					m = c
				}
			}
		}
		if m == nil {
			continue
		}
		for _, it := range per[n] {
			switch {
			case it.name == "FLAGS" && pristine:
				m.Flags = strings.Fields(it.value)
				if m.unseen {
					// \Seen set by this very FETCH (BODY[] without PEEK).
					m.Flags = slices.DeleteFunc(m.Flags, func(f string) bool { return strings.EqualFold(f, `\Seen`) })
				}
			case it.name == "RFC822.SIZE":
				if v, err := strconv.ParseInt(it.value, 10, 64); err == nil {
					m.Size = v
				}
			case it.name == "INTERNALDATE":
				if d, err := time.Parse("02-Jan-2006 15:04:05 -0700", strings.Trim(it.value, `"`)); err == nil {
					m.Date = d
				} else if d, err := time.Parse("_2-Jan-2006 15:04:05 -0700", strings.Trim(it.value, `"`)); err == nil {
					m.Date = d
				}
			case it.name == "BODY[]" || it.name == "RFC822" || it.name == "BINARY[]":
				if raw := r.rawOf(it.value); raw != nil && m.Raw == nil {
					m.Raw, m.Size = raw, int64(len(raw))
				}
			}
		}
	}
}

// rawOf finds the captured message bytes of a "sha256:HEX (n bytes)"
// field value.
func (r *Recorder) rawOf(v string) []byte {
	h, _, _ := strings.Cut(strings.TrimPrefix(v, "sha256:"), " ")
	if _, err := hex.DecodeString(h); err != nil || len(h) != 64 {
		return nil
	}
	return r.message(h)
}

func (r *Recorder) seedPOP3(sd *Seed, user string, s *Session, obs []Obs) {
	b := sd.box(user, mailstore.Inbox)
	if b.bySelect {
		return // IMAP showed this INBOX
	}
	first := !b.Seen
	// A later session sees the same numbering unless an earlier one
	// committed deletions: its LIST gives the sizes still unknown.
	same := first || !b.dropChanged
	grow := func(n int) {
		for len(b.Msgs) < n && len(b.Msgs) < maxSeedMessages {
			b.Msgs = append(b.Msgs, &SeedMsg{Size: -1})
		}
	}
	changed := false
	if st := s.Record.Mailbox; st != nil && first {
		// The size the server reported (STAT, LIST or the login text).
		b.Seen = true
		grow(st.Messages)
		if st.Messages == len(b.Msgs) && st.Octets <= 1<<40 {
			b.octets, b.octetsN, b.hasOctets = int(st.Octets), st.Messages, true
		}
	}
	for i := 1; i < len(obs); i++ {
		o := &obs[i]
		if o.Status != "+OK" {
			continue
		}
		args := strings.Fields(o.Args)
		if (o.Verb == "RETR" || o.Verb == "TOP" || o.Verb == "DELE" || o.Verb == "LIST" || o.Verb == "UIDL") && len(args) > 0 && !changed {
			// The message exists.
			if n, err := strconv.Atoi(args[0]); err == nil && n >= 1 {
				b.Seen = true
				grow(n)
			}
		}
		switch o.Verb {
		case "STAT":
			if f := fieldsByKey(o, "STAT"); len(f) > 0 && first && !changed {
				n, _ := strconv.Atoi(strings.Fields(f[0].Value)[0])
				b.Seen = true
				grow(n)
			}
		case "LIST":
			for _, f := range fieldsByKey(o, "LIST") {
				entries := f.Set
				if !f.IsSet {
					entries = []string{f.Value}
				}
				for _, e := range entries {
					p := strings.Fields(e)
					if len(p) < 2 {
						continue
					}
					n, err1 := strconv.Atoi(p[0])
					size, err2 := strconv.ParseInt(p[1], 10, 64)
					if err1 != nil || err2 != nil || n < 1 {
						continue
					}
					if !first {
						if same && n <= len(b.Msgs) && b.Msgs[n-1].Size < 0 {
							b.Msgs[n-1].Size = size
						}
						continue
					}
					b.Seen = true
					grow(n)
					if n <= len(b.Msgs) {
						b.Msgs[n-1].Size = size
					}
				}
			}
		case "UIDL":
			// Like LIST sizes: the first session gives every unique id
			// it saw; a later one only those still unknown, and none
			// once deletions renumbered the maildrop.
			for _, f := range fieldsByKey(o, "UIDL") {
				n, err := strconv.Atoi(strings.TrimPrefix(f.Name, "UIDL "))
				if err != nil || n < 1 {
					continue // "UIDL count"
				}
				if !first {
					if same && n <= len(b.Msgs) && b.Msgs[n-1].UIDL == "" {
						b.Msgs[n-1].UIDL = f.Value
					}
					continue
				}
				b.Seen = true
				grow(n)
				if n <= len(b.Msgs) {
					b.Msgs[n-1].UIDL = f.Value
				}
			}
		case "RETR":
			n, err := strconv.Atoi(strings.Join(args, ""))
			if err != nil || n < 1 || n > len(b.Msgs) {
				continue
			}
			for _, f := range fieldsByKey(o, "RETR") {
				if f.Name == "RETR sha256" && b.Msgs[n-1].Raw == nil {
					if raw := r.message(strings.TrimPrefix(f.Value, "sha256:")); raw != nil {
						b.Msgs[n-1].Raw, b.Msgs[n-1].Size = raw, int64(len(raw))
					}
				}
			}
		case "DELE":
			changed = true
		case "QUIT":
			if changed {
				b.dropChanged = true // the deletions are committed
			}
		}
	}
}

// placeholder is a message of size bytes (when size allows) standing for
// one the capture did not show; PlaceholderMark is in its headers and in
// every body line.
func placeholder(user string, n int, size int64) []byte {
	head := fmt.Appendf(nil, "From: replay@mailtap.invalid\r\nTo: %s\r\nSubject: %s %d\r\nMessage-ID: <%s-%d@mailtap.invalid>\r\n\r\n", user, PlaceholderMark, n, PlaceholderMark, n)
	if size >= 0 && int64(len(head)) > size {
		head = []byte("Subject: " + PlaceholderMark + "\r\n\r\n")
	}
	if size < 0 {
		return append(head, PlaceholderMark+": the capture did not show this message\r\n"...)
	}
	out := bytes.NewBuffer(head)
	left := size - int64(len(head))
	for left > 0 {
		line := min(left, 78)
		if line < 2 {
			out.WriteString(strings.Repeat(" ", int(line)))
			break
		}
		text := PlaceholderMark + strings.Repeat("x", 76)
		out.WriteString(text[:line-2])
		out.WriteString("\r\n")
		left -= line
	}
	return out.Bytes()
}

// StartServer starts the built-in server for the given protocols on
// 127.0.0.1 (ports picked by the system), deterministic, with the seed's
// users and mailboxes. It returns the server and its address per
// protocol.
func StartServer(sd *Seed, protos ...decode.Proto) (*server.Server, map[decode.Proto]string, error) {
	o := server.Options{Users: sd.Users, Deterministic: true}
	for _, p := range protos {
		switch p {
		case decode.ProtoSMTP:
			o.SMTPAddr = "127.0.0.1:0"
		case decode.ProtoPOP3:
			o.POP3Addr = "127.0.0.1:0"
		case decode.ProtoIMAP:
			o.IMAPAddr = "127.0.0.1:0"
		}
	}
	srv, err := server.New(o)
	if err != nil {
		return nil, nil, err
	}
	if err := sd.apply(srv.Store()); err != nil {
		srv.Close()
		return nil, nil, err
	}
	if err := srv.Start(); err != nil {
		srv.Close()
		return nil, nil, err
	}
	addrs := map[decode.Proto]string{}
	for name, a := range srv.Addrs() {
		addrs[decode.Proto(name)] = a.String()
	}
	return srv, addrs, nil
}

// apply puts the seed's mailboxes into a store whose users exist.
func (sd *Seed) apply(st *mailstore.Store) error {
	users := make([]string, 0, len(sd.Boxes))
	for u := range sd.Boxes {
		users = append(users, u)
	}
	sort.Strings(users)
	for _, u := range users {
		if _, ok := sd.Users[u]; !ok {
			continue
		}
		if sd.Listed[u] {
			infos, err := st.Mailboxes(u)
			if err != nil {
				return err
			}
			for _, in := range infos {
				if _, named := sd.Boxes[u][in.Name]; !strings.EqualFold(in.Name, mailstore.Inbox) && !named {
					if err := st.DeleteMailbox(u, in.Name); err != nil {
						return fmt.Errorf("seeding %s: %w", u, err)
					}
				}
			}
		}
		names := make([]string, 0, len(sd.Boxes[u]))
		for n := range sd.Boxes[u] {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, name := range names {
			b := sd.Boxes[u][name]
			if !b.Exists {
				if !strings.EqualFold(name, mailstore.Inbox) {
					st.DeleteMailbox(u, name) // a default mailbox the capture created
				}
				continue
			}
			msgs := make([]mailstore.SeedMessage, 0, len(b.Msgs))
			var prev uint32
			for i, m := range b.Msgs {
				uid := m.UID
				if uid <= prev {
					uid = prev + 1
				}
				prev = uid
				raw := m.Raw
				if raw == nil {
					raw = placeholder(u, i+1, m.Size)
				}
				date := m.Date
				if date.IsZero() {
					date = server.DeterministicTime
				}
				msgs = append(msgs, mailstore.SeedMessage{UID: uid, Raw: raw, Flags: m.Flags, Date: date, Recent: m.Recent, UIDL: m.UIDL})
			}
			if err := st.SeedMailbox(u, name, b.Use, b.UIDValidity, b.UIDNext, msgs); err != nil {
				return fmt.Errorf("seeding %s's %s: %w", u, name, err)
			}
		}
	}
	return nil
}
