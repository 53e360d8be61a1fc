package imap

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mailtap/mailtap/decode"
)

// step is one Data call of a transcript.
type step struct {
	dir  decode.Direction
	data string
}

func C(s string) step { return step{decode.ClientToServer, s} }
func S(s string) step { return step{decode.ServerToClient, s} }

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func testConn() decode.ConnInfo {
	return decode.ConnInfo{
		ID:     7,
		Client: netip.MustParseAddrPort("192.0.2.1:50000"),
		Server: netip.MustParseAddrPort("192.0.2.2:143"),
		Start:  t0,
	}
}

// run feeds a transcript, each step at a new millisecond, split into
// pieces by split (nil: whole steps), and returns the records.
func runWith(steps []step, o decode.Options, conn decode.ConnInfo, split func(string) []string) []decode.Record {
	var recs []decode.Record
	x := New(conn, o, decode.SinkFunc(func(r decode.Record) { recs = append(recs, r) }))
	ts := t0
	for _, st := range steps {
		ts = ts.Add(time.Millisecond)
		parts := []string{st.data}
		if split != nil {
			parts = split(st.data)
		}
		for _, p := range parts {
			x.Data(st.dir, []byte(p), ts)
		}
	}
	x.Close(decode.CloseFIN, ts.Add(time.Millisecond))
	return recs
}

func run(steps []step) []decode.Record {
	return runWith(steps, decode.Options{Level: decode.LevelCommands}, testConn(), nil)
}

func byType[T decode.Record](recs []decode.Record) []T {
	var out []T
	for _, r := range recs {
		if v, ok := r.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func commands(recs []decode.Record) []*decode.CommandRecord {
	return byType[*decode.CommandRecord](recs)
}

func messages(recs []decode.Record) []*decode.IMAPMessage {
	return byType[*decode.IMAPMessage](recs)
}

func mailboxes(recs []decode.Record) []*decode.IMAPMailbox {
	return byType[*decode.IMAPMailbox](recs)
}

func session(t *testing.T, recs []decode.Record) *decode.SessionRecord {
	t.Helper()
	s := byType[*decode.SessionRecord](recs)
	if len(s) != 1 {
		t.Fatalf("want 1 session record, got %d", len(s))
	}
	return s[0]
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// dump renders records as JSON lines (for comparisons and failure output).
func dump(recs []decode.Record) string {
	var sb strings.Builder
	for _, r := range recs {
		b, _ := json.Marshal(r)
		sb.Write(b)
		sb.WriteByte('\n')
	}
	return sb.String()
}

// pairs renders command records as "tag verb status" lines.
func pairs(recs []decode.Record) string {
	var sb strings.Builder
	for _, c := range commands(recs) {
		st := "-"
		if c.Status != nil {
			st = c.Status.(string)
		}
		sb.WriteString(c.Tag + " " + c.Verb + " " + st + "\n")
	}
	return sb.String()
}

func wantPairs(t *testing.T, recs []decode.Record, want string) {
	t.Helper()
	if got := pairs(recs); got != want {
		t.Errorf("command pairs:\n got:\n%s want:\n%s\nrecords:\n%s", got, want, dump(recs))
	}
}

var b64std = base64.StdEncoding

// clientHelloBytes builds a minimal TLS 1.2 ClientHello record with SNI.
func clientHelloBytes(sni string) []byte {
	ext := []byte{0, 0}
	name := []byte(sni)
	list := append([]byte{0, byte(len(name) >> 8), byte(len(name))}, name...)
	data := append([]byte{byte(len(list) >> 8), byte(len(list))}, list...)
	ext = append(ext, byte(len(data)>>8), byte(len(data)))
	ext = append(ext, data...)
	body := []byte{3, 3}
	body = append(body, make([]byte, 32)...)
	body = append(body, 0)                // session id
	body = append(body, 0, 2, 0x13, 0x01) // cipher suites
	body = append(body, 1, 0)             // compression
	body = append(body, byte(len(ext)>>8), byte(len(ext)))
	body = append(body, ext...)
	hs := append([]byte{1, 0, byte(len(body) >> 8), byte(len(body))}, body...)
	return append([]byte{0x16, 3, 1, byte(len(hs) >> 8), byte(len(hs))}, hs...)
}
