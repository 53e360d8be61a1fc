package mailstore

import (
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
