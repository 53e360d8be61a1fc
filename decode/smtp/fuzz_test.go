package smtp

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailtap/mailtap/decode"
)

// FuzzSMTP feeds arbitrary bytes as a two-sided conversation: the input is
// cut into segments by a control byte per segment (direction, gap, length).
// The decoder must never panic, must emit a session record last, and must
// keep its buffers within their limits.
func FuzzSMTP(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.txt"))
	for _, path := range files {
		tr := loadTranscript(f, path)
		f.Add(encodeFuzz(tr), uint8(0))
	}
	f.Add([]byte("\x00220 x\r\n\x80EHLO y\r\n\x00250-a\r\n250 b\r\n\x80DATA\r\n\x80x\r\n.\r\n"), uint8(3))
	f.Fuzz(func(t *testing.T, in []byte, flags uint8) {
		first := fuzzRun(t, in, flags)
		want := jsonLines(t, first)
		// The session went back to the pool: the next one is most likely
		// the same storage, which must decode the same and leave the
		// first run's records alone.
		if got := jsonLines(t, fuzzRun(t, in, flags)); got != want {
			t.Fatalf("a reused session decodes differently:\n got:\n%s\nwant:\n%s", got, want)
		}
		if got := jsonLines(t, first); got != want {
			t.Fatalf("records changed when their session was reused:\n now:\n%s\nat emit:\n%s", got, want)
		}
	})
}

// fuzzRun decodes one FuzzSMTP input on a session it releases at the end.
func fuzzRun(t *testing.T, in []byte, flags uint8) []decode.Record {
	c := decode.ConnInfo{ID: 1, Start: t0, Midstream: flags&1 != 0, ImplicitTLS: flags&2 != 0}
	o := decode.Options{Level: decode.LevelCommands, ShowSecrets: flags&4 != 0, MaxLine: 512}
	var recs []decode.Record
	s := New(c, o, decode.SinkFunc(func(r decode.Record) {
		if _, err := json.Marshal(r); err != nil {
			t.Fatalf("record does not marshal: %v", err)
		}
		recs = append(recs, r)
	}))
	ts := t0
	for len(in) > 0 {
		ctl := in[0]
		in = in[1:]
		ts = ts.Add(time.Millisecond)
		dir := decode.ClientToServer
		if ctl&0x80 == 0 {
			dir = decode.ServerToClient
		}
		if ctl&0x40 != 0 {
			s.Gap(dir, int(ctl&0x0f)-1, ts)
			continue
		}
		n := len(in)
		if ctl&0x3f != 0 && int(ctl&0x3f) < n {
			n = int(ctl & 0x3f)
		}
		s.Data(dir, in[:n], ts)
		in = in[n:]
		checkBounds(t, s)
	}
	s.Close(decode.CloseFIN, ts.Add(time.Millisecond))
	if len(recs) == 0 {
		t.Fatal("no records")
	}
	if _, ok := recs[len(recs)-1].(*decode.SessionRecord); !ok {
		t.Fatalf("last record is %T", recs[len(recs)-1])
	}
	s.Release()
	return recs
}

func checkBounds(t *testing.T, s *Session) {
	t.Helper()
	if len(s.queue) > maxPending {
		t.Fatalf("%d pending commands", len(s.queue))
	}
	if len(s.hold) > maxHold {
		t.Fatalf("hold %d bytes", len(s.hold))
	}
	if s.rl.n() > maxReplyLines || len(s.rl.buf) > maxReplyBytes {
		t.Fatalf("reply %d lines %d bytes", s.rl.n(), len(s.rl.buf))
	}
	if s.cl.Pending() > s.Opts.MaxLine+1 || s.sv.Pending() > s.Opts.MaxLine+1 { // +1: a CR kept with the line
		t.Fatalf("line buffers %d %d", s.cl.Pending(), s.sv.Pending())
	}
	if n := s.TLSBuffered(); n > decode.MaxTLSBuffered {
		t.Fatalf("hello buffer %d", n)
	}
	if s.cur != nil && len(s.cur.rcpts) > maxRcpt {
		t.Fatalf("%d rcpts", len(s.cur.rcpts))
	}
	if len(s.open) > maxPending+2 {
		t.Fatalf("%d open transactions", len(s.open))
	}
}

// encodeFuzz turns a transcript into the fuzz input format, each segment
// whole (control byte 0: rest of the input is not used since segments are
// length-prefixed by chunks of at most 63 bytes).
func encodeFuzz(tr *transcript) []byte {
	var out []byte
	for _, st := range tr.steps {
		var dirBit byte
		if st.dir == decode.ClientToServer {
			dirBit = 0x80
		}
		if st.gap {
			n := st.n + 1
			if n < 0 || n > 15 {
				n = 0
			}
			out = append(out, dirBit|0x40|byte(n))
			continue
		}
		for p := st.data; len(p) > 0; {
			n := min(len(p), 63)
			out = append(out, dirBit|byte(n))
			out = append(out, p[:n]...)
			p = p[n:]
		}
	}
	return out
}

// TestFuzzSeeds keeps the seed corpus in testdata/fuzz/FuzzSMTP in step
// with the transcripts (written with -update).
func TestFuzzSeeds(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite testdata/fuzz/FuzzSMTP seeds from the transcripts")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzSMTP")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, path := range transcripts(t) {
		tr := loadTranscript(t, path)
		body := "go test fuzz v1\n[]byte(" + quoteBytes(encodeFuzz(tr)) + ")\nuint8(0)\n"
		if err := os.WriteFile(filepath.Join(dir, "seed-"+tr.name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func quoteBytes(b []byte) string {
	out := []byte{'"'}
	for _, c := range b {
		switch {
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c >= 0x20 && c < 0x7f:
			out = append(out, c)
		default:
			out = append(out, '\\', 'x', "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
		}
	}
	return string(append(out, '"'))
}
