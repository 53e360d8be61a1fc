package mailstore

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// On-disk layout (one directory per user, named by the hex of the user name
// so that any name is a safe file name):
//
//	DIR/<hex user>/state.json       users, mailboxes, UIDs, flags, dates
//	DIR/<hex user>/journal.jsonl    changes since state.json, one line each
//	DIR/<hex user>/msg/<n>.eml      one file per message, the raw bytes
//
// A change is one line appended to the journal and synced before the call
// that made it returns: only what changed (a new message, new flags, a
// renamed mailbox), so a change costs the same with 10 mailboxes or
// 10,000. The line is the unit of atomicity: a MOVE (add to one mailbox,
// remove from another) is one line. When the journal has grown past twice
// the state (and 1 MiB), state.json is rewritten atomically (temporary
// file, sync, rename, sync of the directory) and the journal emptied;
// loading replays the journal over state.json and does the same. A crash
// can leave a last journal line cut short, which was never acknowledged
// and is dropped.
//
// A message file is written and synced before the journal line that refers
// to it. A crash can therefore leave at most unreferenced message files and
// temporary files, which load removes, and never a state that refers to a
// missing file.

const stateVersion = 1

type disk struct {
	dir   string
	views map[string]*userView // what is on disk, by user name
}

// userView is what the files of a user say, kept to find what a save must
// append: the user's fields, and per mailbox its fields, the version it
// had and its messages' UIDs, flags and files.
type userView struct {
	password  string
	nextFile  uint64
	validity  uint32
	boxes     map[uint64]*boxView
	list      []*boxView // in the order of user.Mailboxes at the last save
	journal   *os.File
	jsize     int64 // bytes in the journal
	stateSize int64 // bytes of state.json
}

// boxMeta is a mailbox's own fields (stateMailbox without messages).
type boxMeta struct {
	ID                   uint64
	Name, SpecialUse     string
	Subscribed           bool
	UIDValidity, UIDNext uint32
}

func (m boxMeta) state() stateMailbox {
	return stateMailbox{ID: m.ID, Name: m.Name, SpecialUse: m.SpecialUse, Subscribed: m.Subscribed,
		UIDValidity: m.UIDValidity, UIDNext: m.UIDNext}
}

type boxView struct {
	meta    boxMeta
	version uint64
	msgs    []msgView // by UID
}

type msgView struct {
	uid   uint32
	flags string
	file  uint64
	uidl  string
}

// journalEntry is one line of journal.jsonl: what one change did.
type journalEntry struct {
	User    *journalUser   `json:"user,omitempty"`
	Boxes   []stateMailbox `json:"boxes,omitempty"` // added or changed, without messages
	Msgs    []journalMsg   `json:"msgs,omitempty"`  // added, or new flags
	Rm      []journalRm    `json:"rm,omitempty"`    // messages removed
	RmBoxes []uint64       `json:"rm_boxes,omitempty"`
}

type journalUser struct {
	Password string `json:"password"`
	NextFile uint64 `json:"next_file"`
	Validity uint32 `json:"validity"`
}

type journalMsg struct {
	Box uint64       `json:"box"`
	M   stateMessage `json:"m"`
}

type journalRm struct {
	Box uint64 `json:"box"`
	UID uint32 `json:"uid"`
}

// Compaction: rewrite state.json once the journal is larger than twice
// the state and than compactMin.
const compactMin = 1 << 20

type stateFile struct {
	V         int            `json:"v"`
	Name      string         `json:"name"`
	Password  string         `json:"password"`
	NextFile  uint64         `json:"next_file"`
	Validity  uint32         `json:"validity"`
	Mailboxes []stateMailbox `json:"mailboxes"`
}

type stateMailbox struct {
	ID          uint64         `json:"id"`
	Name        string         `json:"name"`
	SpecialUse  string         `json:"special_use,omitempty"`
	Subscribed  bool           `json:"subscribed,omitempty"`
	UIDValidity uint32         `json:"uidvalidity"`
	UIDNext     uint32         `json:"uidnext"`
	Messages    []stateMessage `json:"messages"`
}

