package natssink

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailtap/mailtap/decode"
)

// rawRecord is a decoded record read back from JSON lines: the header to
// route it, the exact bytes to publish.
type rawRecord struct {
	decode.Header
	raw json.RawMessage
}

func (r *rawRecord) MarshalJSON() ([]byte, error) { return r.raw, nil }

// goldenRecords are the records mailtap decoded from the project's
// captures (cmd/mailtap golden files), each with a run-unique session so
// that the captures do not share ids.
func goldenRecords(t *testing.T) []*rawRecord {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("..", "..", "..", "cmd", "mailtap", "testdata", "golden", "*.jsonl"))
	if len(files) == 0 {
		t.Fatal("no golden JSON lines")
	}
	var out []*rawRecord
	for fi, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			r := &rawRecord{}
			if err := json.Unmarshal(sc.Bytes(), &r.Header); err != nil {
				t.Fatal(err)
			}
			r.Session += uint64(fi) << 32
			var m map[string]any
			json.Unmarshal(sc.Bytes(), &m)
			m["session"] = r.Session
			r.raw, _ = json.Marshal(m)
			out = append(out, r)
		}
		f.Close()
	}
	return out
}

// natsServer is a real nats-server with JetStream on 127.0.0.1.
type natsServer struct {
	bin, dir string
	port     int
	cmd      *exec.Cmd
}

func startNATS(t *testing.T) *natsServer {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nats-server"); serr != nil {
			t.Skip("nats-server not installed (Debian package nats-server): ", err)
		}
		bin = "/usr/sbin/nats-server"
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &natsServer{bin: bin, dir: t.TempDir(), port: port}
	s.start(t)
	t.Cleanup(func() { s.stop(t) })
	return s
}

