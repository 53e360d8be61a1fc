// Package mailstore is the mail store shared by the built-in SMTP, POP3 and
// IMAP servers: users with passwords, mailboxes with UIDVALIDITY and UIDNEXT,
// and messages with UIDs, flags and internal dates.
//
// A Store is safe for concurrent use. Every change is visible to every
// protocol at once, and watchers (Watch) are told about it, so an IMAP IDLE
// announces an SMTP delivery.
//
// By default the store lives in memory. With Options.Dir it is also kept on
// disk (see persist.go) and every change is durable before the call that made
// it returns.
package mailstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Special-use attributes (RFC 6154) of the mailboxes created for every user.
const (
	SpecialDrafts = `\Drafts`
	SpecialSent   = `\Sent`
	SpecialJunk   = `\Junk`
	SpecialTrash  = `\Trash`
)

// Well-known flags.
const (
	FlagSeen     = `\Seen`
	FlagAnswered = `\Answered`
	FlagFlagged  = `\Flagged`
	FlagDeleted  = `\Deleted`
	FlagDraft    = `\Draft`
)

// Inbox is the name of every user's inbox; it is matched case-insensitively.
const Inbox = "INBOX"

// Errors returned by the store. Callers map them to protocol replies.
var (
	ErrNoUser         = errors.New("mailstore: no such user")
	ErrNoMailbox      = errors.New("mailstore: no such mailbox")
	ErrMailboxExists  = errors.New("mailstore: mailbox already exists")
	ErrBadMailboxName = errors.New("mailstore: invalid mailbox name")
	ErrInboxOp        = errors.New("mailstore: operation not allowed on INBOX")
	ErrUserExists     = errors.New("mailstore: user already exists")
	// ErrOverQuota refuses a message that would take a user past
	// Options.QuotaBytes.
	ErrOverQuota = errors.New("mailstore: over quota")
)

// defaultMailboxes are created for every new user, with their special use.
var defaultMailboxes = []struct{ name, use string }{
	{"Drafts", SpecialDrafts},
	{"Sent", SpecialSent},
	{"Junk", SpecialJunk},
	{"Trash", SpecialTrash},
}

// Options configures a Store. The zero value is an in-memory store with the
// wall clock.
type Options struct {
	// Dir, when not empty, keeps the store on disk under Dir.
	Dir string
	// Clock gives internal dates and UIDVALIDITY seeds; nil means time.Now.
	Clock func() time.Time
	// Deterministic makes UIDVALIDITY a counter starting at 1 instead of a
	// value derived from the clock.
	Deterministic bool
	// QuotaBytes, when above 0, bounds the bytes of all the messages of
	// one user: Append, Deliver, Copy and Move that would go past it fail
	// with ErrOverQuota (a Move within the user never does).
	QuotaBytes int64
}

// Store is the mail store.
type Store struct {
	mu       sync.Mutex
	users    map[string]*user
	clock    func() time.Time
	det      bool
	validity uint32 // last UIDVALIDITY handed out
	disk     *disk  // nil for a memory-only store
	quota    int64

	wmu      sync.Mutex
	watchers map[*Watcher]struct{}
}

type user struct {
	Name      string
	Password  string
	Mailboxes []*mailbox
	NextFile  uint64 // next message file id (disk store)
}

type mailbox struct {
	ID          uint64 // stable, survives renames
	Name        string
	SpecialUse  string
	Subscribed  bool
	UIDValidity uint32
	UIDNext     uint32
	Messages    []*message // ordered by UID
	// version goes up with every change of the mailbox or its messages;
	// the disk store saves only the mailboxes whose version moved.
	version uint64
	// recentFrom: the messages from this UID on are \Recent and no IMAP
	// session has claimed them yet (RFC 3501 2.3.2). Not saved: after a
	// restart every message is new to the server.
	recentFrom uint32
}

// unclaimedRecent lists the UIDs of the \Recent messages no session has
// claimed yet.
func (mb *mailbox) unclaimedRecent() []uint32 {
	var out []uint32
	for _, m := range mb.Messages {
		if m.UID >= mb.recentFrom {
			out = append(out, m.UID)
		}
	}
	return out
}

type message struct {
	UID   uint32
	Flags []string
	Date  time.Time
	File  uint64
	Size  int64
	// UIDL is the POP3 unique-id listing value a seed gave the message;
	// empty means the server makes its own.
	UIDL string
	// raw is the message of a memory-only store; a disk store keeps it
	// in its file only (File) and leaves raw nil.
	raw []byte
}

