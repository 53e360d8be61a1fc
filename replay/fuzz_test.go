package replay

import (
	"testing"
	"time"

	"github.com/mailtap/mailtap/decode"
)

// FuzzFramers feeds arbitrary server bytes (after arbitrary client bytes)
// to every framer, whole and split at an arbitrary point: no panic, and
// the count of responses must not depend on how the bytes were cut.
func FuzzFramers(f *testing.F) {
	f.Add([]byte("RETR 1\r\nLIST\r\n"), []byte("+OK\r\nx\r\n.\r\n+OK\r\n1 2\r\n.\r\n"), uint16(7))
	f.Add([]byte("a FETCH 1 BODY[]\r\n"), []byte("* OK hi\r\n* 1 FETCH (BODY[] {5}\r\na OK\r\n)\r\na OK\r\n"), uint16(30))
	f.Add([]byte("EHLO x\r\n"), []byte("220 hi\r\n250-a\r\n250 b\r\n"), uint16(3))
	f.Add([]byte(""), []byte("* x {99999999999999999999}\r\n+ go\r\n"), uint16(1))
	f.Fuzz(func(t *testing.T, client, server []byte, cut uint16) {
		k := int(cut) % (len(server) + 1)
		for _, p := range []decode.Proto{decode.ProtoSMTP, decode.ProtoPOP3, decode.ProtoIMAP} {
			whole, split := newFramer(p), newFramer(p)
			whole.client(client)
			split.client(client[:len(client)/2])
			split.client(client[len(client)/2:])
			a := whole.server(server)
			n1 := split.server(server[:k])
			b := split.server(server[k:])
			if a != b || n1 > b {
				t.Fatalf("%s: %d whole, %d then %d split at %d", p, a, n1, b, k)
			}
		}
		var sp splitter
		sp.maxClient, sp.maxServer = 64, 64
		sp.add(decode.ServerToClient, server[:k], time.Time{})
		sp.add(decode.ClientToServer, client, time.Time{})
		sp.add(decode.ServerToClient, server[k:], time.Time{})
		if !sp.overClient && !sp.overServer {
			n := len(sp.greeting)
			for _, tr := range sp.turns {
				n += len(tr.Client) + len(tr.Server)
			}
			if n != len(client)+len(server) {
				t.Fatalf("kept %d bytes of %d", n, len(client)+len(server))
			}
		}
	})
}
