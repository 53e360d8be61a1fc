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
	if s.c != nil {
		s.c.stream = s
	}
	f.w.streams++
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
	firstDir decode.Direction // side of the half gopacket saw first
	complete bool             // gopacket closed both halves and dropped the connection
}

// side is the half of gopacket's direction d: ClientToServer for the half
// sent by conn.first. The decoder's direction is conn.dir(side).
func (s *stream) side(d reassembly.TCPFlowDirection) decode.Direction {
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
	if c := s.c; c != nil {
		if h := &c.halves[s.side(d)]; h.used {
			h.next = nextSeq // for overlap.go
		}
	}
	if c := s.c; c != nil && nextSeq != invalidSequence {
		// Remember whether this half now waits behind a hole, and where
		// the hole starts, for the peer's ACKs to confirm (see
		// conn.holeAcked).
		dir := s.side(d)
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
	side := s.side(d)
	length, _ := sg.Lengths()
	// The time of the first chunk's packet, which is not necessarily the
	// packet being assembled, even when sg holds a single chunk of a
	// single packet: when a half's page limit is reached, gopacket queues
	// that packet and hands over the oldest page, an earlier packet's.
	ts := sg.CaptureInfo(0).Timestamp
	if skip > 0 {
		s.w.stats.Gaps.Add(1)
		s.w.stats.GapBytes.Add(uint64(skip))
	}
	var data []byte
	if length > 0 {
		data = sg.Fetch(length)
		s.w.stats.DeliveredByte.Add(uint64(length))
		if s.w.deferring {
			// The ScatterGather bytes are reused after this callback.
			data = append([]byte(nil), data...)
		}
	}
	if !s.w.deferring {
		// The common case, without the closure (one allocation per segment).
		c.feed(side, skip, data, ts)
		c.after()
		return
	}
	s.w.deliver(c, func() { c.feed(side, skip, data, ts) })
}

// feed hands bytes to the decoder. The direction is taken when the bytes
// reach the decoder: an earlier delivery may have swapped the roles.
func (c *conn) feed(side decode.Direction, skip int, data []byte, ts time.Time) {
	if c.done {
		return
	}
	dir := c.dir(side)
	if skip > 0 {
		c.dec.Gap(dir, skip, ts)
	}
	if len(data) > 0 {
		c.dec.Data(dir, data, ts)
	}
}

func (s *stream) ReassemblyComplete(_ reassembly.AssemblerContext) bool {
	if !s.complete {
		s.complete = true
		s.w.streams--
	}
	c := s.c
	if c != nil && c.stream == s {
		c.stream = nil
	}
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
		c.after()
		return
	}
	w.pending = append(w.pending, pendingCall{c: c, seq: len(w.pending), fn: fn})
}

// after takes note of what the decoder learnt in a call: that it wants no
// more bytes, or that the roles are reversed.
func (c *conn) after() {
	if c.ignorer != nil && !c.ignored && c.ignorer.Ignored() {
		c.ignored = true
	}
	c.checkSwap()
}

type pendingCall struct {
	c   *conn // ordered by session id: the same order whatever the worker count
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
	sort.SliceStable(p, func(i, j int) bool { return p[i].c.info.ID < p[j].c.info.ID })
	for _, pc := range p {
		if w.mark != nil {
			w.mark(phase, pc.c.info.ID)
		}
		pc.fn()
		pc.c.after()
	}
}

func sortConns(cs []*conn) {
	sort.Slice(cs, func(i, j int) bool { return cs[i].info.ID < cs[j].info.ID })
}
