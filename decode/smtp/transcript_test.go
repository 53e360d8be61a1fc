package smtp

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailtap/mailtap/decode"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the decoder's output")

// A transcript is a scripted connection: steps of client or server bytes,
// gaps and clock changes, in capture order. The text format (testdata/*.txt):
//
//	# comment
//	@ midstream implicit secrets transactions maxline=N   options
//	c: text        client segment "text\r\n"      (s: for the server)
//	c+ text        append "text\r\n" to the previous segment (same direction)
//	c= "go\r\n"    client segment from a Go string literal (exact bytes)
//	c~ "go"        append a Go string literal to the previous segment
//	c% 16030100    client segment from hex (s% for the server)
//	gap c 100      100 bytes lost in the client direction (-1: unknown)
//	wait 250ms     advance the clock (every step also advances it by 1ms)
//	close rst      how the connection ends (default fin)
type transcript struct {
	name  string
	conn  decode.ConnInfo
	opts  decode.Options
	steps []step
	close decode.CloseReason
}

type step struct {
	gap  bool
	dir  decode.Direction
	data []byte
	n    int
	ts   time.Time
}

var t0 = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func loadTranscript(t testing.TB, path string) *transcript {
	t.Helper()
	f, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := parseTranscript(filepath.Base(path), f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return tr
}

func parseTranscript(name string, src []byte) (*transcript, error) {
	tr := &transcript{
		name: strings.TrimSuffix(name, ".txt"),
		conn: decode.ConnInfo{
			ID:     1,
			Client: netip.MustParseAddrPort("192.0.2.1:40000"),
			Server: netip.MustParseAddrPort("192.0.2.25:25"),
			Start:  t0,
		},
		opts: decode.Options{Level: decode.LevelCommands},
	}
	now := t0
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(nil, 1<<20)
	for ln := 1; sc.Scan(); ln++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fail := func(format string, a ...any) error {
			return fmt.Errorf("line %d: %s", ln, fmt.Sprintf(format, a...))
		}
		switch {
		case strings.HasPrefix(line, "@"):
			for _, o := range strings.Fields(line[1:]) {
				k, v, _ := strings.Cut(o, "=")
				switch k {
				case "midstream":
					tr.conn.Midstream = true
				case "implicit":
					tr.conn.ImplicitTLS = true
					tr.conn.Server = netip.MustParseAddrPort("192.0.2.25:465")
				case "secrets":
					tr.opts.ShowSecrets = true
				case "transactions":
					tr.opts.Level = decode.LevelTransactions
				case "maxline":
					n, err := strconv.Atoi(v)
					if err != nil {
						return nil, fail("maxline: %v", err)
					}
					tr.opts.MaxLine = n
				default:
					return nil, fail("unknown option %q", o)
				}
			}
			continue
		case strings.HasPrefix(line, "gap "):
			f := strings.Fields(line)
			if len(f) != 3 {
				return nil, fail("gap c|s N")
			}
			n, err := strconv.Atoi(f[2])
			if err != nil {
				return nil, fail("gap: %v", err)
			}
			now = now.Add(time.Millisecond)
			tr.steps = append(tr.steps, step{gap: true, dir: dirOf(f[1][0]), n: n, ts: now})
			continue
		case strings.HasPrefix(line, "wait "):
			d, err := time.ParseDuration(strings.TrimSpace(line[5:]))
			if err != nil {
				return nil, fail("wait: %v", err)
			}
			now = now.Add(d)
			continue
		case strings.HasPrefix(line, "close"):
			switch strings.TrimSpace(line[5:]) {
			case "", "fin":
				tr.close = decode.CloseFIN
			case "rst":
				tr.close = decode.CloseRST
			case "eof":
				tr.close = decode.CloseEOF
			default:
				return nil, fail("close fin|rst|eof")
			}
			continue
		}
		if len(line) < 2 || (line[0] != 'c' && line[0] != 's') {
			return nil, fail("cannot parse %q", line)
		}
		dir := dirOf(line[0])
		arg := strings.TrimPrefix(line[2:], " ")
		var data []byte
		var err error
		switch line[1] {
		case ':', '+':
			data = []byte(arg + "\r\n")
		case '=', '~':
			var v string
			v, err = strconv.Unquote(arg)
			data = []byte(v)
		case '%':
			data, err = hex.DecodeString(strings.ReplaceAll(arg, " ", ""))
		default:
			return nil, fail("cannot parse %q", line)
		}
		if err != nil {
			return nil, fail("%v", err)
		}
		if line[1] == '+' || line[1] == '~' {
			if len(tr.steps) == 0 || tr.steps[len(tr.steps)-1].gap || tr.steps[len(tr.steps)-1].dir != dir {
				return nil, fail("continuation without a segment in the same direction")
			}
			last := &tr.steps[len(tr.steps)-1]
			last.data = append(last.data, data...)
			continue
		}
		now = now.Add(time.Millisecond)
		tr.steps = append(tr.steps, step{dir: dir, data: data, ts: now})
	}
	return tr, sc.Err()
}

func dirOf(c byte) decode.Direction {
	if c == 's' {
		return decode.ServerToClient
	}
	return decode.ClientToServer
}

