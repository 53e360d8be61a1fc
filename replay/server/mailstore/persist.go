package mailstore

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// On-disk layout (one directory per user, named by the hex of the user name
// so that any name is a safe file name):
//
//	DIR/<hex user>/state.json       users, mailboxes, UIDs, flags, dates
//	DIR/<hex user>/msg/<n>.eml      one file per message, the raw bytes
//
// A message file is written and synced before the state that refers to it;
// state.json is replaced atomically (write a temporary file, sync, rename,
// sync the directory). A crash can therefore leave at most an unreferenced
// message file, which load removes, and never a state that refers to a
// missing file.

const stateVersion = 1

type disk struct{ dir string }

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
}

func openDisk(dir string) (*disk, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mailstore: %w", err)
	}
	return &disk{dir: dir}, nil
}

func (d *disk) userDir(name string) string {
	return filepath.Join(d.dir, hex.EncodeToString([]byte(name)))
}

func (d *disk) msgPath(u *user, file uint64) string {
	return filepath.Join(d.userDir(u.Name), "msg", strconv.FormatUint(file, 10)+".eml")
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
		b, err := os.ReadFile(filepath.Join(d.dir, e.Name(), "state.json"))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, 0, fmt.Errorf("mailstore: %w", err)
		}
		var st stateFile
		if err := json.Unmarshal(b, &st); err != nil {
			return nil, 0, fmt.Errorf("mailstore: %s: %w", e.Name(), err)
		}
		if st.V != stateVersion {
			return nil, 0, fmt.Errorf("mailstore: %s: unknown state version %d", e.Name(), st.V)
		}
		u := &user{Name: st.Name, Password: st.Password, NextFile: st.NextFile}
		validity = max(validity, st.Validity)
		refs := make(map[string]bool)
		for _, sm := range st.Mailboxes {
			mb := &mailbox{ID: sm.ID, Name: sm.Name, SpecialUse: sm.SpecialUse, Subscribed: sm.Subscribed,
				UIDValidity: sm.UIDValidity, UIDNext: sm.UIDNext}
			validity = max(validity, sm.UIDValidity)
			for _, m := range sm.Messages {
				p := d.msgPath(u, m.File)
				raw, err := os.ReadFile(p)
				if err != nil {
					return nil, 0, fmt.Errorf("mailstore: %s %s uid %d: %w", st.Name, sm.Name, m.UID, err)
				}
				refs[filepath.Base(p)] = true
				mb.Messages = append(mb.Messages, &message{UID: m.UID, Flags: m.Flags, Date: m.Date, File: m.File, Size: int64(len(raw)), raw: raw})
			}
			u.Mailboxes = append(u.Mailboxes, mb)
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

func (d *disk) saveUser(u *user, validity uint32) error {
	st := stateFile{V: stateVersion, Name: u.Name, Password: u.Password, NextFile: u.NextFile, Validity: validity}
	for _, mb := range u.Mailboxes {
		sm := stateMailbox{ID: mb.ID, Name: mb.Name, SpecialUse: mb.SpecialUse, Subscribed: mb.Subscribed,
			UIDValidity: mb.UIDValidity, UIDNext: mb.UIDNext, Messages: make([]stateMessage, 0, len(mb.Messages))}
		for _, m := range mb.Messages {
			sm.Messages = append(sm.Messages, stateMessage{UID: m.UID, Flags: m.Flags, Date: m.Date, File: m.File, Size: m.Size})
		}
		st.Mailboxes = append(st.Mailboxes, sm)
	}
	b, err := json.Marshal(&st)
	if err != nil {
		return err
	}
	dir := d.userDir(u.Name)
	if err := os.MkdirAll(filepath.Join(dir, "msg"), 0o700); err != nil {
		return err
	}
	return writeAtomic(dir, "state.json", b)
}

func (d *disk) writeMessage(u *user, m *message) error {
	dir := filepath.Join(d.userDir(u.Name), "msg")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return writeAtomic(dir, strconv.FormatUint(m.File, 10)+".eml", m.raw)
}

func (d *disk) removeMessage(u *user, m *message) {
	os.Remove(d.msgPath(u, m.File))
}

// writeAtomic replaces dir/name with b: temporary file, fsync, rename, and
// fsync of the directory so the rename itself is durable.
func writeAtomic(dir, name string, b []byte) error {
	f, err := os.CreateTemp(dir, "."+name+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
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
