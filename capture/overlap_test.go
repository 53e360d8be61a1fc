package capture

import (
	"bytes"
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/mailtap/mailtap/capture/synth"
	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/dispatch"
)

// mailFrom is the client write the overlap tests tamper with.
const mailFrom = "MAIL FROM:<alice@goodguy.xx>\r\n"

// overlapConn scripts an SMTP exchange whose MAIL command is sent with
// opts (cut at offset 10 unless opts cut it otherwise).
func overlapConn(c *synth.Capture, client netip.AddrPort, o synth.Options, opts ...synth.StepOption) *synth.Conn {
	conn := c.Conn(client, srv4, o)
	conn.Server("220 mx.example.test ESMTP\r\n").
		Client("EHLO client.example\r\n").
		Server("250 mx.example.test\r\n").
		Client(mailFrom, opts...).
		Server("250 ok\r\n").
		Client("QUIT\r\n").
		Server("221 bye\r\n").
		Close(synth.ClientSide)
	return conn
}

// overwrite is mailFrom with p written at off.
func overwrite(off int, p string) string { return mailFrom[:off] + p + mailFrom[off+len(p):] }

func TestOverlapFirstCopyWins(t *testing.T) {
	at := strings.Index(mailFrom, "goodguy")
	cases := []struct {
		name string
		opts []synth.StepOption
		want string // the MAIL command decoded
		anom bool
	}{
		// A retransmission of delivered bytes that differs: the first
		// copy was already decoded (gopacket keeps it too), but nothing
		// said the copies differed.
		{"in-order", []synth.StepOption{synth.Split(10), synth.Forge(at, "badguy!", false)}, mailFrom, true},
		// A differing copy that arrives first, ahead of the bytes before
		// it, so it is held out of order; the genuine segments then
		// cover it. It is the first copy: it wins (gopacket kept the
		// later, in-order one).
		{"buffered", []synth.StepOption{synth.Split(10), synth.Forge(at, "gooory", true)}, overwrite(at, "gooory"), true},
		// A held differing copy only partly covered by each of the two
		// genuine segments: it wins whole (gopacket mixed both copies:
		// the first segment's bytes, then the held copy's tail:
		// alice@goodiey.xx).
		{"partial", []synth.StepOption{synth.Split(at + 3), synth.Forge(at, "baadie", true)}, overwrite(at, "baadie"), true},
		// A differing retransmission partly over delivered bytes, partly
		// over bytes the capture lost: the delivered ones stay, the rest
		// is the only copy.
		{"retransmit-over-lost", []synth.StepOption{synth.Split(at + 3), synth.Drop(1), synth.Forge(at, "BADGUYY.xx>\r\n", false)}, mailFrom[:at+3] + "GUYY.xx>\r\n", true},
		// Identical copies raise nothing.
		{"identical", []synth.StepOption{synth.Split(10, at+3), synth.Retransmit(1), synth.Duplicate(0), synth.Resend(5, 20), synth.Forge(at, "goodguy", true), synth.Forge(2, "IL FROM", false)}, mailFrom, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			capt := synth.NewCapture(synth.LinkEthernet)
			conn := overlapConn(capt, cli4, synth.Options{}, c.opts...)
			if err := conn.Err(); err != nil {
				t.Fatal(err)
			}
			f, _ := decodeCapture(t, capt, "o.pcap")
			if len(f.conns) != 1 {
				t.Fatalf("want 1 connection, got %d", len(f.conns))
			}
			r := f.conns[0]
			want := "EHLO client.example\r\n" + c.want + "QUIT\r\n"
			if got := r.bytes[decode.ClientToServer].String(); got != want {
				t.Errorf("client stream\n got %q\nwant %q", got, want)
			}
			if g := r.gaps[decode.ClientToServer]; g != 0 {
				t.Errorf("gap of %d bytes", g)
			}
			got := slices.Contains(r.anoms, decode.AnomalyOverlapInconsistent)
			if got != c.anom {
				t.Errorf("overlap_inconsistent %v, want %v (anomalies %v)", got, c.anom, r.anoms)
			}
			if n := len(r.anoms); n > 1 {
				t.Errorf("anomalies told %d times: %v", n, r.anoms)
			}
		})
	}
}

