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

// FuzzObserve feeds an arbitrary exchange (client and server bytes) to
// the observers of every protocol: no panic, the same observations twice
// (the comparison of an exchange with itself finds nothing), and the
// client rewriter keeps its bounds.
func FuzzObserve(f *testing.F) {
	f.Add([]byte("a1 FETCH 1:2 (BODY[] FLAGS)\r\na2 LIST \"\" *\r\n"), []byte("* OK hi\r\n* 1 FETCH (FLAGS (\\Seen) BODY[] {5}\r\nhello)\r\n* 2 FETCH (BODY[HEADER.FIELDS (SUBJECT)] NIL ENVELOPE (\"d\" \"s\" ((\"n\" NIL \"m\" \"h\")) NIL NIL NIL NIL NIL NIL \"<i>\"))\r\na1 OK done\r\n* LIST (\\Noselect) \"/\" \"a b\"\r\na2 OK [CAPABILITY IMAP4rev1 ID] x\r\n"))
	f.Add([]byte("CAPA\r\nSTAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nDELE 1\r\nQUIT\r\n"), []byte("+OK <1.2@h>\r\n+OK\r\nTOP\r\nUIDL\r\n.\r\n+OK 1 5\r\n+OK\r\n1 5\r\n.\r\n+OK\r\n1 abc\r\n.\r\n+OK\r\n..x\r\n.\r\n+OK\r\n+OK bye\r\n"))
	f.Add([]byte("EHLO x\r\nMAIL FROM:<a>\r\nRCPT TO:<b>\r\nDATA\r\nx\r\n.\r\n"), []byte("220 hi\r\n250-h\r\n250 SIZE 10\r\n250 2.1.0 ok\r\n550 5.1.1 no\r\n554 5.5.1 no rcpt\r\n"))
	f.Add([]byte("a STATUS x (MESSAGES)\r\n"), []byte("* STATUS \"x\" (MESSAGES 2 UIDVALIDITY 9\r\n* 1 FETCH ((((((\r\n* 2 FETCH (BODY[ {3}\r\n"))
	f.Fuzz(func(t *testing.T, client, server []byte) {
		if len(client)+len(server) > 1<<16 {
			return
		}
		for _, p := range []decode.Proto{decode.ProtoSMTP, decode.ProtoPOP3, decode.ProtoIMAP} {
			s := &Session{ID: 1, Proto: p}
			ev := []event{{decode.ServerToClient, server, time.Unix(1, 0)}, {decode.ClientToServer, client, time.Unix(2, 0)}, {decode.ServerToClient, server, time.Unix(3, 0)}}
			a, b := observe(s, ev, true, nil), observe(s, ev, true, map[string]bool{"DELE": true})
			cc, _ := NewCompareConfig(CompareFull, nil, false)
			if c := cc.compareObs(1, string(p), a, observe(s, ev, true, nil), nil, 1<<30, newRunState()); len(c.divs) != 0 {
				t.Fatalf("%s: an exchange differs from itself: %+v", p, c.divs)
			}
			_ = b
			w := newRewriter(p, map[string]string{"u": "p"}, map[string]bool{"NOOP": true}, nil)
			w.server(server)
			out, _ := w.client(client)
			if len(out) > 2*len(client)+4096 {
				t.Fatalf("%s: rewritten client bytes grew from %d to %d", p, len(client), len(out))
			}
		}
	})
}
