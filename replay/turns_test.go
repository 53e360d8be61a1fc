package replay

import (
	"reflect"
	"testing"
	"time"

	"github.com/mailtap/mailtap/decode"
)

const c2s, s2c = decode.ClientToServer, decode.ServerToClient

func TestSplitterTurns(t *testing.T) {
	var sp splitter
	for _, e := range []struct {
		dir decode.Direction
		p   string
	}{
		{s2c, "220 hi"}, {s2c, "\r\n"},
		{c2s, "EHLO a\r\n"},
		{s2c, "250 ok\r\n"},
		{c2s, "MAIL FROM:<a>\r\n"}, {c2s, "RCPT TO:<b>\r\n"}, // one run
		{s2c, "250 ok\r\n"}, {s2c, "250 ok\r\n"},
		{c2s, "QUIT\r\n"}, // unanswered
	} {
		sp.add(e.dir, []byte(e.p), time.Time{})
	}
	if string(sp.greeting) != "220 hi\r\n" {
		t.Errorf("greeting %q", sp.greeting)
	}
	want := []Turn{
		{Client: []byte("EHLO a\r\n"), Server: []byte("250 ok\r\n")},
		{Client: []byte("MAIL FROM:<a>\r\nRCPT TO:<b>\r\n"), Server: []byte("250 ok\r\n250 ok\r\n")},
		{Client: []byte("QUIT\r\n")},
	}
	if !reflect.DeepEqual(sp.turns, want) {
		t.Errorf("turns %q\nwant %q", sp.turns, want)
	}
}

func TestSplitterClientFirstAndBound(t *testing.T) {
	sp := splitter{maxClient: 10}
	sp.add(c2s, []byte("A1 NOOP\r\n"), time.Time{})
	sp.add(s2c, []byte("A1 OK\r\n"), time.Time{})
	if len(sp.greeting) != 0 || len(sp.turns) != 1 || string(sp.turns[0].Server) != "A1 OK\r\n" {
		t.Fatalf("%+v", sp)
	}
	sp.add(c2s, []byte("A2 NOOP\r\n"), time.Time{})
	if !sp.overClient || sp.turns != nil {
		t.Errorf("past the client bound: over=%v turns=%d", sp.overClient, len(sp.turns))
	}
	sp.add(s2c, []byte("A2 OK\r\n"), time.Time{})
	if sp.turns != nil || sp.ns != 14 || sp.nc != 18 {
		t.Errorf("kept bytes past the bound, or miscounted: %+v", sp)
	}
}

func TestFramers(t *testing.T) {
	count := func(p decode.Proto, client string, chunks ...string) int {
		f := newFramer(p)
		f.client([]byte(client))
		n := 0
		for _, c := range chunks {
			n = f.server([]byte(c))
		}
		return n
	}
	// SMTP: final lines only, split anywhere.
	if n := count(decode.ProtoSMTP, "", "250-a\r\n250-b\r", "\n250 c\r\n2", "50 ok\r\n354 go"); n != 2 {
		t.Errorf("smtp: %d, want 2", n)
	}
	// POP3: RETR's body ends at ".", a "+OK" inside it does not count;
	// LIST 1 is single-line, -ERR to RETR has no body.
	if n := count(decode.ProtoPOP3, "RETR 1\r\nLIST 1\r\nRETR 9\r\n",
		"+OK 10\r\n+OK inside\r\n.\r", "\n+OK 1 10\r\n-ERR no\r\n"); n != 3 {
		t.Errorf("pop3: %d, want 3", n)
	}
	if n := count(decode.ProtoPOP3, "RETR 1\r\n", "+OK 10\r\nbody\r\n"); n != 0 {
		t.Errorf("pop3 unfinished body: %d, want 0", n)
	}
	// IMAP: greeting, a tagged line inside a literal is skipped, "+" counts.
	if n := count(decode.ProtoIMAP, "", "* OK hi\r\n"); n != 1 {
		t.Errorf("imap greeting: %d", n)
	}
	if n := count(decode.ProtoIMAP, "a FETCH 1 BODY[]\r\n",
		"* 1 FETCH (BODY[] {9}\r\na OK x\r\n", ")\r\n* 2 EXISTS\r\na OK done\r\n+ go\r\n"); n != 2 {
		t.Errorf("imap: %d, want 2", n)
	}
}

// The mailbox events after the last answer of a turn: an IDLE's
// notifications count, untagged data before the tagged OK do not.
func TestTrailingEvents(t *testing.T) {
	for in, want := range map[string]int{
		"+ idling\r\n* 3 EXISTS\r\n* 1 RECENT\r\n* 4 EXISTS\r\n":  2,
		"* 3 EXISTS\r\n* 0 RECENT\r\na2 OK [READ-WRITE] done\r\n": 0,
		"* 1 FETCH (FLAGS ())\r\na3 OK done\r\n* 2 EXPUNGE\r\n":   1,
		"": 0,
		"+ idling\r\n* OK still here\r\n* 5 FETCH (FLAGS (\\Seen))\r\n":        1,
		"a1 OK done\r\n* 2 EXISTS\r\n+ idling\r\n* 3 EXISTS\r\n* 4 EXISTS\r\n": 2,
	} {
		if got, _ := trailingEvents([]byte(in)); got != want {
			t.Errorf("%q: %d, want %d", in, got, want)
		}
	}
}

func TestTrailingEventsExists(t *testing.T) {
	if n, e := trailingEvents([]byte("+ idling\r\n* 3 EXISTS\r\n* 1 RECENT\r\n* 4 EXISTS\r\n* 2 RECENT\r\n")); n != 2 || e != 4 {
		t.Errorf("%d events, last EXISTS %d", n, e)
	}
}
