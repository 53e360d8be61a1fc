package mailstore

import (
	"slices"
	"testing"
	"time"
)

// SeedMailbox puts messages at their UIDs (gaps kept), sets UIDVALIDITY
// and UIDNEXT, creates a missing mailbox, and refuses UIDs out of order.
func TestSeedMailbox(t *testing.T) {
	st, err := New(Options{Deterministic: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddUser("bob", "pw"); err != nil {
		t.Fatal(err)
	}
	date := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	msgs := []SeedMessage{{UID: 3, Raw: []byte("Subject: a\r\n\r\nx\r\n"), Flags: []string{`\seen`}, Date: date}, {UID: 7, Raw: []byte("Subject: b\r\n\r\ny\r\n")}}
	if err := st.SeedMailbox("bob", "Archive/2024", "", 1795646918, 9, msgs); err != nil {
		t.Fatal(err)
	}
	snap, err := st.Snapshot("bob", "Archive/2024")
	if err != nil {
		t.Fatal(err)
	}
	if snap.UIDValidity != 1795646918 || snap.UIDNext != 9 || len(snap.Messages) != 2 || snap.Messages[0].UID != 3 || snap.Messages[1].UID != 7 ||
		snap.Messages[0].Flags[0] != FlagSeen || !snap.Messages[0].InternalDate.Equal(date) || snap.Messages[1].Size != 17 {
		t.Errorf("%+v", snap)
	}
	// UIDNEXT below the last UID is raised; a delivery gets it.
	if err := st.SeedMailbox("bob", Inbox, "", 0, 1, msgs); err != nil {
		t.Fatal(err)
	}
	if uid, err := st.Deliver("bob", []byte("Subject: c\r\n\r\nz\r\n")); err != nil || uid != 8 {
		t.Errorf("delivered at UID %d (%v), want 8", uid, err)
	}
	if err := st.SeedMailbox("bob", Inbox, "", 0, 0, []SeedMessage{{UID: 2}, {UID: 2}}); err == nil {
		t.Error("UIDs out of order accepted")
	}
	if err := st.SeedMailbox("nobody", Inbox, "", 0, 0, nil); err == nil {
		t.Error("unknown user accepted")
	}
}

// \Recent (RFC 3501 2.3.2): the seeded recent messages and every later
// arrival belong to the first session that claims them; peeking (EXAMINE,
// STATUS) leaves them.
func TestRecent(t *testing.T) {
	st, err := New(Options{Deterministic: true})
	if err != nil {
		t.Fatal(err)
	}
	st.AddUser("alice", "pw")
	msg := func(uid uint32, recent bool) SeedMessage {
		return SeedMessage{UID: uid, Raw: []byte("Subject: x\r\n\r\nx\r\n"), Recent: recent}
	}
	if err := st.SeedMailbox("alice", Inbox, "", 7, 9, []SeedMessage{msg(2, false), msg(5, true), msg(8, true)}); err != nil {
		t.Fatal(err)
	}
	check := func(what string, got []uint32, err error, want ...uint32) {
		t.Helper()
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: %v %v, want %v", what, got, err, want)
		}
	}
	got, err := st.PeekRecent("alice", Inbox)
	check("peek", got, err, 5, 8)
	got, err = st.ClaimRecent("alice", Inbox)
	check("claim", got, err, 5, 8)
	got, err = st.ClaimRecent("alice", Inbox)
	check("claim again", got, err)
	uid, err := st.Deliver("alice", []byte("Subject: new\r\n\r\nx\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	got, err = st.PeekRecent("alice", Inbox)
	check("peek after delivery", got, err, uid)
	got, err = st.ClaimRecent("alice", Inbox)
	check("claim after delivery", got, err, uid)
	if _, err := st.ClaimRecent("alice", "Nope"); err == nil {
		t.Error("no error for a missing mailbox")
	}
}

// A seeded POP3 UIDL is kept with the message: in snapshots, through the
// journal on a reopen, and through state.json after the journal is
// folded; messages seeded without one, or delivered, have none.
func TestSeedUIDLPersists(t *testing.T) {
	dir := t.TempDir()
	st, err := New(Options{Dir: dir, Deterministic: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddUser("bob", "pw"); err != nil {
		t.Fatal(err)
	}
	msgs := []SeedMessage{
		{UID: 1, Raw: []byte("Subject: a\r\n\r\nx\r\n"), UIDL: "00000001575f1e4b"},
		{UID: 2, Raw: []byte("Subject: b\r\n\r\ny\r\n")},
	}
	if err := st.SeedMailbox("bob", Inbox, "", 0, 0, msgs); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Deliver("bob", []byte("Subject: c\r\n\r\nz\r\n")); err != nil {
		t.Fatal(err)
	}
	want := []string{"00000001575f1e4b", "", ""}
	check := func(s *Store, when string) {
		t.Helper()
		snap, err := s.Snapshot("bob", Inbox)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range snap.Messages {
			got = append(got, m.UIDL)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: UIDLs %q, want %q", when, got, want)
		}
	}
	check(st, "seeded")
	st.Close()
	for _, when := range []string{"reopened (journal replayed)", "reopened again (state.json)"} {
		r, err := New(Options{Dir: dir, Deterministic: true})
		if err != nil {
			t.Fatal(err)
		}
		check(r, when)
		r.Close()
	}
}
