package mailstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var fixed = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func newStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := New(Options{Dir: dir, Deterministic: true, Clock: func() time.Time { return fixed }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddUser("alice", "secret"); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestUsersAndMailboxes(t *testing.T) {
	s := newStore(t, "")
	boxes, _ := s.Mailboxes("alice")
	var got []string
	for _, b := range boxes {
		got = append(got, b.Name+b.SpecialUse)
	}
	if strings.Join(got, ",") != `INBOX,Drafts\Drafts,Junk\Junk,Sent\Sent,Trash\Trash` {
		t.Fatalf("mailboxes: %v", got)
	}
	if !s.Authenticate("alice", "secret") || s.Authenticate("alice", "x") || s.Authenticate("bob", "") {
		t.Fatal("Authenticate")
	}
	if err := s.CreateMailbox("alice", "a/b", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Mailbox("alice", "a"); err != nil {
		t.Fatal("parent not created")
	}
	for _, bad := range []string{"", "x*", "/x", "x/", "a//b"} {
		if err := s.CreateMailbox("alice", bad, ""); err != ErrBadMailboxName {
			t.Errorf("CreateMailbox(%q) = %v", bad, err)
		}
	}
	if err := s.CreateMailbox("alice", "a", ""); err != ErrMailboxExists {
		t.Fatal(err)
	}
	if err := s.RenameMailbox("alice", "a", "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Mailbox("alice", "c/b"); err != nil {
		t.Fatal("child not renamed")
	}
	if err := s.DeleteMailbox("alice", "inbox"); err != ErrInboxOp {
		t.Fatal(err)
	}
	if _, err := s.Deliver("nobody", []byte("x")); err != ErrNoUser {
		t.Fatal(err)
	}
}

func TestMessagesFlagsCopyMove(t *testing.T) {
	s := newStore(t, "")
	w := s.Watch("alice", "INBOX")
	defer w.Close()
	for i := range 3 {
		if uid, err := s.Deliver("alice", []byte("m")); err != nil || uid != uint32(i+1) {
			t.Fatalf("Deliver: %d %v", uid, err)
		}
	}
	select {
	case <-w.C:
	default:
		t.Fatal("watcher not told")
	}
	res, _ := s.StoreFlags("alice", "INBOX", []uint32{1, 2}, FlagsAdd, []string{`\seen`, "$x", `\Recent`})
	if strings.Join(res[1], " ") != `$x \Seen` {
		t.Fatalf("flags: %v", res[1])
	}
	s.StoreFlags("alice", "INBOX", []uint32{2}, FlagsRemove, []string{"$X"})
	s.StoreFlags("alice", "INBOX", []uint32{3}, FlagsSet, []string{FlagDeleted})
	cr, err := s.Copy("alice", "INBOX", "Trash", []uint32{1, 3})
	if err != nil || cr.UIDValidity != 5 || len(cr.Dest) != 2 || cr.Dest[1] != 2 {
		t.Fatalf("Copy: %+v %v", cr, err)
	}
	gone, _ := s.Expunge("alice", "INBOX", nil)
	if len(gone) != 1 || gone[0] != 3 {
		t.Fatalf("Expunge: %v", gone)
	}
	mv, err := s.Move("alice", "INBOX", "Junk", []uint32{2})
	if err != nil || len(mv.Source) != 1 {
		t.Fatal(err)
	}
	in, _ := s.Snapshot("alice", "INBOX")
	junk, _ := s.Snapshot("alice", "Junk")
	if len(in.Messages) != 1 || len(junk.Messages) != 1 || strings.Join(junk.Messages[0].Flags, " ") != `\Seen` {
		t.Fatalf("after move: %+v %+v", in, junk)
	}
	if _, err := s.Copy("alice", "INBOX", "Nope", []uint32{1}); err != ErrNoMailbox {
		t.Fatal(err)
	}
	// Renaming INBOX moves its messages and leaves it empty.
	if err := s.RenameMailbox("alice", "INBOX", "Old"); err != nil {
		t.Fatal(err)
	}
	old, _ := s.Snapshot("alice", "Old")
	in, _ = s.Snapshot("alice", "INBOX")
	if len(old.Messages) != 1 || len(in.Messages) != 0 || in.UIDNext != 4 {
		t.Fatalf("rename INBOX: %+v %+v", old, in)
	}
}

func TestPersistence(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	s.Deliver("alice", []byte("Subject: a\r\n\r\n1\r\n"))
	s.Deliver("alice", []byte("Subject: b\r\n\r\n2\r\n"))
	s.StoreFlags("alice", "INBOX", []uint32{2}, FlagsAdd, []string{FlagFlagged})
	s.CreateMailbox("alice", "Keep", `\Archive`)
	s.Copy("alice", "INBOX", "Keep", []uint32{1})
	s.Remove("alice", "INBOX", []uint32{1})
	s.SetSubscribed("alice", "Keep", true)
	// A crash between a message file and the state leaves an orphan.
	udir := filepath.Join(dir, "616c696365", "msg")
	os.WriteFile(filepath.Join(udir, "999.eml"), []byte("orphan"), 0o600)
	// A crash inside writeAtomic leaves its temporary files.
	tmpState := filepath.Join(dir, "616c696365", ".state.json.tmp123456")
	tmpMsg := filepath.Join(udir, ".7.eml.tmp654321")
	os.WriteFile(tmpState, []byte(`{"v":1,"half`), 0o600)
	os.WriteFile(tmpMsg, []byte("half a message"), 0o600)

	r, err := New(Options{Dir: dir, Deterministic: true})
	if err != nil {
		t.Fatal(err)
	}
	in, _ := r.Snapshot("alice", "INBOX")
	if len(in.Messages) != 1 || in.Messages[0].UID != 2 || in.UIDNext != 3 || body(in.Messages[0]) != "Subject: b\r\n\r\n2\r\n" ||
		!in.Messages[0].InternalDate.Equal(fixed) || strings.Join(in.Messages[0].Flags, "") != FlagFlagged {
		t.Fatalf("INBOX after reload: %+v", in)
	}
	keep, _ := r.Mailbox("alice", "Keep")
	if keep.Messages != 1 || keep.SpecialUse != `\Archive` || !keep.Subscribed {
		t.Fatalf("Keep after reload: %+v", keep)
	}
	if !r.Authenticate("alice", "secret") {
		t.Fatal("password lost")
	}
	if _, err := os.Stat(filepath.Join(udir, "999.eml")); !os.IsNotExist(err) {
		t.Fatal("orphan message file kept")
	}
	for _, p := range []string{tmpState, tmpMsg} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("crash leftover %s kept", filepath.Base(p))
		}
	}
	if files, _ := os.ReadDir(udir); len(files) != 2 {
		t.Fatalf("message files: %d, want 2 (INBOX uid 2 and Keep uid 1)", len(files))
	}
	// New mailboxes after a restart get a fresh UIDVALIDITY.
	r.CreateMailbox("alice", "New", "")
	nb, _ := r.Mailbox("alice", "New")
	if nb.UIDValidity <= keep.UIDValidity {
		t.Fatalf("UIDVALIDITY reused: %d <= %d", nb.UIDValidity, keep.UIDValidity)
	}
}

// TestJournal: a change appends only what changed, whatever the size of
// the state; a reopened store replays the journal (and folds it into
// state.json); a last line cut short by a crash is dropped, a damaged line
// before it is an error.
func TestJournal(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	for i := range 1000 {
		if err := s.CreateMailbox("alice", fmt.Sprintf("box%04d", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	udir := filepath.Join(dir, "616c696365")
	size := func(name string) int64 {
		fi, err := os.Stat(filepath.Join(udir, name))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	state, j0 := size("state.json"), size("journal.jsonl")
	s.CreateMailbox("alice", "one-more", "")
	uid, _ := s.Deliver("alice", []byte("Subject: j\r\n\r\nbody\r\n"))
	s.StoreFlags("alice", "INBOX", []uint32{uid}, FlagsAdd, []string{FlagSeen})
	s.Move("alice", "INBOX", "box0007", []uint32{uid})
	if grew := size("journal.jsonl") - j0; grew > 2000 || size("state.json") != state {
		t.Fatalf("four changes with 1,000 mailboxes appended %d bytes and changed state.json from %d to %d bytes",
			grew, state, size("state.json"))
	}
	s.Close()

	// A crash in the middle of an append leaves half a line.
	f, _ := os.OpenFile(filepath.Join(udir, "journal.jsonl"), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"rm_boxes":[1,2,3`)
	f.Close()
	r, err := New(Options{Dir: dir, Deterministic: true})
	if err != nil {
		t.Fatal(err)
	}
	boxes, _ := r.Mailboxes("alice")
	b7, _ := r.Snapshot("alice", "box0007")
	in, _ := r.Snapshot("alice", "INBOX")
	if len(boxes) != 1000+6 || len(in.Messages) != 0 || len(b7.Messages) != 1 ||
		strings.Join(b7.Messages[0].Flags, " ") != FlagSeen || body(b7.Messages[0]) != "Subject: j\r\n\r\nbody\r\n" {
		t.Fatalf("after replay: %d mailboxes, INBOX %+v, box0007 %+v", len(boxes), in, b7)
	}
	if size("journal.jsonl") != 0 {
		t.Fatal("the journal was not folded into state.json at load")
	}
	r.Close()

	os.WriteFile(filepath.Join(udir, "journal.jsonl"), []byte("{bad\n{}\n"), 0o600)
	if _, err := New(Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("a damaged journal line loaded: %v", err)
	}
}

// TestQuota: Append, Deliver and Copy that would pass QuotaBytes fail with
// ErrOverQuota; a Move within the user does not; removing frees space.
func TestQuota(t *testing.T) {
	s, _ := New(Options{QuotaBytes: 100})
	s.AddUser("alice", "x")
	msg := []byte(strings.Repeat("x", 40))
	u1, err := s.Deliver("alice", msg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Deliver("alice", msg); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Deliver("alice", msg); !errors.Is(err, ErrOverQuota) {
		t.Fatalf("third 40-byte message under a 100-byte quota: %v", err)
	}
	if s.Fits("alice", 21) || !s.Fits("alice", 20) {
		t.Fatal("Fits")
	}
	if _, err := s.Copy("alice", "INBOX", "Trash", []uint32{u1}); !errors.Is(err, ErrOverQuota) {
		t.Fatalf("copy over quota: %v", err)
	}
	if _, err := s.Move("alice", "INBOX", "Trash", []uint32{u1}); err != nil {
		t.Fatalf("move within the user: %v", err)
	}
	trash, _ := s.Snapshot("alice", "Trash")
	s.Remove("alice", "Trash", []uint32{trash.Messages[0].UID})
	if _, _, err := s.Append("alice", "Drafts", msg, nil, time.Time{}); err != nil {
		t.Fatalf("after removing a message: %v", err)
	}
}

// body reads a snapshot message's bytes ("" when it cannot).
func body(m Message) string {
	b, err := m.Body()
	if err != nil {
		return ""
	}
	return string(b)
}
