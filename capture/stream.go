package capture

import (
	"sort"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/reassembly"

	"github.com/mailtap/mailtap/decode"
)

type streamFactory struct{ e *Engine }

// New implements reassembly.StreamFactory. The synthetic flow carries our
// connection's uid (see conn.flow).
func (f streamFactory) New(netFlow, _ gopacket.Flow, _ *layers.TCP, _ reassembly.AssemblerContext) reassembly.Stream {
	src := netFlow.Src().Raw()
	s := &stream{e: f.e}
	s.c = f.e.current
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
	e        *Engine
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
func (s *stream) Accept(t *layers.TCP, _ gopacket.CaptureInfo, _ reassembly.TCPFlowDirection, nextSeq reassembly.Sequence, start *bool, _ reassembly.AssemblerContext) bool {
	if nextSeq == invalidSequence && !t.SYN {
		*start = true
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
		s.e.stats.Gaps++
		s.e.stats.GapBytes += uint64(skip)
	}
	var data []byte
	if length > 0 {
		data = sg.Fetch(length)
		s.e.stats.DeliveredByte += uint64(length)
		if s.e.deferring {
			// The ScatterGather bytes are reused after this callback.
			data = append([]byte(nil), data...)
		}
	}
	s.e.deliver(c, func() {
		if skip > 0 {
			c.dec.Gap(dir, skip, ts)
		}
		if len(data) > 0 {
			c.dec.Data(dir, data, ts)
		}
	})
}

func (s *stream) ReassemblyComplete(_ reassembly.AssemblerContext) bool {
	c := s.c
	if c == nil || c.done {
		return true
	}
	reason := s.e.closing
	switch {
	case c.rst:
		reason = decode.CloseRST
	case c.finC || c.finS:
		reason = decode.CloseFIN
	}
	s.e.deliver(c, func() { s.e.finish(c, reason) })
	return true
}

// deliver runs fn now, or queues it while a flush is in progress, so that
// connections flushed together reach their decoders in a deterministic
// order (gopacket walks a map).
func (e *Engine) deliver(c *conn, fn func()) {
	if !e.deferring {
		fn()
		if c.ignorer != nil && !c.ignored && c.ignorer.Ignored() {
			c.ignored = true
		}
		return
	}
	e.pending = append(e.pending, pendingCall{uid: c.uid, seq: len(e.pending), fn: fn})
}

type pendingCall struct {
	uid uint64
	seq int
	fn  func()
}

// runPending executes queued callbacks ordered by connection, keeping each
// connection's own order.
func (e *Engine) runPending() {
	p := e.pending
	e.pending = nil
	sort.SliceStable(p, func(i, j int) bool { return p[i].uid < p[j].uid })
	for _, pc := range p {
		pc.fn()
	}
}

// flushWith runs a gopacket flush with deferred delivery.
func (e *Engine) flushWith(flush func()) {
	e.deferring = true
	flush()
	e.deferring = false
	e.runPending()
}

func sortConns(cs []*conn) {
	sort.Slice(cs, func(i, j int) bool { return cs[i].uid < cs[j].uid })
}
