package pop3

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mailtap/mailtap/decode"
)

// step is one delivery to the decoder: bytes in one direction, or a gap.
type step struct {
	dir  decode.Direction
	data string
	gap  bool
}

func c2s(lines ...string) step                   { return step{dir: decode.ClientToServer, data: crlf(lines)} }
func s2c(lines ...string) step                   { return step{dir: decode.ServerToClient, data: crlf(lines)} }
func raw(dir decode.Direction, data string) step { return step{dir: dir, data: data} }
func gap(dir decode.Direction) step              { return step{dir: dir, gap: true} }

func crlf(lines []string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	return b.String()
}

// transcript is a named exchange with how to run it.
type transcript struct {
	steps     []step
	midstream bool
	implicit  bool
	reason    decode.CloseReason
}

var t0 = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

func conn(tr transcript) decode.ConnInfo {
	return decode.ConnInfo{
		ID:          7,
		Client:      netip.MustParseAddrPort("192.0.2.10:49860"),
		Server:      netip.MustParseAddrPort("198.51.100.5:110"),
		Start:       t0,
		Midstream:   tr.midstream,
		ImplicitTLS: tr.implicit,
	}
}

// feed runs a transcript; split(i, data) returns the pieces step i is
// delivered in (nil: whole). Step i happens at t0 + (i+1)*10ms.
func feed(tr transcript, o decode.Options, split func(i int, data string) []string) []decode.Record {
	var recs []decode.Record
	s := New(conn(tr), o, decode.SinkFunc(func(r decode.Record) { recs = append(recs, r) }))
	ts := t0
	for i, st := range tr.steps {
		ts = t0.Add(time.Duration(i+1) * 10 * time.Millisecond)
		if st.gap {
			s.Gap(st.dir, -1, ts)
			continue
		}
		pieces := []string{st.data}
		if split != nil {
			if p := split(i, st.data); p != nil {
				pieces = p
			}
		}
		for _, p := range pieces {
			s.Data(st.dir, []byte(p), ts)
		}
	}
	s.Close(tr.reason, ts.Add(10*time.Millisecond))
	return recs
}

func run(t *testing.T, tr transcript, o decode.Options) result {
	t.Helper()
	return result{t: t, recs: feed(tr, o, nil)}
}

// cmds is the usual option set for tests: command records, no secrets.
var cmds = decode.Options{Level: decode.LevelCommands}

type result struct {
	t    *testing.T
	recs []decode.Record
}

func (r result) session() *decode.SessionRecord {
	r.t.Helper()
	var out *decode.SessionRecord
	for i, rec := range r.recs {
		if s, ok := rec.(*decode.SessionRecord); ok {
			if out != nil || i != len(r.recs)-1 {
				r.t.Fatalf("session record not once and last: %s", r.dump())
			}
			out = s
		}
	}
	if out == nil {
		r.t.Fatalf("no session record: %s", r.dump())
	}
	return out
}

func (r result) commands() []*decode.CommandRecord {
	var out []*decode.CommandRecord
	for _, rec := range r.recs {
		if c, ok := rec.(*decode.CommandRecord); ok {
			out = append(out, c)
		}
	}
	return out
}

func (r result) messages() []*decode.POP3Message {
	var out []*decode.POP3Message
	for _, rec := range r.recs {
		if m, ok := rec.(*decode.POP3Message); ok {
			out = append(out, m)
		}
	}
	return out
}

func (r result) dump() string {
	var b strings.Builder
	for _, rec := range r.recs {
		j, _ := json.Marshal(rec)
		b.WriteString("\n")
		b.Write(j)
	}
	return b.String()
}

// verbs lists "VERB args status" per command record.
func (r result) verbs() []string {
	var out []string
	for _, c := range r.commands() {
		st := "null"
		if c.Status != nil {
			st = c.Status.(string)
		}
		s := c.Verb
		if c.Args != "" {
			s += " " + c.Args
		}
		out = append(out, s+" "+st)
	}
	return out
}

func (r result) wantVerbs(want ...string) {
	r.t.Helper()
	got := r.verbs()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		r.t.Errorf("commands:\n got %q\nwant %q%s", got, want, r.dump())
	}
}

func intp(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}