func TestDataOnSYN(t *testing.T) {
	capt := synth.NewCapture(synth.LinkEthernet)
	conn := capt.Conn(cli4, srv4, synth.Options{SYNData: "EHLO early.example\r\n"})
	conn.Server("250 mx.example.test\r\n").Client("QUIT\r\n").Server("221 bye\r\n").Close(synth.ClientSide)
	plain := capt.Conn(netip.MustParseAddrPort("192.0.2.10:40001"), srv4, synth.Options{})
	plain.Client("EHLO late.example\r\n").Server("250 ok\r\n").Close(synth.ClientSide)
	if err := capt.Conns()[0].Err(); err != nil {
		t.Fatal(err)
	}
	f, _ := decodeCapture(t, capt, "syn.pcap")
	if len(f.conns) != 2 {
		t.Fatalf("want 2 connections, got %d", len(f.conns))
	}
	r := f.conns[0]
	if got, want := r.bytes[decode.ClientToServer].String(), "EHLO early.example\r\nQUIT\r\n"; got != want {
		t.Errorf("client stream %q, want %q", got, want)
	}
	if !slices.Equal(r.anoms, []decode.Anomaly{decode.AnomalyDataOnSYN}) {
		t.Errorf("anomalies %v, want data_on_syn", r.anoms)
	}
	if a := f.conns[1].anoms; len(a) != 0 {
		t.Errorf("plain connection: anomalies %v", a)
	}
}

// TestStreamAnomaliesOnSession: through the dispatcher, the anomalies
// reach the SMTP session record, and the decoded envelope is the first
// copy's.
func TestStreamAnomaliesOnSession(t *testing.T) {
	at := strings.Index(mailFrom, "goodguy")
	capt := synth.NewCapture(synth.LinkEthernet)
	overlapConn(capt, cli4, synth.Options{}, synth.Split(at+3), synth.Forge(at, "gooory", true))
	overlapConn(capt, netip.MustParseAddrPort("192.0.2.10:40001"), synth.Options{SYNData: "\r\n"})
	overlapConn(capt, netip.MustParseAddrPort("192.0.2.10:40002"), synth.Options{}, synth.Split(10), synth.Retransmit(1))
	for _, c := range capt.Conns() {
		if err := c.Err(); err != nil {
			t.Fatal(err)
		}
	}
	path := writeCapture(t, capt, "s.pcap")
	src := openCapture(t, path)
	var recs []decode.Record
	sink := decode.SinkFunc(func(r decode.Record) { recs = append(recs, r) })
	d := dispatch.New(dispatch.Config{Protocols: dispatch.Protocols(), Sink: sink})
	e := New(Config{ServerPort: d.IsServerPort}, d)
	if err := e.Run(src, nil); err != nil {
		t.Fatal(err)
	}
	anoms := map[uint16][]string{}
	from := map[uint16]string{}
	for _, r := range recs {
		switch r := r.(type) {
		case *decode.SessionRecord:
			anoms[r.ClientPort] = r.Anomalies
		case *decode.SMTPMail:
			from[r.ClientPort] = r.MailFrom
		}
	}
	if a := anoms[cli4.Port()]; !slices.Equal(a, []string{string(decode.AnomalyOverlapInconsistent)}) {
		t.Errorf("overlap: session anomalies %v", a)
	}
	// (The CRLF on the SYN is an empty command too.)
	if a := anoms[40001]; !slices.Contains(a, string(decode.AnomalyDataOnSYN)) || slices.Contains(a, string(decode.AnomalyOverlapInconsistent)) {
		t.Errorf("data on SYN: session anomalies %v", a)
	}
	if a := anoms[40002]; len(a) != 0 {
		t.Errorf("retransmission: session anomalies %v", a)
	}
	if got := from[cli4.Port()]; got != "alice@goooryy.xx" {
		t.Errorf("mail_from %q, want the first copy's alice@goooryy.xx", got)
	}
	if got := from[40002]; got != "alice@goodguy.xx" {
		t.Errorf("mail_from %q", got)
	}
}