type stateMessage struct {
	UID   uint32    `json:"uid"`
	Flags []string  `json:"flags,omitempty"`
	Date  time.Time `json:"date"`
	File  uint64    `json:"file"`
	Size  int64     `json:"size"`
	UIDL  string    `json:"uidl,omitempty"`
}

func openDisk(dir string) (*disk, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mailstore: %w", err)
	}
	return &disk{dir: dir, views: make(map[string]*userView)}, nil
}

func (d *disk) userDir(name string) string {
	return filepath.Join(d.dir, hex.EncodeToString([]byte(name)))
}

func (d *disk) msgDir(u *user) string {
	return filepath.Join(d.userDir(u.Name), "msg")
}

func (d *disk) msgPath(u *user, file uint64) string {
	return msgFile(d.msgDir(u), file)
}

// msgFile is the path of message file number file in a user's msg dir.
func msgFile(msgDir string, file uint64) string {
	return filepath.Join(msgDir, strconv.FormatUint(file, 10)+".eml")
}

func (d *disk) load() ([]*user, uint32, error) {
	ents, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, 0, fmt.Errorf("mailstore: %w", err)
	}
	var users []*user
	var validity uint32
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		st, replayed, err := readState(filepath.Join(d.dir, e.Name()))
		if err != nil {
			return nil, 0, fmt.Errorf("mailstore: %s: %w", e.Name(), err)
		}
		if st == nil {
			continue
		}
		u := &user{Name: st.Name, Password: st.Password, NextFile: st.NextFile}
		validity = max(validity, st.Validity)
		refs := make(map[string]bool)
		for _, sm := range st.Mailboxes {
			mb := &mailbox{ID: sm.ID, Name: sm.Name, SpecialUse: sm.SpecialUse, Subscribed: sm.Subscribed,
				UIDValidity: sm.UIDValidity, UIDNext: sm.UIDNext}
			validity = max(validity, sm.UIDValidity)
			for _, m := range sm.Messages {
				// The bytes stay in the file: only check it is there
				// and take its size.
				p := d.msgPath(u, m.File)
				fi, err := os.Stat(p)
				if err != nil {
					return nil, 0, fmt.Errorf("mailstore: %s %s uid %d: %w", st.Name, sm.Name, m.UID, err)
				}
				refs[filepath.Base(p)] = true
				mb.Messages = append(mb.Messages, &message{UID: m.UID, Flags: m.Flags, Date: m.Date, File: m.File, Size: fi.Size(), UIDL: m.UIDL})
			}
			u.Mailboxes = append(u.Mailboxes, mb)
		}
		if replayed {
			// Fold the journal into state.json and start an empty one.
			if err := d.compact(u, max(validity, st.Validity)); err != nil {
				return nil, 0, fmt.Errorf("mailstore: %s: %w", e.Name(), err)
			}
		} else {
			d.views[u.Name] = viewOf(u, st.Validity, 0)
		}
		// Remove what a crash left behind: message files no state refers
		// to, and the temporary files of writeAtomic (".state.json.tmp*",
		// "msg/.N.eml.tmp*") that were never renamed into place.
		udir := d.userDir(u.Name)
		removeTemps(udir)
		removeTemps(filepath.Join(udir, "msg"))
		if files, err := os.ReadDir(filepath.Join(udir, "msg")); err == nil {
			for _, f := range files {
				if !refs[f.Name()] && strings.HasSuffix(f.Name(), ".eml") {
					os.Remove(filepath.Join(udir, "msg", f.Name()))
				}
			}
		}
		users = append(users, u)
	}
	return users, validity, nil
}

// removeTemps deletes the temporary files writeAtomic makes in dir
// (".NAME.tmpRANDOM"); only a crash between create and rename leaves one.
func removeTemps(dir string) {
	files, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, f := range files {
		if n := f.Name(); strings.HasPrefix(n, ".") && strings.Contains(n, ".tmp") && f.Type().IsRegular() {
			os.Remove(filepath.Join(dir, n))
		}
	}
}