// ClaimRecent returns the UIDs of the mailbox's \Recent messages no
// session has claimed yet, and claims them: RFC 3501 has a message recent
// in exactly one session, the first to select the mailbox (or to be told
// of the message while it has it selected, read-write).
func (s *Store) ClaimRecent(userName, name string) ([]uint32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, mb, err := s.mailboxLocked(userName, name)
	if err != nil {
		return nil, err
	}
	out := mb.unclaimedRecent()
	mb.recentFrom = mb.UIDNext
	return out, nil
}

// PeekRecent returns the UIDs of the mailbox's \Recent messages no
// session has claimed, leaving them unclaimed (EXAMINE shows them,
// STATUS counts them; the next SELECT claims them).
func (s *Store) PeekRecent(userName, name string) ([]uint32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, mb, err := s.mailboxLocked(userName, name)
	if err != nil {
		return nil, err
	}
	return mb.unclaimedRecent(), nil
}

// Message describes one message in a Snapshot. Read its bytes with Body.
type Message struct {
	UID          uint32
	Flags        []string
	InternalDate time.Time
	Size         int64
	// Raw is the message of a memory-only store, shared with the store
	// (it must not be modified). A disk store keeps messages in their
	// files only and leaves Raw nil: Body reads the file.
	Raw []byte
	// UIDL is the POP3 unique id the message was seeded with (empty:
	// none; the POP3 server then derives one from UIDVALIDITY and UID).
	UIDL string
	// msgDir and file name the message's file in a disk store (msgDir
	// is "" in a memory store).
	msgDir string
	file   uint64
}

// Body returns the message's bytes: Raw, or in a disk store the content
// of its file, read now (each call reads it again; nothing is cached).
// A message removed since the snapshot was taken gives an error that
// matches fs.ErrNotExist.
func (m *Message) Body() ([]byte, error) {
	if m.Raw != nil || m.msgDir == "" {
		return m.Raw, nil
	}
	b, err := os.ReadFile(msgFile(m.msgDir, m.file))
	if err != nil {
		return nil, fmt.Errorf("mailstore: message %d: %w", m.UID, err)
	}
	return b, nil
}

// Snapshot is a consistent copy of a mailbox at one moment.
type Snapshot struct {
	Name        string
	UIDValidity uint32
	UIDNext     uint32
	Messages    []Message
}

// MailboxInfo describes one mailbox, as listed by Mailboxes.
type MailboxInfo struct {
	Name        string
	SpecialUse  string
	Subscribed  bool
	UIDValidity uint32
	UIDNext     uint32
	Messages    int
	Unseen      int
	Deleted     int
	Size        int64
}

// New opens a store. With o.Dir set, the state found there is loaded.
func New(o Options) (*Store, error) {
	s := &Store{
		users:    make(map[string]*user),
		clock:    o.Clock,
		det:      o.Deterministic,
		watchers: make(map[*Watcher]struct{}),
		quota:    o.QuotaBytes,
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if o.Dir != "" {
		d, err := openDisk(o.Dir)
		if err != nil {
			return nil, err
		}
		s.disk = d
		users, validity, err := d.load()
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			s.users[u.Name] = u
		}
		s.validity = validity
	}
	return s, nil
}

func (s *Store) nextValidity() uint32 {
	v := s.validity + 1
	if !s.det {
		if now := uint32(s.clock().Unix()); now > v {
			v = now
		}
	}
	s.validity = v
	return v
}

