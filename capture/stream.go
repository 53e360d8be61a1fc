package capture

import (
	"sort"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/reassembly"

	"github.com/mailtap/mailtap/decode"
)

type streamFactory struct{ w *worker }

// New implements reassembly.StreamFactory. The synthetic flow carries our
// connection's uid (see conn.flow).
func (f streamFactory) New(netFlow, _ gopacket.Flow, _ *layers.TCP, _ reassembly.AssemblerContext) reassembly.Stream {
	src := netFlow.Src().Raw()
	s := &stream{w: f.w}
	s.c = f.w.current
	if len(src) == 16 && src[15] == 'c' {
		s.firstDir = decode.ClientToServer
	} else {
		s.firstDir = decode.ServerToClient
	}
	return s
}

// stream adapts gopacket's Stream callbacks to a decode.Decoder.
// invalidSequence mirrors gopacket's unexported marker for "no start yet".
const invalidSequence reassembly.Sequence = -1

type stream struct {
	w        *worker
	c        *conn
	firstDir decode.Direction
}

func (s *stream) dir(d reassembly.TCPFlowDirection) decode.Direction {
	if d == reassembly.TCPDirClientToServer {
		return s.firstDir
	}
	return s.firstDir.Reverse()
}

// Accept takes every segment (checksums were handled before) and forces
// the start of a half-connection whose SYN was not captured, so captures
// that begin mid-connection still decode.
func (s *stream) Accept(t *layers.TCP, _ gopacket.CaptureInfo, d reassembly.TCPFlowDirection, nextSeq reassembly.Sequence, start *bool, _ reassembly.AssemblerContext) bool {
	if nextSeq == invalidSequence && !t.SYN {
		*start = true
	}
	if c := s.c; c != nil && nextSeq != invalidSequence {
		// Remember whether this half now waits behind a hole, and where
		// the hole starts, for the peer's ACKs to confirm (see
		// conn.holeAcked).
		dir := s.dir(d)
		gap := reassembly.Sequence(t.Seq).Difference(nextSeq) < 0 && len(t.Payload) > 0
		if gap {
			c.holeAt[dir], c.waiting[dir] = nextSeq, true
		} else if reassembly.Sequence(t.Seq) == nextSeq {
			c.waiting[dir] = false
		}
	}
	return true
}

func (s *stream) ReassembledSG(sg reassembly.ScatterGather, _ reassembly.AssemblerContext) {
	c := s.c
	if c == nil || c.done {
		return
	}
	d, _, _, skip := sg.Info()
	dir := s.dir(d)
	length, _ := sg.Lengths()
	ts := sg.CaptureInfo(0).Timestamp
	if skip > 0 {
		s.w.stats.Gaps++
		s.w.stats.GapBytes += uint64(skip)
	}
	var data []byte
	if length > 0 {
		data = sg.Fetch(length)
		s.w.stats.DeliveredByte += uint64(length)
		if s.w.deferring {
			// The ScatterGather bytes are reused after this callback.
			data = append([]byte(nil), data...)
		}
	}
	if !s.w.deferring {
		// The common case, without the closure (one allocation per segment).
		c.feed(dir, skip, data, ts)
		s.w.delivered(c)
		return
	}
	s.w.deliver(c, func() { c.feed(dir, skip, data, ts) })
}

func (c *conn) feed(dir decode.Direction, skip int, data []byte, ts time.Time) {
	if skip > 0 {
		c.dec.Gap(dir, skip, ts)
	}
	if len(data) > 0 {
		c.dec.Data(dir, data, ts)
	}
}

func (s *stream) ReassemblyComplete(_ reassembly.AssemblerContext) bool {
	c := s.c
	if c == nil || c.done {
		return true
	}
	reason := s.w.closing
	switch {
	case c.rst:
		reason = decode.CloseRST
	case c.finC || c.finS:
		reason = decode.CloseFIN
	}
	s.w.deliver(c, func() { s.w.finish(c, reason) })
	return true
}

// deliver runs fn now, or queues it while a flush is in progress, so that
// connections flushed together reach their decoders in a deterministic
// order (gopacket walks a map).
func (w *worker) deliver(c *conn, fn func()) {
	if !w.deferring {
		fn()
		w.delivered(c)
		return
	}
	w.pending = append(w.pending, pendingCall{id: c.info.ID, seq: len(w.pending), fn: fn})
}

// delivered notes a decoder that asked to be ignored after a delivery.
func (w *worker) delivered(c *conn) {
	if c.ignorer != nil && !c.ignored && c.ignorer.Ignored() {
		c.ignored = true
	}
}

type pendingCall struct {
	id  uint64 // session id: the same order whatever the worker count
	seq int
	fn  func()
}

// flushWith runs a gopacket flush with deferred delivery, then runs the
// queued callbacks ordered by session, each session's in its own order.
func (w *worker) flushWith(phase uint8, flush func()) {
	w.deferring = true
	flush()
	w.deferring = false
	p := w.pending
	w.pending = nil
	sort.SliceStable(p, func(i, j int) bool { return p[i].id < p[j].id })
	for _, pc := range p {
		if w.mark != nil {
			w.mark(phase, pc.id)
		}
		pc.fn()
	}
}

func sortConns(cs []*conn) {
	sort.Slice(cs, func(i, j int) bool { return cs[i].info.ID < cs[j].info.ID })
}
