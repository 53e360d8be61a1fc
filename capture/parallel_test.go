package capture

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailtap/mailtap/capture/synth"
	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/sink"
)

// The JSON-lines output takes records encoded by the workers.
var _ encodingSink = (*sink.JSONL)(nil)

// echo emits a record for every Data, Gap and Close it sees.
type echo struct {
	c decode.ConnInfo
	s decode.Sink
}

type line struct {
	decode.Header
	Text string
}

func (e *echo) emit(format string, args ...any) {
	e.s.Emit(&line{Header: decode.Header{Session: e.c.ID}, Text: fmt.Sprintf(format, args...)})
}
func (e *echo) Data(d decode.Direction, p []byte, ts time.Time) {
	e.emit("%d %s %d %s", e.c.ID, d, len(p), ts.Format(time.StampMicro))
}
func (e *echo) Gap(d decode.Direction, n int, _ time.Time) { e.emit("%d gap %s %d", e.c.ID, d, n) }
func (e *echo) Close(r decode.CloseReason, ts time.Time) {
	e.emit("%d close %s %s", e.c.ID, r, ts.Format(time.StampMicro))
}

type collect struct {
	mu    sync.Mutex
	lines []string
}

func (c *collect) Emit(r decode.Record) {
	c.mu.Lock()
	c.lines = append(c.lines, r.(*line).Text)
	c.mu.Unlock()
}

func echoFactory(s decode.Sink) Factory {
	return FactoryFunc(func(c decode.ConnInfo) decode.Decoder { return &echo{c: c, s: s} })
}

// TestParallelSameOrder runs many interleaved connections (with loss,
// reordering, idle timeouts and connections left open) through one worker
// and through several, and wants the same records in the same order.
func TestParallelSameOrder(t *testing.T) {
	path := interleavedCapture(t)
	run := func(n int) []string {
		src, err := OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		out := &collect{}
		var e *Engine
		if n == 1 {
			e = New(Config{}, echoFactory(out))
		} else {
			e = NewParallel(Config{}, n, echoFactory, out)
		}
		if err := e.Run(src, nil); err != nil {
			t.Fatal(err)
		}
		return out.lines
	}
	one := run(1)
	if len(one) < 200 {
		t.Fatalf("only %d records", len(one))
	}
	for _, n := range []int{2, 3, 5} {
		got := run(n)
		if strings.Join(got, "\n") != strings.Join(one, "\n") {
			for i := range one {
				if i >= len(got) || got[i] != one[i] {
					t.Fatalf("%d workers: record %d is %q, one worker says %q", n, i, at(got, i), one[i])
				}
			}
			t.Fatalf("%d workers: %d records, want %d", n, len(got), len(one))
		}
	}
}

// interleavedCapture writes a capture of many interleaved connections,
// with loss, reordering, idle timeouts and connections left open.
func interleavedCapture(t *testing.T) string {
	capt := synth.NewCapture(synth.LinkEthernet)
	srv := netip.MustParseAddrPort("198.51.100.25:25")
	for i := 0; i < 40; i++ {
		cli := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), uint16(30000+i))
		c := capt.Conn(cli, srv, synth.Options{Start: synth.DefaultStart.Add(time.Duration(i%7) * 3 * time.Second)})
		c.Server("220 hi\r\n").Client(strings.Repeat("x", 3000+i*100), synth.Reorder(i%2)).Server("250 ok\r\n")
		switch i % 4 {
		case 0:
			c.Client(strings.Repeat("y", 5000), synth.Drop(1)).Close(synth.ClientSide)
		case 1:
			c.Wait(6 * time.Minute).Client("late\r\n").Reset(synth.ServerSide)
		case 2:
			c.Close(synth.ServerSide)
		case 3: // left open
		}
	}
	path := writeCapture(t, capt, "many.pcap")
	return path
}

func at(l []string, i int) string {
	if i < len(l) {
		return l[i]
	}
	return "<none>"
}

// TestStatsWhileRunning reads the statistics from another goroutine while
// the workers run (as read's progress line and sniff's --stats do); under
// -race this was a data race. The final snapshot is exact and the same for
// any worker count.
func TestStatsWhileRunning(t *testing.T) {
	capt := synth.NewCapture(synth.LinkEthernet)
	srv := netip.MustParseAddrPort("198.51.100.25:25")
	for i := 0; i < 60; i++ {
		cli := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), uint16(30000+i))
		capt.Conn(cli, srv, synth.Options{Start: synth.DefaultStart.Add(time.Duration(i) * time.Millisecond)}).
			Server("220 hi\r\n").Client(strings.Repeat("x", 5000)).Server("250 ok\r\n").Close(synth.ClientSide)
	}
	path := writeCapture(t, capt, "stats.pcap")
	var want Stats
	for _, n := range []int{1, 3} {
		src, err := OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		e := NewParallel(Config{}, n, echoFactory, &collect{})
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			var last uint64
			for {
				s := e.Stats()
				if s.Packets < last {
					t.Errorf("packets went back from %d to %d", last, s.Packets)
				}
				last = s.Packets
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
		// Packet by packet, with progress calls as read makes them.
		err = e.Run(src, func() { e.Stats() })
		close(stop)
		<-done
		src.Close()
		if err != nil {
			t.Fatal(err)
		}
		got := e.Stats()
		if got.Conns != 60 || got.DeliveredByte != 60*(5000+8+8) {
			t.Errorf("%d workers: %+v", n, got)
		}
		if n == 1 {
			want = got
		} else if got != want {
			t.Errorf("%d workers: %+v, one worker %+v", n, got, want)
		}
	}
}

