package mailstore

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// SeedMessage is one message SeedMailbox puts at a given UID.
type SeedMessage struct {
	UID   uint32
	Raw   []byte
	Flags []string
	// Date is the internal date; zero means the store's clock.
	Date time.Time
	// Recent: the message is \Recent, to be claimed by the first IMAP
	// session that selects the mailbox. Recent messages come last.
	Recent bool
	// UIDL is the POP3 unique id (UIDL answer) the message keeps; empty
	// lets the POP3 server make one. The POP3 server ignores a value
	// RFC 1939 does not allow (1-70 characters 0x21-0x7E).
	UIDL string
}

// SeedMailbox makes a user's mailbox hold exactly msgs, at their UIDs
// (which must increase), with the given UIDVALIDITY (0 keeps the
// mailbox's) and UIDNEXT (raised above the last UID when lower). The
// mailbox is created, with use as its special use, when missing. It is
// meant for setting a store up as a capture showed it (mailtap replay),
// before the server starts.
func (s *Store) SeedMailbox(userName, name, use string, validity, uidNext uint32, msgs []SeedMessage) error {
	if err := s.CreateMailbox(userName, name, use); err != nil && !errors.Is(err, ErrMailboxExists) {
		return err
	}
	for i := 1; i < len(msgs); i++ {
		if msgs[i].UID <= msgs[i-1].UID {
			return fmt.Errorf("mailstore: seeding %s: UID %d after %d", name, msgs[i].UID, msgs[i-1].UID)
		}
	}
	if len(msgs) > 0 && msgs[0].UID == 0 {
		return fmt.Errorf("mailstore: seeding %s: UID 0", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, mb, err := s.mailboxLocked(userName, name)
	if err != nil {
		return err
	}
	s.removeFilesLocked(u, mb.Messages)
	mb.Messages = nil
	for _, sm := range msgs {
		date := sm.Date
		if date.IsZero() {
			date = s.clock()
		}
		raw := slices.Clone(sm.Raw)
		m := &message{UID: sm.UID, Flags: normFlags(sm.Flags), Date: date, Size: int64(len(raw)), UIDL: sm.UIDL, raw: raw}
		if err := s.writeMessageLocked(u, m); err != nil {
			return err
		}
		mb.Messages = append(mb.Messages, m)
	}
	if validity != 0 {
		mb.UIDValidity = validity
	}
	next := max(uidNext, 1)
	if n := len(mb.Messages); n > 0 {
		next = max(next, mb.Messages[n-1].UID+1)
	}
	mb.UIDNext = next
	mb.recentFrom = next
	for _, sm := range msgs {
		if sm.Recent {
			mb.recentFrom = sm.UID
			break
		}
	}
	mb.version++
	if err := s.saveLocked(u); err != nil {
		return err
	}
	s.notify(userName, mb.Name)
	return nil
}