// TestOverlapMemoryBounded: what capture keeps to compare overlaps stays
// within its bounds on a one-sided capture (nothing is ever acknowledged),
// on a half full of holes, and with a small per-worker budget; the
// stream is still decoded whole.
func TestOverlapMemoryBounded(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 20<<10) // 320 KiB
	var holes, ahead []synth.StepOption
	for i := 1; i < 200; i += 2 {
		holes = append(holes, synth.Reorder(i))
	}
	for k := 1; k <= 100; k++ {
		// identical copies of 8 bytes every 64, ahead of the stream:
		// 100 ranges held out of order at once
		ahead = append(ahead, synth.Forge(k*64, big[k*64:k*64+8], true))
	}
	cases := []struct {
		name   string
		budget int
		o      synth.Options
		opts   []synth.StepOption
	}{
		{"one-sided", 0, synth.Options{Only: synth.ClientSide}, nil},
		// never acknowledged, in tiny segments: read from a file, a range
		// outgrows maxRefs and is read back into a buffer
		{"one-sided-small-segments", 0, synth.Options{Only: synth.ClientSide}, []synth.StepOption{synth.SegmentSize(16)}},
		{"reordered-small-segments", 0, synth.Options{}, append([]synth.StepOption{synth.SegmentSize(16)}, holes...)},
		{"many-ranges-ahead", 0, synth.Options{}, ahead},
		{"small-budget", 4096, synth.Options{}, []synth.StepOption{synth.Forge(100, big[100:3000], true)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			capt := synth.NewCapture(synth.LinkEthernet)
			conn := capt.Conn(cli4, srv4, c.o)
			conn.Client(big, c.opts...).Server("250 ok\r\n").Close(synth.ClientSide)
			pkts, err := capt.Packets()
			if err != nil {
				t.Fatal(err)
			}
			f := &recFactory{}
			e := New(Config{ServerPort: func(p uint16) bool { return p == 25 }, MaxOverlapBytes: c.budget}, f)
			w := e.set.ws[0].w
			most, spans := 0, 0
			for _, p := range pkts {
				e.Packet(p.Data, gopacket.CaptureInfo{Timestamp: p.Time, CaptureLength: len(p.Data), Length: len(p.Data)}, layers.LinkTypeEthernet)
				most = max(most, w.kept)
				for _, c := range w.conns {
					for i := range c.halves {
						spans = max(spans, len(c.halves[i].spans))
					}
				}
			}
			e.Finish()
			limit := 2 * keepPerHalf
			if c.budget > 0 {
				limit = c.budget
			}
			if most > limit {
				t.Errorf("kept %d bytes, bound %d", most, limit)
			}
			if spans > maxSpans {
				t.Errorf("%d spans in a half, bound %d", spans, maxSpans)
			}
			if w.kept != 0 {
				t.Errorf("%d bytes still kept after the end", w.kept)
			}
			if got := f.conns[0].bytes[decode.ClientToServer].String(); got != big {
				t.Errorf("client stream: %d bytes, want %d", len(got), len(big))
			}
			t.Logf("kept at most %d bytes, %d spans", most, spans)
			// Through a file (runFile: with the kept bytes as offsets
			// into it, then as copies, the same told either way).
			ff, _ := runFile(t, writeCapture(t, capt, "bounds.pcap"), Config{ServerPort: func(p uint16) bool { return p == 25 }, MaxOverlapBytes: c.budget})
			if got := ff.conns[0].bytes[decode.ClientToServer].String(); got != big {
				t.Errorf("from a file: client stream %d bytes, want %d", len(got), len(big))
			}
		})
	}
}

