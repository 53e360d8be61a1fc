package pop3d

import (
	"testing"
	"time"

	"github.com/mailtap/mailtap/replay/server/internal/netsrv"
	"github.com/mailtap/mailtap/replay/server/internal/srvtest"
	"github.com/mailtap/mailtap/replay/server/mailstore"
)

// FuzzSession feeds arbitrary client bytes to a session over a pipe and
// requires that it ends without panicking.
func FuzzSession(f *testing.F) {
	f.Add([]byte("USER alice\r\nPASS secret\r\nSTAT\r\nLIST\r\nUIDL 1\r\nRETR 1\r\nTOP 1 0\r\nDELE 1\r\nRSET\r\nQUIT\r\n"))
	f.Add([]byte("AUTH PLAIN\r\nAGFsaWNlAHNlY3JldA==\r\nDELE 1\r\nQUIT\r\n"))
	f.Add([]byte("CAPA\r\nAUTH LOGIN YWxpY2U=\r\nc2VjcmV0\r\nLIST 99\r\nTOP 1 -1\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		st, _ := mailstore.New(mailstore.Options{Deterministic: true})
		st.AddUser("alice", "secret")
		st.Deliver("alice", []byte("Subject: x\r\n\r\n.a\r\nb"))
		s := New(&Options{Store: st, ReadTimeout: time.Second, Throttle: &netsrv.AuthThrottle{Delay: -1, PerIP: -1}})
		srvtest.Session(s.handle, in)
	})
}
