package capture

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailtap/mailtap/decode"
)

// recorder is a decode.Decoder that keeps everything it is told.
type recorder struct {
	info   decode.ConnInfo
	bytes  [3]bytes.Buffer
	gaps   [3]int
	events []string
	closed decode.CloseReason
	nclose int
	anoms  []decode.Anomaly // told by capture (decode.AnomalyRecorder)
}

func (r *recorder) Anomaly(kind decode.Anomaly) { r.anoms = append(r.anoms, kind) }

func (r *recorder) Data(dir decode.Direction, p []byte, _ time.Time) {
	r.bytes[dir].Write(p)
	r.events = append(r.events, fmt.Sprintf("%s:%d", dir, len(p)))
}
func (r *recorder) Gap(dir decode.Direction, n int, _ time.Time) {
	r.gaps[dir] += n
	r.events = append(r.events, fmt.Sprintf("%s:gap%d", dir, n))
}
func (r *recorder) Close(reason decode.CloseReason, _ time.Time) {
	r.closed = reason
	r.nclose++
}

type recFactory struct{ conns []*recorder }

func (f *recFactory) NewConn(c decode.ConnInfo) decode.Decoder {
	r := &recorder{info: c}
	f.conns = append(f.conns, r)
	return r
}

func corpus(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join("..", "..", "shared", "corpus", rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("corpus not available (%v): run from a checkout next to ../shared", err)
	}
	return p
}

// runFile decodes the capture at path. It decodes it twice: keeping the
// bytes that overlaps are compared with as offsets into the file where it
// can (ref mode, overlap.go), and as copies; both must tell the decoders
// the same.
func runFile(t testing.TB, path string, cfg Config) (*recFactory, Stats) {
	t.Helper()
	var fs [2]*recFactory
	var st [2]Stats
	for i := range fs {
		src := openCapture(t, path)
		fs[i] = &recFactory{}
		e := New(cfg, fs[i])
		e.copyKept = i == 1
		if err := e.Run(src, nil); err != nil {
			t.Fatalf("run: %v", err)
		}
		st[i] = e.Stats()
	}
	if a, b := recorded(fs[0]), recorded(fs[1]); a != b {
		t.Fatalf("kept bytes read back from the file and copied: the decoders were told different things\n%s\n%s", a, b)
	}
	if st[0] != st[1] {
		t.Fatalf("stats differ: %+v, %+v", st[0], st[1])
	}
	return fs[0], st[0]
}

// recorded is all that f's decoders were told.
func recorded(f *recFactory) string {
	var b strings.Builder
	for _, r := range f.conns {
		fmt.Fprintf(&b, "%+v %q %q %v %v %v %d %v\n", r.info, r.bytes[0].String(), r.bytes[1].String(), r.gaps, r.events, r.closed, r.nclose, r.anoms)
	}
	return b.String()
}

func TestCorpusZeekSMTPReassembly(t *testing.T) {
	f, st := runFile(t, corpus(t, "zeek/smtp/smtp.pcap"), Config{ServerPort: func(p uint16) bool { return p == 25 }})
	var smtp []*recorder
	for _, c := range f.conns {
		if c.info.Server.Port() == 25 {
			smtp = append(smtp, c)
		}
		if c.nclose != 1 {
			t.Errorf("conn %v closed %d times", c.info.Client, c.nclose)
		}
	}
	if len(smtp) != 2 {
		t.Fatalf("want 2 SMTP connections, got %d (stats %+v)", len(smtp), st)
	}
	c := smtp[0]
	cli := c.bytes[decode.ClientToServer].String()
	srv := c.bytes[decode.ServerToClient].String()
	for _, want := range []string{"EHLO GP\r\n", "AUTH LOGIN\r\n", "MAIL FROM: <gurpartap@patriots.in>\r\n", "RCPT TO: <raj_deol2002in@yahoo.co.in>\r\n", "DATA\r\n", "\r\n.\r\n", "QUIT\r\n"} {
		if !bytes.Contains([]byte(cli), []byte(want)) {
			t.Errorf("client stream lacks %q", want)
		}
	}
	if !bytes.HasPrefix([]byte(srv), []byte("220-xc90.websitewelcome.com ESMTP")) {
		t.Errorf("server stream starts %q", srv[:min(20, len(srv))])
	}
	if c.gaps[1]+c.gaps[2] != 0 {
		t.Errorf("unexpected gaps %v", c.gaps)
	}
	if c.info.Client.String() != "10.10.1.4:1470" || c.info.Server.String() != "74.53.140.153:25" {
		t.Errorf("endpoints %v -> %v", c.info.Client, c.info.Server)
	}
}
