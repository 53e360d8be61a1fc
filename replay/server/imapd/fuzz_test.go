package imapd

import (
	"testing"
	"time"

	"github.com/mailtap/mailtap/replay/server/internal/netsrv"
	"github.com/mailtap/mailtap/replay/server/internal/srvtest"
	"github.com/mailtap/mailtap/replay/server/mailstore"
)

// FuzzParsePart checks that any stored message can be described and cut
// into sections without panicking.
func FuzzParsePart(f *testing.F) {
	f.Add([]byte(multipartMsg))
	f.Add([]byte("Subject: x\n\nbody"))
	f.Add([]byte("Content-Type: message/rfc822\r\n\r\nContent-Type: multipart/alternative; boundary=\"z\"\r\n\r\n--z\r\n\r\na\r\n--z--"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		p := parsePart(raw, 0, "text/plain")
		p.bodyStructure(true)
		envelope(p.hdr)
		for _, sec := range []section{{}, {path: []int{1}}, {path: []int{1, 2}, spec: "MIME"}, {spec: "TEXT"},
			{path: []int{2}, spec: "HEADER"}, {spec: "HEADER.FIELDS.NOT", fields: []string{"SUBJECT"}}} {
			sec.extract(p)
		}
	})
}

// FuzzSession feeds arbitrary client bytes to a logged-in-able session over
// a pipe and requires that it ends without panicking.
func FuzzSession(f *testing.F) {
	f.Add([]byte("a LOGIN alice secret\r\nb SELECT INBOX\r\nc FETCH 1:* (BODY[] BODYSTRUCTURE ENVELOPE)\r\nd LOGOUT\r\n"))
	f.Add([]byte("a LOGIN alice secret\r\nb SELECT INBOX\r\nc SEARCH OR (FROM a) NOT UID 1:* LARGER 3\r\nd UID MOVE 1 Trash\r\n"))
	f.Add([]byte("a LOGIN {5+}\r\nalice {6}\r\nsecret\r\nb APPEND INBOX (\\Seen) {3+}\r\nabc\r\nc IDLE\r\nDONE\r\n"))
	f.Add([]byte("a AUTHENTICATE PLAIN\r\nAGFsaWNlAHNlY3JldA==\r\nb LIST (SUBSCRIBED) \"\" (\"*\" \"%\") RETURN (STATUS (MESSAGES))\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		st, _ := mailstore.New(mailstore.Options{Deterministic: true})
		st.AddUser("alice", "secret")
		st.Deliver("alice", []byte(multipartMsg))
		s := New(&Options{Store: st, MaxLiteralBytes: 1 << 16, ReadTimeout: time.Second, IdleTimeout: time.Second, Throttle: &netsrv.AuthThrottle{Delay: -1, PerIP: -1}})
		srvtest.Session(s.handle, in)
	})
}