// encSink takes records encoded ahead (encodingSink), as sink.JSONL does:
// a line per record, and an error for those that say "gap", which it
// writes as such.
type encSink struct {
	out      strings.Builder
	encoders int
	mu       sync.Mutex
}

func encodeLine(dst []byte, r decode.Record) ([]byte, error) {
	l := r.(*line).Text
	if strings.Contains(l, "gap") {
		return dst, fmt.Errorf("cannot encode %q", l)
	}
	return append(append(dst, l...), '\n'), nil
}

func (s *encSink) Emit(r decode.Record) { s.EmitEncoded(encodeLine(nil, r)) }

func (s *encSink) RecordEncoder() func(dst []byte, r decode.Record) ([]byte, error) {
	s.mu.Lock()
	s.encoders++
	s.mu.Unlock()
	return encodeLine
}

func (s *encSink) EmitEncoded(b []byte, err error) {
	if err != nil {
		fmt.Fprintf(&s.out, "error: %v\n", err)
		return
	}
	s.out.Write(b)
}

// TestParallelEncoded: with an output that takes encoded records, the
// workers encode and the merger writes their bytes, errors in their place,
// the same as one worker's Emit.
func TestParallelEncoded(t *testing.T) {
	path := interleavedCapture(t)
	run := func(n int) *encSink {
		src, err := OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		out := &encSink{}
		if err := NewParallel(Config{}, n, echoFactory, out).Run(src, nil); err != nil {
			t.Fatal(err)
		}
		return out
	}
	one := run(1)
	if !strings.Contains(one.out.String(), "error: cannot encode") || strings.Count(one.out.String(), "\n") < 200 {
		t.Fatalf("one worker wrote %q", one.out.String())
	}
	for _, n := range []int{2, 3} {
		got := run(n)
		if got.encoders != n {
			t.Errorf("%d workers: %d encoders", n, got.encoders)
		}
		if got.out.String() != one.out.String() {
			t.Errorf("%d workers wrote\n%s\none worker\n%s", n, got.out.String(), one.out.String())
		}
	}
}

// slowEcho is echo that takes its time over every Data (20 µs: a sleep
// would take much longer).
type slowEcho struct{ echo }

func (e *slowEcho) Data(d decode.Direction, p []byte, ts time.Time) {
	for t0 := time.Now(); time.Since(t0) < 20*time.Microsecond; {
	}
	e.echo.Data(d, p, ts)
}

// TestParallelBatchesBounded: when the workers are slower than the
// reader, the reader waits for a batch to come back rather than making
// more: the copied packets queued stay within batchesPerWorker batches per
// worker.
func TestParallelBatchesBounded(t *testing.T) {
	capt := synth.NewCapture(synth.LinkEthernet)
	srv := netip.MustParseAddrPort("198.51.100.25:25")
	for i := 0; i < 20; i++ {
		cli := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), uint16(30000+i))
		capt.Conn(cli, srv, synth.Options{Start: synth.DefaultStart.Add(time.Duration(i) * time.Millisecond)}).
			Server("220 hi\r\n").Client(strings.Repeat("x", 700<<10)).Server("250 ok\r\n").Close(synth.ClientSide)
	}
	path := writeCapture(t, capt, "big.pcap")
	src := openCapture(t, path)
	slow := func(s decode.Sink) Factory {
		return FactoryFunc(func(c decode.ConnInfo) decode.Decoder { return &slowEcho{echo{c: c, s: s}} })
	}
	const n = 2
	e := NewParallel(Config{}, n, slow, &collect{})
	if err := e.Run(src, nil); err != nil {
		t.Fatal(err)
	}
	if s := e.Stats(); s.DeliveredByte < 20*700<<10 || s.PayloadBytes < 2*n*batchesPerWorker*batchBytes {
		t.Fatalf("too little went through: %+v", s)
	}
	if e.set.made > n*batchesPerWorker {
		t.Errorf("%d batches made, want at most %d", e.set.made, n*batchesPerWorker)
	}
}