// writeState replaces the user's state.json with the whole state and
// returns its size.
func (d *disk) writeState(u *user, validity uint32) (int64, error) {
	st := stateFile{V: stateVersion, Name: u.Name, Password: u.Password, NextFile: u.NextFile, Validity: validity}
	for _, mb := range u.Mailboxes {
		sm := stateMailbox{ID: mb.ID, Name: mb.Name, SpecialUse: mb.SpecialUse, Subscribed: mb.Subscribed,
			UIDValidity: mb.UIDValidity, UIDNext: mb.UIDNext, Messages: make([]stateMessage, 0, len(mb.Messages))}
		for _, m := range mb.Messages {
			sm.Messages = append(sm.Messages, stateMessage{UID: m.UID, Flags: m.Flags, Date: m.Date, File: m.File, Size: m.Size, UIDL: m.UIDL})
		}
		st.Mailboxes = append(st.Mailboxes, sm)
	}
	b, err := json.Marshal(&st)
	if err != nil {
		return 0, err
	}
	dir := d.userDir(u.Name)
	if err := os.MkdirAll(filepath.Join(dir, "msg"), 0o700); err != nil {
		return 0, err
	}
	return int64(len(b)), writeAtomic(dir, "state.json", b)
}

// writeMessage writes message file number file from r.
func (d *disk) writeMessage(u *user, file uint64, r io.Reader) error {
	dir := filepath.Join(d.userDir(u.Name), "msg")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return writeAtomicFrom(dir, strconv.FormatUint(file, 10)+".eml", r)
}

// copyMessage writes message file number to as a copy of number from.
func (d *disk) copyMessage(u *user, from, to uint64) error {
	f, err := os.Open(d.msgPath(u, from))
	if err != nil {
		return err
	}
	defer f.Close()
	return d.writeMessage(u, to, f)
}

func (d *disk) removeMessage(u *user, m *message) {
	os.Remove(d.msgPath(u, m.File))
}

// writeAtomic replaces dir/name with b: temporary file, fsync, rename, and
// fsync of the directory so the rename itself is durable.
func writeAtomic(dir, name string, b []byte) error {
	return writeAtomicFrom(dir, name, bytes.NewReader(b))
}