// end returns the close time: 1ms after the last step.
func (tr *transcript) end() time.Time {
	if len(tr.steps) == 0 {
		return t0.Add(time.Millisecond)
	}
	return tr.steps[len(tr.steps)-1].ts.Add(time.Millisecond)
}

// run feeds the transcript to a new Session. feed delivers one step's
// bytes; nil feeds them whole.
func (tr *transcript) run(feed func(s *Session, st step)) []decode.Record {
	var recs []decode.Record
	conn := tr.conn
	s := New(conn, tr.opts, decode.SinkFunc(func(r decode.Record) { recs = append(recs, r) }))
	for _, st := range tr.steps {
		switch {
		case st.gap:
			s.Gap(st.dir, st.n, st.ts)
		case feed != nil:
			feed(s, st)
		default:
			s.Data(st.dir, st.data, st.ts)
		}
	}
	s.Close(tr.close, tr.end())
	s.Release() // the next run takes it over: reuse is tested throughout
	return recs
}

// jsonLines renders records as the JSON-lines output would.
func jsonLines(t testing.TB, recs []decode.Record) string {
	t.Helper()
	var b strings.Builder
	for _, r := range recs {
		j, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

func transcripts(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts in testdata: %v", err)
	}
	return files
}

// TestGolden decodes every transcript and compares the records with
// testdata/<name>.golden (rewrite with -update).
func TestGolden(t *testing.T) {
	for _, path := range transcripts(t) {
		tr := loadTranscript(t, path)
		t.Run(tr.name, func(t *testing.T) {
			got := jsonLines(t, tr.run(nil))
			golden := strings.TrimSuffix(path, ".txt") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("records differ from %s:\n got:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

// TestSplitInvariance feeds every transcript split at every byte offset of
// the whole capture, and one byte at a time, and requires the same records
// as when each segment is fed whole.
func TestSplitInvariance(t *testing.T) {
	for _, path := range transcripts(t) {
		tr := loadTranscript(t, path)
		t.Run(tr.name, func(t *testing.T) {
			want := jsonLines(t, tr.run(nil))
			bytewise := jsonLines(t, tr.run(func(s *Session, st step) {
				for i := range st.data {
					s.Data(st.dir, st.data[i:i+1], st.ts)
				}
			}))
			if bytewise != want {
				t.Fatalf("byte-at-a-time differs:\n got:\n%s\nwant:\n%s", bytewise, want)
			}
			total := 0
			for _, st := range tr.steps {
				total += len(st.data)
			}
			if testing.Short() && total > 4096 {
				total = 4096
			}
			for k := 1; k < total; k++ {
				off := 0
				got := jsonLines(t, tr.run(func(s *Session, st step) {
					if k > off && k < off+len(st.data) {
						cut := k - off
						s.Data(st.dir, st.data[:cut], st.ts)
						s.Data(st.dir, st.data[cut:], st.ts)
					} else {
						s.Data(st.dir, st.data, st.ts)
					}
					off += len(st.data)
				}))
				if got != want {
					t.Fatalf("split at byte %d differs:\n got:\n%s\nwant:\n%s", k, got, want)
				}
			}
		})
	}
}

// TestRecordsFixedAtEmit requires every record to stay as it was when it
// was emitted (a sink may encode it later): the session reuses its
// commands, its reply storage and slots in its transactions, and none of
// that may show through a record. The bytes passed to Data are overwritten
// after each call, so a record must not keep them either; and once the
// session is released, the next session reuses it, which must not show
// either.
func TestRecordsFixedAtEmit(t *testing.T) {
	for _, path := range transcripts(t) {
		tr := loadTranscript(t, path)
		for _, level := range []decode.Level{decode.LevelTransactions, decode.LevelCommands} {
			opts := tr.opts
			opts.Level = level
			var atEmit strings.Builder
			var recs []decode.Record
			s := New(tr.conn, opts, decode.SinkFunc(func(r decode.Record) {
				atEmit.WriteString(jsonLines(t, []decode.Record{r}))
				recs = append(recs, r)
			}))
			for _, st := range tr.steps {
				if st.gap {
					s.Gap(st.dir, st.n, st.ts)
					continue
				}
				p := bytes.Clone(st.data)
				s.Data(st.dir, p, st.ts)
				for i := range p {
					p[i] = '#'
				}
			}
			s.Close(tr.close, tr.end())
			s.Release()
			if s2 := New(tr.conn, opts, decode.SinkFunc(func(decode.Record) {})); s2 == s {
				// (sync.Pool may drop it: then there is nothing to check)
				s2.Data(decode.ServerToClient, []byte("220 reuse\r\n"), t0)
				s2.Data(decode.ClientToServer, []byte("EHLO other\r\nMAIL FROM:<z@z>\r\n"), t0)
				s2.Close(decode.CloseFIN, t0)
			}
			if got, want := jsonLines(t, recs), atEmit.String(); got != want {
				t.Errorf("%s, level %d: records changed after they were emitted:\n now:\n%s\nat emit:\n%s", tr.name, level, got, want)
			}
		}
	}
}