func (s *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

func (s *natsServer) start(t *testing.T) {
	t.Helper()
	s.cmd = exec.Command(s.bin, "-a", "127.0.0.1", "-p", strconv.Itoa(s.port), "-js", "-sd", s.dir)
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		nc, err := nats.Connect(s.url())
		if err == nil {
			js, _ := jetstream.New(nc)
			_, err = js.AccountInfo(context.Background())
			nc.Close()
			if err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server did not come up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *natsServer) stop(t *testing.T) {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()
	s.cmd = nil
}

// stored reads the whole stream back: message ids in stream order.
func stored(t *testing.T, url, stream string) []*nats.Msg {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := st.Info(ctx)
	n := int(info.State.Msgs)
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []*nats.Msg
	for len(out) < n {
		batch, err := c.Fetch(min(n-len(out), 1000), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			out = append(out, &nats.Msg{Subject: m.Subject(), Data: m.Data(), Header: m.Headers()})
			got++
		}
		if got == 0 {
			t.Fatalf("read %d of %d stored messages", len(out), n)
		}
	}
	return out
}

// checkExactlyOnce: the stream holds every record once, on its type's
// subject, each session's records in the order they were emitted.
func checkExactlyOnce(t *testing.T, recs []*rawRecord, msgs []*nats.Msg) {
	t.Helper()
	if len(msgs) != len(recs) {
		t.Errorf("stream holds %d messages for %d records", len(msgs), len(recs))
	}
	seen := map[string]bool{}
	last := map[uint64]int{}
	for _, m := range msgs {
		id := m.Header.Get(jetstream.MsgIDHeader)
		if seen[id] {
			t.Fatalf("message %s stored twice", id)
		}
		seen[id] = true
		_, seqs, _ := strings.Cut(id, "-")
		seq, err := strconv.Atoi(seqs)
		if err != nil || seq < 1 || seq > len(recs) {
			t.Fatalf("message id %q", id)
		}
		r := recs[seq-1]
		var got, want any
		if json.Unmarshal(m.Data, &got) != nil || json.Unmarshal(r.raw, &want) != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("message %d: %s, record %s", seq, m.Data, r.raw)
		}
		if m.Subject != "mailtap."+r.Type {
			t.Errorf("record of type %s on %s", r.Type, m.Subject)
		}
		if seq < last[r.Session] {
			t.Errorf("session %d: record %d stored after %d", r.Session, seq, last[r.Session])
		}
		last[r.Session] = seq
	}
}

// TestPublishCorpusExactlyOnce: every record of the decoded captures
// arrives once, in order per session.
func TestPublishCorpusExactlyOnce(t *testing.T) {
	srv := startNATS(t)
	recs := goldenRecords(t)
	s, err := New(Config{URL: srv.url(), Subject: "mailtap"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		s.Emit(r)
	}
	if err := s.Close(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Acked != uint64(len(recs)) || st.Dropped != 0 {
		t.Fatalf("stats %+v for %d records", st, len(recs))
	}
	checkExactlyOnce(t, recs, stored(t, srv.url(), "MAILTAP"))
}

// TestPublishAcrossRestart: the server restarts while records are being
// published; nothing acknowledged is lost, nothing is stored twice, and
// with a queue large enough nothing is dropped.
func TestPublishAcrossRestart(t *testing.T) {
	srv := startNATS(t)
	base := goldenRecords(t)
	var recs []*rawRecord
	for rep := 0; rep < 20; rep++ {
		for _, r := range base {
			c := *r
			c.Session += uint64(rep) << 48
			var m map[string]any
			json.Unmarshal(r.raw, &m)
			m["session"] = c.Session
			c.raw, _ = json.Marshal(m)
			recs = append(recs, &c)
		}
	}
	s, err := New(Config{URL: srv.url(), Subject: "mailtap", Buffer: len(recs), AckWait: 2 * time.Second, MaxBackoff: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	restarted := false
	start := time.Now()
	for i, r := range recs {
		s.Emit(r)
		if !restarted && i == len(recs)/3 {
			// Wait until some are acknowledged, then restart.
			for s.Stats().Acked == 0 {
				time.Sleep(time.Millisecond)
			}
			srv.stop(t)
			time.Sleep(300 * time.Millisecond)
			srv.start(t)
			restarted = true
		}
	}
	if err := s.Close(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	t.Logf("%d records in %v across a restart: %+v", len(recs), time.Since(start), st)
	if st.Acked != uint64(len(recs)) {
		t.Fatalf("acked %d of %d", st.Acked, len(recs))
	}
	checkExactlyOnce(t, recs, stored(t, srv.url(), "MAILTAP"))
}

// TestServerDownDropsWithoutBlocking: with the server stopped, Emit stays
// fast, the queue holds what it can and the rest is counted as dropped.
func TestServerDownDropsWithoutBlocking(t *testing.T) {
	srv := startNATS(t)
	recs := goldenRecords(t)
	s, err := New(Config{URL: srv.url(), Subject: "mailtap", Buffer: 100, AckWait: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv.stop(t)
	start := time.Now()
	for range 10 {
		for _, r := range recs {
			s.Emit(r)
		}
	}
	took := time.Since(start)
	n := uint64(10 * len(recs))
	if took > 5*time.Second {
		t.Errorf("Emit of %d records with the server down took %v", n, took)
	}
	st := s.Stats()
	if st.Dropped < n-100-512 || st.Queued+st.Dropped != n {
		t.Errorf("server down: %+v for %d records (queue 100)", st, n)
	}
	err = s.Close(time.Second)
	st = s.Stats()
	if err == nil || st.Acked != 0 || st.Dropped != n {
		t.Errorf("Close: %v, %+v, want all %d dropped", err, st, n)
	}
	t.Logf("%d records emitted in %v with the server down; %s", n, took, st)
}

func TestParseURL(t *testing.T) {
	srv, subj, err := ParseURL("nats://127.0.0.1:4222/mailtap.site1")
	if err != nil || srv != "nats://127.0.0.1:4222" || subj != "mailtap.site1" {
		t.Errorf("got %q %q %v", srv, subj, err)
	}
	for _, bad := range []string{"nats://h:1", "nats://h:1/", "http://h:1/x", "nats:///x", "nats://h:1/a..b", "nats://h:1/a.*"} {
		if _, _, err := ParseURL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
