package replay

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/replay/server"
	"github.com/mailtap/mailtap/replay/server/mailstore"
)

// Seed is what the built-in server needs to answer a capture's sessions
// as the captured server did: users with passwords and INBOX contents.
type Seed struct {
	Users map[string]string
	// Inbox lists each user's INBOX in order: position i is message number
	// i+1 (POP3) and UID i+1 (IMAP, on a fresh store). Nil entries are
	// placeholders for messages the capture counted but never showed.
	Inbox map[string][][]byte
}

// maxSeedMessages bounds one user's seeded INBOX.
const maxSeedMessages = 10000

// rcptPassword is the password of users made from SMTP recipients only.
const rcptPassword = "replay"

// Seed derives the built-in server's users and mail from the replayable
// sessions: users and passwords from successful USER/PASS, LOGIN and PLAIN
// authentications, accepted SMTP recipients (local part) as users, and for
// POP3 and IMAP the messages retrieved (RETR, TOP, FETCH of INBOX) at their
// message numbers or UIDs. The first session to show a position wins.
func (r *Recorder) Seed(sessions []*Session) *Seed {
	sd := &Seed{Users: map[string]string{}, Inbox: map[string][][]byte{}}
	for _, s := range sessions {
		if s.Skip != "" {
			continue
		}
		for _, a := range s.Record.Auths {
			if a.Success != nil && *a.Success && a.User != "" {
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
		box := sd.Inbox[user]
		put := func(pos int, raw []byte) {
			if pos < 1 || pos > maxSeedMessages {
				return
			}
			for len(box) < pos {
				box = append(box, nil)
			}
			if box[pos-1] == nil {
				box[pos-1] = raw
			}
		}
		switch s.Proto {
		case decode.ProtoPOP3:
			if st := s.Record.Mailbox; st != nil && st.Messages > 0 {
				put(st.Messages, nil)
			}
			for _, m := range s.pop3Msgs {
				if m.Message != nil {
					put(m.Msgno, r.message(m.Message.SHA256))
				}
			}
		case decode.ProtoIMAP:
			// The INBOX size from SELECT/EXAMINE INBOX's EXISTS.
			for _, c := range s.Commands {
				if (c.Verb == "SELECT" || c.Verb == "EXAMINE") && strings.EqualFold(strings.Trim(c.Args, `"`), "INBOX") {
					for _, u := range c.Untagged {
						if n, ok := strings.CutSuffix(u, " EXISTS"); ok {
							if k, err := strconv.Atoi(n); err == nil && k > 0 {
								put(k, nil)
							}
						}
					}
				}
			}
			for _, m := range s.imapMsgs {
				if m.Direction != "fetch" || !strings.EqualFold(m.Mailbox, "INBOX") || m.UID == 0 {
					continue
				}
				var raw []byte
				if m.Message != nil && (m.Section == "BODY[]" || m.Section == "RFC822") {
					raw = r.message(m.Message.SHA256)
				}
				put(int(m.UID), raw)
			}
		}
		if len(box) > 0 {
			sd.Inbox[user] = box
		}
	}
	return sd
}

// placeholder is the message seeded where the capture showed none.
func placeholder(user string, n int) []byte {
	return fmt.Appendf(nil, "From: replay@mailtap.test\r\nTo: %s\r\nSubject: placeholder %d\r\nMessage-ID: <placeholder-%d@mailtap.test>\r\n\r\nThis message stands for one the capture did not show.\r\n", user, n, n)
}

// StartServer starts the built-in server for the given protocols on
// 127.0.0.1 (ports picked by the system), deterministic, with the seed's
// users and INBOX contents. It returns the server and its address per
// protocol. Start it only for protocols that will be replayed: closing an
// SMTP listener that never accepted can race with its start in the
// server's SMTP library and hang Close.
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
	users := make([]string, 0, len(sd.Inbox))
	for u := range sd.Inbox {
		users = append(users, u)
	}
	sort.Strings(users)
	st := srv.Store()
	for _, u := range users {
		if _, ok := sd.Users[u]; !ok {
			continue
		}
		for i, raw := range sd.Inbox[u] {
			if raw == nil {
				raw = placeholder(u, i+1)
			}
			if _, _, err := st.Append(u, mailstore.Inbox, raw, nil, server.DeterministicTime); err != nil {
				srv.Close()
				return nil, nil, fmt.Errorf("seeding %s's INBOX: %w", u, err)
			}
		}
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
