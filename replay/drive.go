package replay

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/dispatch"
)

// TypeSession is the record type of a replay result.
const TypeSession = "replay.session"

// Result is the outcome of replaying one session.
type Result struct {
	Type    string       `json:"type"`
	Session uint64       `json:"session"`
	Proto   decode.Proto `json:"proto"`
	Client  string       `json:"client"`
	Server  string       `json:"server"`
	Target  string       `json:"target,omitempty"`
	// Commands is how many command records were compared (the longer of
	// the captured and replayed lists).
	Commands int `json:"commands"`
	Matched  int `json:"matched"`
	// Divergences counts the commands whose verb or status differ;
	// Diverged lists the first maxDiverged of them.
	Divergences int          `json:"divergences"`
	Diverged    []Divergence `json:"diverged,omitempty"`
	// TextDiffs counts matched commands whose reply text differs.
	TextDiffs int `json:"text_diffs"`
	// Timeouts counts turns the server did not finish answering in time.
	Timeouts int    `json:"timeouts,omitempty"`
	Skipped  string `json:"skipped,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Divergence is one command answered differently. Want and Got are
// statuses (an SMTP code, "+OK"/"-ERR", "OK"/"NO"/"BAD"), nil when
// unanswered or missing.
type Divergence struct {
	Index    int    `json:"index"`
	Verb     string `json:"verb"`
	GotVerb  string `json:"got_verb,omitempty"`
	Want     any    `json:"want"`
	Got      any    `json:"got"`
	WantText string `json:"want_text,omitempty"`
	GotText  string `json:"got_text,omitempty"`
}

// Failed reports whether the session was replayed and did not match.
func (r *Result) Failed() bool { return r.Skipped == "" && (r.Divergences > 0 || r.Error != "") }

// maxDiverged bounds the divergences listed per session.
const maxDiverged = 32

// Options configure Replay.
type Options struct {
	// Timeout bounds each turn's wait for the server; zero means 5 s.
	Timeout time.Duration
	// MaxServerBytes bounds the replayed server bytes kept per session;
	// zero means 64 MiB.
	MaxServerBytes int64
}

// Replay drives s against addr: the greeting is read, then every turn's
// client bytes are sent and the answer read until it is as complete as the
// captured one (or the turn times out, or the server closes). The replayed
// exchange is decoded with the same protocol decoder and compared with the
// captured command records.
func Replay(s *Session, addr string, o Options) *Result {
	res := &Result{Type: TypeSession, Session: s.ID, Proto: s.Proto,
		Client: s.Conn.Client.String(), Server: s.Conn.Server.String(), Target: addr}
	if s.Skip != "" {
		res.Target, res.Skipped = "", s.Skip
		return res
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.MaxServerBytes <= 0 {
		o.MaxServerBytes = 64 << 20
	}
	want, live := newFramer(s.Proto), newFramer(s.Proto)
	if want == nil {
		res.Skipped = fmt.Sprintf("protocol %q cannot be replayed", s.Proto)
		return res
	}
	conn, err := net.DialTimeout("tcp", addr, o.Timeout)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer conn.Close()
	d := driver{conn: conn, live: live, timeout: o.Timeout, max: o.MaxServerBytes}
	// Every server of these protocols greets first. When the capture has
	// no complete greeting (none at all, or one without its line end, in
	// crafted captures), the live greeting is still read here, and the
	// live count keeps that offset from the captured one. A greeting that
	// arrived late in the capture (after the client's first bytes) counts
	// in that turn instead: no offset.
	g := want.server(s.Greeting)
	offset := 0
	if g == 0 && (len(s.Greeting) > 0 || !hasGreeting(s)) {
		offset = 1
	}
	greeting, err := d.read(g + offset)
	turns := make([]Turn, 0, len(s.Turns))
	for _, t := range s.Turns {
		if err != nil {
			break
		}
		want.client(t.Client)
		n := want.server(t.Server)
		live.client(t.Client)
		conn.SetWriteDeadline(time.Now().Add(o.Timeout))
		if _, err = conn.Write(t.Client); err != nil {
			break
		}
		var got []byte
		got, err = d.read(n + offset)
		turns = append(turns, Turn{Client: t.Client, Server: got})
	}
	res.Timeouts = d.timeouts
	got := decodeCommands(s, greeting, turns)
	compare(res, s.Commands, got)
	return res
}

type driver struct {
	conn     net.Conn
	live     framer
	timeout  time.Duration
	max      int64
	kept     int64
	count    int
	timeouts int
	buf      [32 << 10]byte
}

// read reads until the live count of responses reaches n. A timeout is
// counted and not an error (the next turn goes on); EOF or another error
// ends the session.
func (d *driver) read(n int) ([]byte, error) {
	var out []byte
	if d.count >= n {
		return out, nil
	}
	d.conn.SetReadDeadline(time.Now().Add(d.timeout))
	for d.count < n {
		k, err := d.conn.Read(d.buf[:])
		if k > 0 {
			d.count = d.live.server(d.buf[:k])
			if d.kept+int64(k) <= d.max {
				out = append(out, d.buf[:k]...)
				d.kept += int64(k)
			}
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				d.timeouts++
				return out, nil
			}
			return out, err
		}
	}
	return out, nil
}

// decodeCommands decodes a replayed exchange into command records.
func decodeCommands(s *Session, greeting []byte, turns []Turn) []*decode.CommandRecord {
	var cmds []*decode.CommandRecord
	sink := decode.SinkFunc(func(r decode.Record) {
		if c, ok := r.(*decode.CommandRecord); ok {
			cmds = append(cmds, c)
		}
	})
	c := s.Conn
	c.Midstream = false
	o := decode.Options{Level: decode.LevelCommands, ShowSecrets: true}
	newDec := dispatch.Protocols()[s.Proto]
	if newDec == nil {
		return nil
	}
	dec := newDec(c, o, sink)
	ts := c.Start
	if len(greeting) > 0 {
		dec.Data(decode.ServerToClient, greeting, ts)
	}
	for _, t := range turns {
		ts = ts.Add(time.Millisecond)
		dec.Data(decode.ClientToServer, t.Client, ts)
		if len(t.Server) > 0 {
			ts = ts.Add(time.Millisecond)
			dec.Data(decode.ServerToClient, t.Server, ts)
		}
	}
	dec.Close(decode.CloseFIN, ts.Add(time.Millisecond))
	return cmds
}

// statusKey renders a status for comparison ("" when unanswered).
func statusKey(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func compare(res *Result, want, got []*decode.CommandRecord) {
	n := max(len(want), len(got))
	res.Commands = n
	for i := 0; i < n; i++ {
		div := Divergence{Index: i}
		var w, g *decode.CommandRecord
		if i < len(want) {
			w = want[i]
			div.Verb, div.Want, div.WantText = w.Verb, w.Status, w.Text
		}
		if i < len(got) {
			g = got[i]
			div.Got, div.GotText = g.Status, g.Text
			if w == nil {
				div.Verb = g.Verb
			} else if g.Verb != w.Verb {
				div.GotVerb = g.Verb
			}
		}
		if w != nil && g != nil && w.Verb == g.Verb && statusKey(w.Status) == statusKey(g.Status) {
			res.Matched++
			if w.Text != g.Text {
				res.TextDiffs++
			}
			continue
		}
		res.Divergences++
		if len(res.Diverged) < maxDiverged {
			res.Diverged = append(res.Diverged, div)
		}
	}
}

// hasGreeting reports whether the captured server's first line is a
// greeting: SMTP 220 (or 421/554), POP3 +OK/-ERR, IMAP "* OK"/PREAUTH/BYE.
func hasGreeting(s *Session) bool {
	first := s.Greeting
	for i := 0; len(first) == 0 && i < len(s.Turns); i++ {
		first = s.Turns[i].Server
	}
	switch s.Proto {
	case decode.ProtoSMTP:
		return bytes.HasPrefix(first, []byte("220")) || bytes.HasPrefix(first, []byte("421")) || bytes.HasPrefix(first, []byte("554"))
	case decode.ProtoPOP3:
		return bytes.HasPrefix(first, []byte("+OK")) || bytes.HasPrefix(first, []byte("-ERR"))
	case decode.ProtoIMAP:
		return bytes.HasPrefix(first, []byte("* OK")) || bytes.HasPrefix(first, []byte("* PREAUTH")) || bytes.HasPrefix(first, []byte("* BYE"))
	}
	return true
}