// writeAtomicFrom is writeAtomic with the content read from r.
func writeAtomicFrom(dir, name string, r io.Reader) error {
	f, err := os.CreateTemp(dir, "."+name+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if df, err := os.Open(dir); err == nil {
		df.Sync()
		df.Close()
	}
	return nil
}

// readState reads a user's state.json and replays journal.jsonl over it.
// It returns nil for a directory without a state, and whether the journal
// had anything in it. A last journal line cut short by a crash is dropped;
// a bad line before the last one is an error.
func readState(dir string) (*stateFile, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if os.IsNotExist(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, false, err
	}
	if st.V != stateVersion {
		return nil, false, fmt.Errorf("unknown state version %d", st.V)
	}
	jb, err := os.ReadFile(filepath.Join(dir, "journal.jsonl"))
	if os.IsNotExist(err) || len(jb) == 0 {
		return &st, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	type box struct {
		meta stateMailbox
		msgs map[uint32]stateMessage
	}
	boxes := make(map[uint64]*box)
	var order []uint64
	add := func(sm stateMailbox) *box {
		b := &box{meta: sm, msgs: make(map[uint32]stateMessage)}
		b.meta.Messages = nil
		boxes[sm.ID] = b
		order = append(order, sm.ID)
		return b
	}
	for _, sm := range st.Mailboxes {
		b := add(sm)
		for _, m := range sm.Messages {
			b.msgs[m.UID] = m
		}
	}
	lines := bytes.SplitAfter(jb, []byte("\n"))
	for i, line := range lines {
		if len(line) == 0 {
			continue
		}
		var e journalEntry
		if line[len(line)-1] != '\n' || json.Unmarshal(line, &e) != nil {
			if i == len(lines)-1 {
				break // cut short by a crash: never acknowledged
			}
			return nil, false, fmt.Errorf("journal.jsonl line %d is damaged", i+1)
		}
		if e.User != nil {
			st.Password, st.NextFile, st.Validity = e.User.Password, e.User.NextFile, e.User.Validity
		}
		for _, sm := range e.Boxes {
			if b := boxes[sm.ID]; b != nil {
				b.meta = sm
				b.meta.Messages = nil
			} else {
				add(sm)
			}
		}
		for _, m := range e.Msgs {
			if b := boxes[m.Box]; b != nil {
				b.msgs[m.M.UID] = m.M
			}
		}
		for _, r := range e.Rm {
			if b := boxes[r.Box]; b != nil {
				delete(b.msgs, r.UID)
			}
		}
		for _, id := range e.RmBoxes {
			delete(boxes, id)
		}
	}
	st.Mailboxes = st.Mailboxes[:0]
	for _, id := range order {
		b := boxes[id]
		if b == nil {
			continue
		}
		delete(boxes, id) // a box removed and added again appears once
		sm := b.meta
		sm.Messages = make([]stateMessage, 0, len(b.msgs))
		for _, m := range b.msgs {
			sm.Messages = append(sm.Messages, m)
		}
		slices.SortFunc(sm.Messages, func(a, b stateMessage) int { return cmp.Compare(a.UID, b.UID) })
		st.Mailboxes = append(st.Mailboxes, sm)
	}
	return &st, true, nil
}

func metaOf(mb *mailbox) boxMeta {
	return boxMeta{ID: mb.ID, Name: mb.Name, SpecialUse: mb.SpecialUse, Subscribed: mb.Subscribed,
		UIDValidity: mb.UIDValidity, UIDNext: mb.UIDNext}
}

func msgViewOf(m *message) msgView {
	return msgView{uid: m.UID, flags: strings.Join(m.Flags, " "), file: m.File, uidl: m.UIDL}
}

func stateMsgOf(m *message) stateMessage {
	return stateMessage{UID: m.UID, Flags: m.Flags, Date: m.Date, File: m.File, Size: m.Size, UIDL: m.UIDL}
}

// viewOf describes u as it is now (after a load or a compaction).
func viewOf(u *user, validity uint32, stateSize int64) *userView {
	v := &userView{password: u.Password, nextFile: u.NextFile, validity: validity,
		boxes: make(map[uint64]*boxView, len(u.Mailboxes)), stateSize: stateSize}
	for _, mb := range u.Mailboxes {
		bv := &boxView{meta: metaOf(mb), version: mb.version, msgs: make([]msgView, len(mb.Messages))}
		for i, m := range mb.Messages {
			bv.msgs[i] = msgViewOf(m)
		}
		v.boxes[mb.ID] = bv
		v.list = append(v.list, bv)
	}
	return v
}

// compact writes the whole state of u, then empties the journal.
func (d *disk) compact(u *user, validity uint32) error {
	v := d.views[u.Name]
	n, err := d.writeState(u, validity)
	if err != nil {
		return err
	}
	if v != nil && v.journal != nil {
		v.journal.Close()
	}
	nv := viewOf(u, validity, n)
	if err := os.Truncate(filepath.Join(d.userDir(u.Name), "journal.jsonl"), 0); err != nil && !os.IsNotExist(err) {
		return err
	}
	d.views[u.Name] = nv
	return nil
}

// saveUser makes the current state of u durable: it appends what changed
// since the last save to the journal as one line and syncs it (or, for a
// new user, writes its state.json).
func (d *disk) saveUser(u *user, validity uint32) error {
	v := d.views[u.Name]
	if v == nil {
		return d.compact(u, validity)
	}
	var e journalEntry
	if v.password != u.Password || v.nextFile != u.NextFile || v.validity != validity {
		e.User = &journalUser{Password: u.Password, NextFile: u.NextFile, Validity: validity}
	}
	// Most saves change one mailbox of many: find each one's view by its
	// position first, by its id only when the order has changed, and look
	// closer only at those whose version moved (or that are new).
	found, reorder := 0, len(u.Mailboxes) < len(v.list)
	for i, mb := range u.Mailboxes {
		var bv *boxView
		if i < len(v.list) && v.list[i].meta.ID == mb.ID {
			bv = v.list[i]
		} else {
			bv = v.boxes[mb.ID]
			if i < len(v.list) {
				reorder = true
			}
		}
		if bv != nil {
			found++
			// UIDNext and the message count are checked too, as a net
			// for a change that forgot to move the version.
			if bv.version == mb.version && bv.meta.UIDNext == mb.UIDNext && len(bv.msgs) == len(mb.Messages) {
				continue
			}
		}
		if meta := metaOf(mb); bv == nil || bv.meta != meta {
			e.Boxes = append(e.Boxes, meta.state())
		}
		var old []msgView
		if bv != nil {
			old = bv.msgs
		}
		// Both lists are in UID order: walk them side by side.
		i := 0
		for _, m := range mb.Messages {
			for i < len(old) && old[i].uid < m.UID {
				e.Rm = append(e.Rm, journalRm{Box: mb.ID, UID: old[i].uid})
				i++
			}
			if i < len(old) && old[i].uid == m.UID {
				if mv := msgViewOf(m); mv != old[i] {
					e.Msgs = append(e.Msgs, journalMsg{Box: mb.ID, M: stateMsgOf(m)})
				}
				i++
				continue
			}
			e.Msgs = append(e.Msgs, journalMsg{Box: mb.ID, M: stateMsgOf(m)})
		}
		for ; i < len(old); i++ {
			e.Rm = append(e.Rm, journalRm{Box: mb.ID, UID: old[i].uid})
		}
	}
	if found != len(v.boxes) {
		current := make(map[uint64]bool, len(u.Mailboxes))
		for _, mb := range u.Mailboxes {
			current[mb.ID] = true
		}
		for id := range v.boxes {
			if !current[id] {
				e.RmBoxes = append(e.RmBoxes, id)
			}
		}
		slices.Sort(e.RmBoxes)
	}
	if e.User == nil && e.Boxes == nil && e.Msgs == nil && e.Rm == nil && e.RmBoxes == nil {
		return nil
	}
	if v.jsize+v.stateSize > 0 && v.jsize > compactMin && v.jsize > 2*v.stateSize {
		return d.compact(u, validity)
	}
	line, err := json.Marshal(&e)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	if v.journal == nil {
		f, err := os.OpenFile(filepath.Join(d.userDir(u.Name), "journal.jsonl"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		syncDir(d.userDir(u.Name)) // the journal's name is durable too
		v.journal = f
	}
	if _, err := v.journal.Write(line); err != nil {
		return err
	}
	if err := v.journal.Sync(); err != nil {
		return err
	}
	v.jsize += int64(len(line))
	// The journal now says what u is: bring the view up to date.
	v.password, v.nextFile, v.validity = u.Password, u.NextFile, validity
	for _, id := range e.RmBoxes {
		delete(v.boxes, id)
	}
	n := len(v.list)
	if reorder {
		v.list, n = v.list[:0], 0
	}
	for i, mb := range u.Mailboxes {
		var bv *boxView
		if i < n {
			bv = v.list[i]
		} else {
			if bv = v.boxes[mb.ID]; bv == nil {
				bv = &boxView{}
				v.boxes[mb.ID] = bv
			}
			v.list = append(v.list, bv)
		}
		if bv.version == mb.version && bv.meta.ID == mb.ID && bv.meta.UIDNext == mb.UIDNext && len(bv.msgs) == len(mb.Messages) {
			continue
		}
		bv.meta, bv.version = metaOf(mb), mb.version
		bv.msgs = bv.msgs[:0]
		for _, m := range mb.Messages {
			bv.msgs = append(bv.msgs, msgViewOf(m))
		}
	}
	return nil
}

func syncDir(dir string) {
	if df, err := os.Open(dir); err == nil {
		df.Sync()
		df.Close()
	}
}

// close closes the journals.
func (d *disk) close() error {
	for _, v := range d.views {
		if v.journal != nil {
			v.journal.Close()
			v.journal = nil
		}
	}
	return nil
}