// AddUser creates a user with an INBOX and the special-use mailboxes. If the
// user exists (for example loaded from disk), its password is updated.
func (s *Store) AddUser(name, password string) error {
	if name == "" {
		return errors.New("mailstore: empty user name")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.users[name]; ok {
		if u.Password == password {
			return nil
		}
		u.Password = password
		return s.saveLocked(u)
	}
	u := &user{Name: name, Password: password}
	u.Mailboxes = append(u.Mailboxes, s.newMailboxLocked(u, Inbox, ""))
	for _, m := range defaultMailboxes {
		mb := s.newMailboxLocked(u, m.name, m.use)
		mb.Subscribed = true
		u.Mailboxes = append(u.Mailboxes, mb)
	}
	u.Mailboxes[0].Subscribed = true
	s.users[name] = u
	return s.saveLocked(u)
}

func (s *Store) newMailboxLocked(u *user, name, use string) *mailbox {
	var id uint64
	for _, mb := range u.Mailboxes {
		id = max(id, mb.ID)
	}
	return &mailbox{ID: id + 1, Name: name, SpecialUse: use, UIDValidity: s.nextValidity(), UIDNext: 1}
}

// Users returns the user names, sorted.
func (s *Store) Users() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.users))
	for n := range s.users {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// HasUser reports whether the user exists.
func (s *Store) HasUser(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.users[name]
	return ok
}

// Password returns a user's clear-text password (for APOP and CRAM-MD5).
func (s *Store) Password(name string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[name]
	if !ok {
		return "", false
	}
	return u.Password, true
}

// Authenticate reports whether name and password match a user.
func (s *Store) Authenticate(name, password string) bool {
	p, ok := s.Password(name)
	return ok && p == password
}

func (s *Store) userLocked(name string) (*user, error) {
	u, ok := s.users[name]
	if !ok {
		return nil, ErrNoUser
	}
	return u, nil
}

func isInbox(name string) bool { return strings.EqualFold(name, Inbox) }

func (u *user) find(name string) (int, *mailbox) {
	for i, mb := range u.Mailboxes {
		if mb.Name == name || (isInbox(name) && mb.Name == Inbox) {
			return i, mb
		}
	}
	return -1, nil
}

func (s *Store) mailboxLocked(userName, name string) (*user, *mailbox, error) {
	u, err := s.userLocked(userName)
	if err != nil {
		return nil, nil, err
	}
	_, mb := u.find(name)
	if mb == nil {
		return nil, nil, ErrNoMailbox
	}
	return u, mb, nil
}

// Mailboxes lists a user's mailboxes, INBOX first, then by name.
func (s *Store) Mailboxes(userName string) ([]MailboxInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.userLocked(userName)
	if err != nil {
		return nil, err
	}
	out := make([]MailboxInfo, 0, len(u.Mailboxes))
	for _, mb := range u.Mailboxes {
		out = append(out, mb.info())
	}
	sort.SliceStable(out, func(i, j int) bool {
		if isInbox(out[i].Name) != isInbox(out[j].Name) {
			return isInbox(out[i].Name)
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// Mailbox describes one mailbox.
func (s *Store) Mailbox(userName, name string) (MailboxInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, mb, err := s.mailboxLocked(userName, name)
	if err != nil {
		return MailboxInfo{}, err
	}
	return mb.info(), nil
}

func (mb *mailbox) info() MailboxInfo {
	in := MailboxInfo{
		Name: mb.Name, SpecialUse: mb.SpecialUse, Subscribed: mb.Subscribed,
		UIDValidity: mb.UIDValidity, UIDNext: mb.UIDNext, Messages: len(mb.Messages),
	}
	for _, m := range mb.Messages {
		if !slices.Contains(m.Flags, FlagSeen) {
			in.Unseen++
		}
		if slices.Contains(m.Flags, FlagDeleted) {
			in.Deleted++
		}
		in.Size += m.Size
	}
	return in
}

func validName(name string) bool {
	if name == "" || len(name) > 512 || strings.ContainsAny(name, "\r\n\x00*%") {
		return false
	}
	return !strings.HasPrefix(name, "/") && !strings.HasSuffix(name, "/") && !strings.Contains(name, "//")
}

// CreateMailbox creates a mailbox. Parent mailboxes in a hierarchical name
// ("a/b/c") are created as needed. use is an optional special-use attribute.
func (s *Store) CreateMailbox(userName, name, use string) error {
	if !validName(name) {
		return ErrBadMailboxName
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.userLocked(userName)
	if err != nil {
		return err
	}
	if _, mb := u.find(name); mb != nil {
		return ErrMailboxExists
	}
	parts := strings.Split(name, "/")
	for i := 1; i < len(parts); i++ {
		parent := strings.Join(parts[:i], "/")
		if _, mb := u.find(parent); mb == nil {
			u.Mailboxes = append(u.Mailboxes, s.newMailboxLocked(u, parent, ""))
		}
	}
	u.Mailboxes = append(u.Mailboxes, s.newMailboxLocked(u, name, use))
	return s.saveLocked(u)
}

// DeleteMailbox deletes a mailbox and its messages. INBOX cannot be deleted.
func (s *Store) DeleteMailbox(userName, name string) error {
	if isInbox(name) {
		return ErrInboxOp
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, mb, err := s.mailboxLocked(userName, name)
	if err != nil {
		return err
	}
	i := slices.Index(u.Mailboxes, mb)
	u.Mailboxes = slices.Delete(u.Mailboxes, i, i+1)
	if err := s.saveLocked(u); err != nil {
		return err
	}
	s.removeFilesLocked(u, mb.Messages)
	mb.version++
	s.notify(userName, mb.Name)
	return nil
}

// RenameMailbox renames a mailbox and its children. Renaming INBOX moves all
// its messages to a new mailbox and leaves INBOX empty (RFC 9051 6.3.6).
func (s *Store) RenameMailbox(userName, oldName, newName string) error {
	if !validName(newName) || isInbox(newName) {
		return ErrBadMailboxName
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, mb, err := s.mailboxLocked(userName, oldName)
	if err != nil {
		return err
	}
	if _, dup := u.find(newName); dup != nil {
		return ErrMailboxExists
	}
	if mb.Name == Inbox {
		nb := s.newMailboxLocked(u, newName, "")
		nb.Messages, nb.UIDNext, nb.recentFrom = mb.Messages, mb.UIDNext, mb.recentFrom
		mb.Messages = nil
		mb.version++
		u.Mailboxes = append(u.Mailboxes, nb)
		if err := s.saveLocked(u); err != nil {
			return err
		}
		s.notify(userName, Inbox)
		return nil
	}
	prefix := mb.Name + "/"
	for _, c := range u.Mailboxes {
		if strings.HasPrefix(c.Name, prefix) {
			c.Name = newName + "/" + strings.TrimPrefix(c.Name, prefix)
			c.version++
		}
	}
	mb.Name = newName
	mb.version++
	return s.saveLocked(u)
}

// SetSubscribed changes the subscription of a mailbox.
func (s *Store) SetSubscribed(userName, name string, sub bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, mb, err := s.mailboxLocked(userName, name)
	if err != nil {
		return err
	}
	mb.Subscribed = sub
	mb.version++
	return s.saveLocked(u)
}

// Snapshot returns a consistent copy of a mailbox.
func (s *Store) Snapshot(userName, name string) (*Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, mb, err := s.mailboxLocked(userName, name)
	if err != nil {
		return nil, err
	}
	snap := &Snapshot{Name: mb.Name, UIDValidity: mb.UIDValidity, UIDNext: mb.UIDNext,
		Messages: make([]Message, len(mb.Messages))}
	var msgDir string
	if s.disk != nil {
		msgDir = s.disk.msgDir(u)
	}
	for i, m := range mb.Messages {
		snap.Messages[i] = Message{UID: m.UID, Flags: slices.Clone(m.Flags), InternalDate: m.Date, Size: m.Size, Raw: m.raw, UIDL: m.UIDL,
			msgDir: msgDir, file: m.File}
	}
	return snap, nil
}

// Deliver appends a message to a user's INBOX; it is what SMTP calls.
func (s *Store) Deliver(userName string, raw []byte) (uid uint32, err error) {
	_, uid, err = s.Append(userName, Inbox, raw, nil, time.Time{})
	return uid, err
}

// Append adds a message to a mailbox with the given flags and internal date
// (zero means now). It returns the mailbox's UIDVALIDITY and the new UID.
func (s *Store) Append(userName, name string, raw []byte, flags []string, date time.Time) (validity, uid uint32, err error) {
	if date.IsZero() {
		date = s.clock()
	}
	if s.disk == nil {
		raw = slices.Clone(raw) // kept; a disk store writes it and drops it
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, mb, err := s.mailboxLocked(userName, name)
	if err != nil {
		return 0, 0, err
	}
	if !s.fitsLocked(u, int64(len(raw))) {
		return 0, 0, ErrOverQuota
	}
	m := &message{UID: mb.UIDNext, Flags: normFlags(flags), Date: date, Size: int64(len(raw)), raw: raw}
	if err := s.writeMessageLocked(u, m); err != nil {
		return 0, 0, err
	}
	mb.UIDNext++
	mb.Messages = append(mb.Messages, m)
	mb.version++
	if err := s.saveLocked(u); err != nil {
		mb.Messages = mb.Messages[:len(mb.Messages)-1]
		return 0, 0, err
	}
	s.notify(userName, mb.Name)
	return mb.UIDValidity, m.UID, nil
}

// FlagOp says how StoreFlags changes flags.
type FlagOp int

// Flag operations (IMAP STORE FLAGS, +FLAGS, -FLAGS).
const (
	FlagsSet FlagOp = iota
	FlagsAdd
	FlagsRemove
)

// StoreFlags changes the flags of the messages with the given UIDs and
// returns the new flags of each message that exists.
func (s *Store) StoreFlags(userName, name string, uids []uint32, op FlagOp, flags []string) (map[uint32][]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, mb, err := s.mailboxLocked(userName, name)
	if err != nil {
		return nil, err
	}
	flags = normFlags(flags)
	out := make(map[uint32][]string, len(uids))
	changed := false
	for _, m := range mb.select_(uids) {
		var nf []string
		switch op {
		case FlagsSet:
			nf = slices.Clone(flags)
		case FlagsAdd:
			nf = normFlags(append(slices.Clone(m.Flags), flags...))
		case FlagsRemove:
			nf = slices.DeleteFunc(slices.Clone(m.Flags), func(f string) bool { return containsFold(flags, f) })
		}
		if !slices.Equal(nf, m.Flags) {
			m.Flags = nf
			changed = true
		}
		out[m.UID] = slices.Clone(m.Flags)
	}
	if changed {
		mb.version++
		if err := s.saveLocked(u); err != nil {
			return nil, err
		}
		s.notify(userName, mb.Name)
	}
	return out, nil
}

// Expunge removes the messages flagged \Deleted; with uids not nil, only
// those among them. It returns the removed UIDs in ascending order.
func (s *Store) Expunge(userName, name string, uids []uint32) ([]uint32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, mb, err := s.mailboxLocked(userName, name)
	if err != nil {
		return nil, err
	}
	var del []uint32
	for _, m := range mb.Messages {
		if slices.Contains(m.Flags, FlagDeleted) && (uids == nil || slices.Contains(uids, m.UID)) {
			del = append(del, m.UID)
		}
	}
	return del, s.removeLocked(userName, mb, del)
}

// Remove removes the given messages whatever their flags (POP3 QUIT).
func (s *Store) Remove(userName, name string, uids []uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, mb, err := s.mailboxLocked(userName, name)
	if err != nil {
		return err
	}
	return s.removeLocked(userName, mb, uids)
}

func (s *Store) removeLocked(userName string, mb *mailbox, uids []uint32) error {
	if len(uids) == 0 {
		return nil
	}
	u := s.users[userName]
	var gone []*message
	mb.Messages = slices.DeleteFunc(mb.Messages, func(m *message) bool {
		if slices.Contains(uids, m.UID) {
			gone = append(gone, m)
			return true
		}
		return false
	})
	if len(gone) == 0 {
		return nil
	}
	mb.version++
	if err := s.saveLocked(u); err != nil {
		return err
	}
	s.removeFilesLocked(u, gone)
	s.notify(userName, mb.Name)
	return nil
}

// CopyResult is the COPYUID data of a copy or move (RFC 4315).
type CopyResult struct {
	UIDValidity uint32
	Source      []uint32
	Dest        []uint32
}

// Copy copies messages to another mailbox, keeping flags and dates.
func (s *Store) Copy(userName, src, dst string, uids []uint32) (*CopyResult, error) {
	return s.copyMove(userName, src, dst, uids, false)
}

// Move moves messages to another mailbox atomically.
func (s *Store) Move(userName, src, dst string, uids []uint32) (*CopyResult, error) {
	return s.copyMove(userName, src, dst, uids, true)
}

func (s *Store) copyMove(userName, src, dst string, uids []uint32, move bool) (*CopyResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, from, err := s.mailboxLocked(userName, src)
	if err != nil {
		return nil, err
	}
	_, to, err := s.mailboxLocked(userName, dst)
	if err != nil {
		return nil, err
	}
	res := &CopyResult{UIDValidity: to.UIDValidity}
	if !move {
		var size int64
		for _, m := range from.select_(uids) {
			size += m.Size
		}
		if !s.fitsLocked(u, size) {
			return nil, ErrOverQuota
		}
	}
	var added []*message
	for _, m := range from.select_(uids) {
		c := &message{UID: to.UIDNext, Flags: slices.Clone(m.Flags), Date: m.Date, Size: m.Size, raw: m.raw}
		if err := s.copyMessageLocked(u, m, c); err != nil {
			s.removeFilesLocked(u, added)
			return nil, err
		}
		to.UIDNext++
		added = append(added, c)
		res.Source = append(res.Source, m.UID)
		res.Dest = append(res.Dest, c.UID)
	}
	if len(added) == 0 {
		return res, nil
	}
	to.Messages = append(to.Messages, added...)
	to.version++
	var gone []*message
	if move {
		from.Messages = slices.DeleteFunc(from.Messages, func(m *message) bool {
			if slices.Contains(res.Source, m.UID) && !slices.Contains(added, m) {
				gone = append(gone, m)
				return true
			}
			return false
		})
		from.version++
	}
	if err := s.saveLocked(u); err != nil {
		return nil, err
	}
	s.removeFilesLocked(u, gone)
	s.notify(userName, to.Name)
	if move && from != to {
		s.notify(userName, from.Name)
	}
	return res, nil
}

// fitsLocked reports whether n more bytes fit in u's quota.
func (s *Store) fitsLocked(u *user, n int64) bool {
	if s.quota <= 0 {
		return true
	}
	used := n
	for _, mb := range u.Mailboxes {
		for _, m := range mb.Messages {
			used += m.Size
		}
	}
	return used <= s.quota
}

// Fits reports whether a message of n bytes fits in the user's quota now
// (SMTP asks at RCPT time, with the size the client declared).
func (s *Store) Fits(userName string, n int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[userName]
	return !ok || s.fitsLocked(u, n)
}

// select_ returns the messages whose UID is in uids, in UID order.
func (mb *mailbox) select_(uids []uint32) []*message {
	var out []*message
	for _, m := range mb.Messages {
		if slices.Contains(uids, m.UID) {
			out = append(out, m)
		}
	}
	return out
}

func containsFold(list []string, f string) bool {
	for _, x := range list {
		if strings.EqualFold(x, f) {
			return true
		}
	}
	return false
}

// normFlags canonicalises system flags (\seen -> \Seen), drops \Recent and
// duplicates, and sorts.
func normFlags(flags []string) []string {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		for _, sys := range []string{FlagSeen, FlagAnswered, FlagFlagged, FlagDeleted, FlagDraft} {
			if strings.EqualFold(f, sys) {
				f = sys
			}
		}
		if f == "" || strings.EqualFold(f, `\Recent`) || containsFold(out, f) {
			continue
		}
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// Watcher is told when a mailbox changes. C has a buffer of one and
// coalesces notifications: after a receive, take a new Snapshot.
type Watcher struct {
	C       <-chan struct{}
	c       chan struct{}
	user    string
	mailbox string // "" means any mailbox of the user
	s       *Store
}

// Watch returns a watcher for a user's mailbox ("" for all of them). Call
// Close when done.
func (s *Store) Watch(userName, name string) *Watcher {
	c := make(chan struct{}, 1)
	w := &Watcher{C: c, c: c, user: userName, mailbox: name, s: s}
	s.wmu.Lock()
	s.watchers[w] = struct{}{}
	s.wmu.Unlock()
	return w
}

// Close stops the watcher.
func (w *Watcher) Close() {
	w.s.wmu.Lock()
	delete(w.s.watchers, w)
	w.s.wmu.Unlock()
}

func (s *Store) notify(userName, name string) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for w := range s.watchers {
		if w.user != userName || (w.mailbox != "" && !(w.mailbox == name || isInbox(w.mailbox) && isInbox(name))) {
			continue
		}
		select {
		case w.c <- struct{}{}:
		default:
		}
	}
}

// Close releases the store (its open journal files). Everything is
// already durable.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.disk == nil {
		return nil
	}
	return s.disk.close()
}

func (s *Store) saveLocked(u *user) error {
	if s.disk == nil {
		return nil
	}
	if err := s.disk.saveUser(u, s.validity); err != nil {
		return fmt.Errorf("mailstore: save %s: %w", u.Name, err)
	}
	return nil
}

// writeMessageLocked gives m a file and writes m.raw to it (disk store);
// the bytes then live in the file only.
func (s *Store) writeMessageLocked(u *user, m *message) error {
	if s.disk == nil {
		return nil
	}
	u.NextFile++
	m.File = u.NextFile
	err := s.disk.writeMessage(u, m.File, bytes.NewReader(m.raw))
	m.raw = nil
	return err
}

// copyMessageLocked gives c, a copy of m, its own file (disk store),
// copied from m's file without holding the message in memory.
func (s *Store) copyMessageLocked(u *user, m, c *message) error {
	if s.disk == nil {
		return nil
	}
	u.NextFile++
	c.File = u.NextFile
	return s.disk.copyMessage(u, m.File, c.File)
}

func (s *Store) removeFilesLocked(u *user, ms []*message) {
	if s.disk == nil {
		return
	}
	for _, m := range ms {
		s.disk.removeMessage(u, m)
	}
}
