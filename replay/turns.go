// Package replay replays the client side of captured SMTP, POP3 and IMAP
// sessions against a server (the built-in one in replay/server, or a real
// one) and compares the server's answers with the captured ones.
//
// A Recorder wraps the decoding pipeline: it keeps, per connection, the
// client byte stream split into turns (each maximal run of client bytes
// and the server bytes that followed) next to the decoded records. Seed
// derives the users, passwords and messages the built-in server needs.
// Replay drives one session and compares command by command: the verb and
// the status (SMTP reply code, POP3 +OK/-ERR, IMAP OK/NO/BAD) must match;
// differing reply text is counted, not failed.
package replay

import (
	"time"

	"github.com/mailtap/mailtap/decode"
)

// Turn is one run of client bytes and the server bytes that followed it
// before the client sent again.
type Turn struct {
	Client []byte
	Server []byte
	// At is when the turn's first client byte was captured.
	At time.Time
}

// splitter cuts the two directions of a connection into a greeting (server
// bytes before any client byte) and turns, bounded by max client and server
// bytes; past a bound it stops keeping bytes and sets over.
type splitter struct {
	greeting   []byte
	turns      []Turn
	maxClient  int64
	maxServer  int64
	nc, ns     int64
	overClient bool
	overServer bool
}

func (t *splitter) add(dir decode.Direction, p []byte, ts time.Time) {
	switch dir {
	case decode.ClientToServer:
		t.nc += int64(len(p))
		if t.overClient || t.overServer {
			return
		}
		if t.maxClient > 0 && t.nc > t.maxClient {
			t.overClient = true
			t.greeting, t.turns = nil, nil
			return
		}
		if len(t.turns) == 0 || len(t.turns[len(t.turns)-1].Server) > 0 {
			t.turns = append(t.turns, Turn{At: ts})
		}
		last := &t.turns[len(t.turns)-1]
		last.Client = append(last.Client, p...)
	case decode.ServerToClient:
		t.ns += int64(len(p))
		if t.overClient || t.overServer {
			return
		}
		if t.maxServer > 0 && t.ns > t.maxServer {
			t.overServer = true
			t.greeting, t.turns = nil, nil
			return
		}
		if len(t.turns) == 0 {
			t.greeting = append(t.greeting, p...)
			return
		}
		last := &t.turns[len(t.turns)-1]
		last.Server = append(last.Server, p...)
	}
}