// TestCorpusOverlapInconsistent: real traffic. In Suricata's
// smtp-bug-5981 capture a 6458-byte segment (larger than the path allows:
// taken before segmentation offload, or edited) carries "AAAA" fill, and
// the 1460-byte segments that follow carry other bytes at the same
// sequence numbers: an overlap with different content. The first copy is decoded, as before, and now
// said to differ. Zeek's SMTP capture, with ordinary retransmissions, gets
// no such anomaly.
func TestCorpusOverlapInconsistent(t *testing.T) {
	smtp := func(p uint16) bool { return p == 25 || p == 587 }
	f, _ := runFile(t, corpus(t, "suricata-verify/smtp-bug-5981/input.pcap"), Config{ServerPort: smtp})
	if len(f.conns) != 1 {
		t.Fatalf("want 1 connection, got %d", len(f.conns))
	}
	r := f.conns[0]
	if !slices.Equal(r.anoms, []decode.Anomaly{decode.AnomalyOverlapInconsistent}) {
		t.Errorf("anomalies %v, want overlap_inconsistent", r.anoms)
	}
	cli := r.bytes[decode.ClientToServer].String()
	if !strings.Contains(cli, strings.Repeat("A", 1000)) || !strings.HasSuffix(cli, "QUIT\r\n") {
		t.Errorf("client stream (%d bytes) lacks the first copy's fill or the end", len(cli))
	}
	f, _ = runFile(t, corpus(t, "zeek/smtp/smtp.pcap"), Config{ServerPort: smtp})
	for _, c := range f.conns {
		if len(c.anoms) != 0 {
			t.Errorf("%v: anomalies %v", c.info.Client, c.anoms)
		}
	}
}

// TestOverlapRefMode: read from a pcap file, the bytes an overlap is
// compared with are kept as offsets into the file and read back only for
// the comparison; a differing copy is still caught and an identical one
// still is not. Through a file that has lost the bytes since, they are
// dropped, not compared: no anomaly, no panic.
func TestOverlapRefMode(t *testing.T) {
	at := strings.Index(mailFrom, "goodguy")
	oneSided := synth.Options{Only: synth.ClientSide} // nothing acknowledged
	for _, c := range []struct {
		name string
		o    synth.Options
		opts []synth.StepOption
		anom bool
	}{
		{"differing", synth.Options{}, []synth.StepOption{synth.Split(10), synth.Forge(at, "badguy!", false)}, true},
		{"identical", synth.Options{}, []synth.StepOption{synth.Split(10), synth.Retransmit(1)}, false},
		// several refs read back at once (small segments near each other)
		{"differing-small", oneSided, []synth.StepOption{synth.SegmentSize(4), synth.Forge(at, "badguy!", false)}, true},
		{"identical-small", oneSided, []synth.StepOption{synth.SegmentSize(4), synth.Forge(at, "goodguy", false)}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			capt := synth.NewCapture(synth.LinkEthernet)
			overlapConn(capt, cli4, c.o, c.opts...)
			var b bytes.Buffer
			if err := capt.Write(&b, synth.FormatPcap); err != nil {
				t.Fatal(err)
			}
			for _, lose := range []bool{false, true} {
				var at io.ReaderAt = bytes.NewReader(b.Bytes())
				if lose {
					at = lostBytes{}
				}
				src, err := OpenReader(bytes.NewReader(b.Bytes()))
				if err != nil {
					t.Fatal(err)
				}
				if src.fileAt() == nil {
					t.Fatal("a pcap in memory gives no offsets")
				}
				src.at = at
				f := &recFactory{}
				e := New(Config{ServerPort: func(p uint16) bool { return p == 25 }}, f)
				if err := e.Run(src, nil); err != nil {
					t.Fatal(err)
				}
				w := e.set.ws[0].w
				if w.readBack == 0 {
					t.Errorf("lose=%v: the overlap was compared without reading the kept bytes back", lose)
				}
				if w.kept != 0 {
					t.Errorf("lose=%v: %d bytes still kept after the end", lose, w.kept)
				}
				want := c.anom && !lose
				if got := slices.Contains(f.conns[0].anoms, decode.AnomalyOverlapInconsistent); got != want {
					t.Errorf("lose=%v: overlap_inconsistent %v, want %v", lose, got, want)
				}
			}
		})
	}
}

// lostBytes is a file whose bytes are gone.
type lostBytes struct{}

func (lostBytes) ReadAt(p []byte, off int64) (int, error) { return 0, io.ErrUnexpectedEOF }
