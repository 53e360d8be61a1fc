package imap

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailtap/mailtap/decode"
)

// Fuzz input: records of [kind][len lo][len hi][len bytes]; kind&3 is 0
// client data, 1 server data, 2 a gap of len bytes in the client
// direction, 3 a gap in the server direction (no bytes follow a gap).
func encodeSteps(steps []step) []byte {
	var out []byte
	for _, s := range steps {
		d := s.data
		for len(d) > 0 {
			n := min(len(d), 0xffff)
			k := byte(0)
			if s.dir == decode.ServerToClient {
				k = 1
			}
			out = append(out, k, byte(n), byte(n>>8))
			out = append(out, d[:n]...)
			d = d[n:]
		}
	}
	return out
}

type fuzzOp struct {
	kind byte
	data []byte
	n    int
}

func decodeOps(b []byte) []fuzzOp {
	var ops []fuzzOp
	for len(b) >= 3 {
		k, n := b[0]&3, int(b[1])|int(b[2])<<8
		b = b[3:]
		if k >= 2 {
			ops = append(ops, fuzzOp{kind: k, n: n})
			continue
		}
		n = min(n, len(b))
		ops = append(ops, fuzzOp{kind: k, data: b[:n]})
		b = b[n:]
	}
	return ops
}

func fuzzRun(ops []fuzzOp, split int, o decode.Options) ([]decode.Record, *Session) {
	var recs []decode.Record
	x := New(testConn(), o, decode.SinkFunc(func(r decode.Record) { recs = append(recs, r) }))
	ts := t0
	for _, op := range ops {
		ts = ts.Add(time.Millisecond)
		dir := decode.ClientToServer
		if op.kind&1 == 1 {
			dir = decode.ServerToClient
		}
		if op.kind >= 2 {
			x.Gap(dir, op.n, ts)
			continue
		}
		d := op.data
		if split > 0 && split < len(d) {
			x.Data(dir, d[:split], ts)
			d = d[split:]
		}
		x.Data(dir, d, ts)
		// Memory stays bounded whatever the input.
		for _, h := range []*half{&x.c, &x.s} {
			if len(h.tok.text) > 2*o.MaxLine+64 || len(h.pending) > maxPending+len(op.data) || len(h.tok.lits) > maxLiterals {
				panic(fmt.Sprintf("unbounded: text %d pending %d lits %d", len(h.tok.text), len(h.pending), len(h.tok.lits)))
			}
		}
		if len(x.order) > maxInFlight || len(x.mailboxes) > maxMailboxes {
			panic("unbounded bookkeeping")
		}
	}
	x.Close(decode.CloseFIN, ts)
	return recs, x
}

func fuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, steps := range splitTranscripts(t) {
		seeds = append(seeds, encodeSteps(steps))
	}
	seeds = append(seeds,
		encodeSteps([]step{C("a1 FETCH 1 BODY[]\r\n"), S("* 1 FETCH (BODY[] {18446744073709551615}\r\na1 OK\r\n")}),
		encodeSteps([]step{C("a1 SEARCH " + "((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((" + "\r\n")}),
		append(encodeSteps([]step{C("a1 FETCH 1 BODY[]\r\n"), S("* 1 FETCH (BODY[] {40}\r\nFrom: a@b\r\n")}), append([]byte{3, 10, 0}, encodeSteps([]step{S("rest of body)\r\na1 OK\r\n")})...)...),
	)
	return seeds
}

// TestWriteFuzzSeeds refreshes testdata/fuzz/FuzzIMAP from the transcripts
// when MAILTAP_WRITE_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("MAILTAP_WRITE_SEEDS") != "1" {
		t.Skip("set MAILTAP_WRITE_SEEDS=1 to rewrite the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzIMAP")
	os.MkdirAll(dir, 0o755)
	for i, s := range fuzzSeeds(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nint(%d)\n", s, i*7)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func FuzzIMAP(f *testing.F) {
	for i, s := range fuzzSeeds(f) {
		f.Add(s, i)
	}
	o := decode.Options{Level: decode.LevelCommands, MaxLine: 256}
	f.Fuzz(func(t *testing.T, in []byte, split int) {
		ops := decodeOps(in)
		start := time.Now()
		whole, _ := fuzzRun(ops, 0, o)
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("slow input: %v for %d bytes", d, len(in))
		}
		if split < 0 {
			split = -split
		}
		parts, _ := fuzzRun(ops, split%64+1, o)
		if a, b := dump(whole), dump(parts); a != b {
			t.Fatalf("split at %d changes records:\n%s\nvs\n%s", split%64+1, a, b)
		}
	})
}
