package capture

import (
	"bytes"
	"math"
	"slices"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/reassembly"

	"github.com/mailtap/mailtap/decode"
)

// Overlapping segments (docs/design.md, "Overlapping segments"): the first
// copy of each byte captured wins, and an overlap that carries different
// bytes is the session anomaly overlap_inconsistent.
//
// gopacket's assembler keeps the first copy of bytes it has delivered, but
// a segment that overlaps bytes it holds out of order overwrites them. So
// each half remembers the ranges it has handed to gopacket (a short sorted
// list) and a segment goes on without the bytes already seen, in pieces:
// gopacket never sees an overlap with bytes it still holds. To tell
// whether an overlap differs, the half also keeps the bytes of those
// ranges while they may come again: out-of-order ones until gopacket
// delivers them and delivered ones until the peer acknowledges them,
// bounded per half (keepPerHalf) and per worker (Config.MaxOverlapBytes).
// Past those bounds a range is still honoured but not compared.
//
// Read from a capture file, the kept bytes need not be copied: each
// packet's payload is still in the file, so a half can keep, instead of
// the bytes, where they lie in it (a ref per segment, ref mode), and read
// them back (ReadAt) only if a later segment overlaps them, which clean
// traffic never does. A span leaves ref mode, its bytes read back into a
// buffer, when it must have them (an overlap to compare, a join), when a
// segment comes without a file offset (reassembled from IPv4 fragments),
// or when it holds maxRefs refs (tiny segments acknowledged late); it can
// go back once its buffer is empty. If the file cannot give the bytes
// back (cut short since), they are dropped, as past the bounds: not
// compared. The copies were 3-5 % of the CPU time of read on the
// real-traffic load captures (docs/performance.md).

const (
	// maxSpans bounds the ranges tracked per half; a range past it
	// (a half full of holes) is not tracked: gopacket's own rule applies
	// to it, and it is not compared.
	maxSpans = 32
	// keepPerHalf bounds the bytes kept per half for comparison.
	keepPerHalf = 64 << 10
	// Buffers of kept bytes are recycled by each worker (most are
	// released when the peer acknowledges, a packet later): at least
	// minBuf bytes, at most maxPooledBuf each and maxPooledBytes in all.
	minBuf         = 2 << 10
	maxPooledBuf   = 2 * keepPerHalf
	maxPooledBytes = 1 << 20
	// maxRefs bounds a span's refs (and so what reading it back costs).
	maxRefs = 64
	// maxPooledRefs bounds the ref slices a worker recycles.
	maxPooledRefs = 256
	// maxReadBack bounds the stretch of the file read at once to read a
	// span's refs back.
	maxReadBack = 256 << 10
)

// ref is where some kept bytes lie in the capture file.
type ref struct {
	off int64
	n   int
}

// span is a range of sequence numbers handed to gopacket.
type span struct {
	s, e reassembly.Sequence
	b    []byte // the last len(b) bytes of [s, e), kept for comparison
	// base is b's whole buffer (length 0): b slides forward in it as
	// bytes are dropped, and moves back to its start when an append
	// would outgrow it, instead of growing a new buffer.
	base []byte
	// refs, when not nil (ref mode; b and base are then nil), say where
	// the kept bytes, rn of them, lie in the capture file, in order.
	refs []ref
	rn   int
}

// kn is the number of bytes sp keeps.
func (sp *span) kn() int { return len(sp.b) + sp.rn }

// keep appends p to sp's kept bytes. When b's buffer has no room left at
// its end but has at its start, b moves to the start, if it fills at most
// half the buffer: then at least as many bytes were dropped since b last
// moved as move now, and every byte is moved at most once on average.
// Else the buffer grows (to twice what it holds, at most maxPooledBuf,
// where it moves whatever it holds): a half that keeps its 64 KiB in a
// buffer just larger moved them for nearly every segment (load-mtu.pcap
// moved 683 MB to keep 229 MB).
func (w *worker) keep(sp *span, p []byte) {
	if need := len(sp.b) + len(p); need > cap(sp.b) {
		if need <= cap(sp.base) && (2*need <= cap(sp.base) || cap(sp.base) >= maxPooledBuf) {
			sp.b = append(sp.base[:0], sp.b...)
		} else {
			nb := append(w.getBuf(2*need), sp.b...)
			w.putBuf(sp.base)
			sp.b, sp.base = nb, nb[:0]
		}
	}
	sp.b = append(sp.b, p...)
}

// releaseSpan gives sp's buffer or refs back to the worker's pools.
func (w *worker) releaseSpan(sp *span) {
	w.putBuf(sp.base)
	sp.b, sp.base = nil, nil
	w.putRefs(sp.refs)
	sp.refs, sp.rn = nil, 0
}

// addRef appends to sp, in ref mode, the n bytes at off in the file.
func (sp *span) addRef(off int64, n int) {
	if k := len(sp.refs) - 1; k >= 0 && sp.refs[k].off+int64(sp.refs[k].n) == off {
		sp.refs[k].n += n
	} else {
		sp.refs = append(sp.refs, ref{off, n})
	}
	sp.rn += n
}

// materialize takes sp out of ref mode: its bytes are read back from the
// file into a buffer. Those the file cannot give back are dropped.
func (w *worker) materialize(h *seenHalf, sp *span) {
	if sp.refs == nil {
		return
	}
	w.readBack++
	b := w.getBuf(sp.rn)
	if cap(b) < sp.rn {
		b = make([]byte, 0, sp.rn)
	}
	lo, hi := int64(math.MaxInt64), int64(0)
	for _, r := range sp.refs {
		lo, hi = min(lo, r.off), max(hi, r.off+int64(r.n))
	}
	if len(sp.refs) > 1 && hi-lo <= maxReadBack {
		// the packets lie near each other in the file (small
		// segments): one read for all of them
		w.readBuf = slices.Grow(w.readBuf[:0], int(hi-lo))[:hi-lo]
		if n, _ := w.file.ReadAt(w.readBuf, lo); int64(n) == hi-lo {
			for _, r := range sp.refs {
				b = append(b, w.readBuf[r.off-lo:][:r.n]...)
			}
		}
	} else {
		for _, r := range sp.refs {
			k := len(b)
			b = b[:k+r.n]
			if n, _ := w.file.ReadAt(b[k:], r.off); n != r.n {
				b = b[:0]
				break
			}
		}
	}
	if len(b) != sp.rn {
		b = b[:0]
	}
	w.addKept(h, len(b)-sp.rn)
	w.putRefs(sp.refs)
	sp.refs, sp.rn = nil, 0
	sp.b, sp.base = b, b[:0]
}

func (w *worker) getRefs() []ref {
	if k := len(w.refBufs) - 1; k >= 0 {
		r := w.refBufs[k]
		w.refBufs = w.refBufs[:k]
		return r
	}
	return make([]ref, 0, 4)
}

func (w *worker) putRefs(r []ref) {
	if r != nil && len(w.refBufs) < maxPooledRefs {
		w.refBufs = append(w.refBufs, r[:0])
	}
}

// cut drops sp's first n kept bytes. A short rest moves to the start of
// the buffer; a long one is sliced (moving it at every acknowledgement
// would copy a window per packet): keep moves it when room runs out.
func (sp *span) cut(n int) {
	if sp.refs != nil {
		sp.rn -= n
		k := 0
		for n > 0 {
			if r := &sp.refs[k]; r.n <= n {
				n -= r.n
				k++
			} else {
				r.off += int64(n)
				r.n -= n
				n = 0
			}
		}
		sp.refs = append(sp.refs[:0], sp.refs[k:]...)
		return
	}
	rest := len(sp.b) - n
	if rest <= n || rest <= minBuf {
		sp.b = append(sp.base[:0], sp.b[n:]...)
		return
	}
	sp.b = sp.b[n:]
}

// seenHalf is what one half of a connection has handed to gopacket.
// (Held in conn by value, its first span inline: a connection costs no
// allocation until its halves go out of order.)
type seenHalf struct {
	used   bool    // the half has carried payload: the rest is set
	inline [1]span // spans' first backing array
	spans  []span  // sorted, disjoint, not adjacent unless kept apart by b
	// next is gopacket's next expected sequence number as its last
	// Accept call told (invalidSequence before the first). gopacket drops
	// bytes below it itself, keeping the first copy.
	next reassembly.Sequence
	kept int // bytes in spans' b
}

// before reports a < b in sequence space.
func before(a, b reassembly.Sequence) bool { return a.Difference(b) > 0 }

func seqMax(a, b reassembly.Sequence) reassembly.Sequence {
	if before(a, b) {
		return b
	}
	return a
}

func seqMin(a, b reassembly.Sequence) reassembly.Sequence {
	if before(a, b) {
		return a
	}
	return b
}

// differs reports whether p, at sequence s, overlaps kept bytes of h that
// are not the same.
func (w *worker) differs(h *seenHalf, s reassembly.Sequence, p []byte) bool {
	e := s.Add(len(p))
	for i := range h.spans {
		sp := &h.spans[i]
		if !before(s, sp.e) {
			continue
		}
		if !before(sp.s, e) {
			break
		}
		bs := sp.e.Add(-sp.kn())
		a, z := seqMax(s, bs), seqMin(e, sp.e)
		if !before(a, z) {
			continue
		}
		if sp.refs != nil {
			w.materialize(h, sp)
			bs = sp.e.Add(-len(sp.b))
			if a = seqMax(s, bs); !before(a, z) {
				continue
			}
		}
		n := a.Difference(z)
		if !bytes.Equal(p[s.Difference(a):][:n], sp.b[bs.Difference(a):][:n]) {
			return true
		}
	}
	return false
}

// uncovered appends to out the parts of [s, e) no span covers, in order.
func (h *seenHalf) uncovered(s, e reassembly.Sequence, out [][2]reassembly.Sequence) [][2]reassembly.Sequence {
	cur := s
	for _, sp := range h.spans {
		if !before(cur, sp.e) {
			continue
		}
		if !before(sp.s, e) {
			break
		}
		if before(cur, sp.s) {
			out = append(out, [2]reassembly.Sequence{cur, sp.s})
		}
		cur = sp.e
		if !before(cur, e) {
			return out
		}
	}
	if before(cur, e) {
		out = append(out, [2]reassembly.Sequence{cur, e})
	}
	return out
}

// assemble hands a segment of c's half side to gopacket, without the
// bytes that half has already handed over (the first copy wins), and
// notes overlaps with different bytes and data on a SYN.
//
// off is where the payload lies in the capture file, or -1.
func (w *worker) assemble(c *conn, side decode.Direction, fromFirst bool, t *layers.TCP, ctx *assemblerCtx, off int64) {
	flow := c.flow(fromFirst)
	if t.SYN && len(t.Payload) > 0 {
		c.note(noteDataOnSYN)
	}
	if len(t.Payload) == 0 || t.RST {
		w.asm.AssembleWithContext(flow, t, ctx)
		return
	}
	h := &c.halves[side]
	if !h.used {
		h.used, h.next = true, invalidSequence
		h.spans = h.inline[:0]
	}
	s := reassembly.Sequence(t.Seq)
	if t.SYN {
		s = s.Add(1)
	}
	e := s.Add(len(t.Payload))
	if w.differs(h, s, t.Payload) {
		c.note(noteOverlap)
	}
	pieces := h.uncovered(s, e, w.pieces[:0])
	w.pieces = pieces[:0]
	if t.SYN || len(pieces) == 1 && pieces[0] == [2]reassembly.Sequence{s, e} {
		// Nothing seen before (or a SYN, whose data gopacket takes only
		// whole, as the stream's start).
		w.asm.AssembleWithContext(flow, t, ctx)
		w.record(h, s, e, t.Payload, off)
		return
	}
	orig := *t
	for _, pc := range pieces {
		seg := orig
		seg.Seq = uint32(pc[0])
		seg.Payload = orig.Payload[s.Difference(pc[0]):s.Difference(pc[1])]
		seg.FIN = orig.FIN && pc[1] == e
		w.asm.AssembleWithContext(flow, &seg, ctx)
		poff := off
		if off >= 0 {
			poff += int64(s.Difference(pc[0]))
		}
		w.record(h, pc[0], pc[1], seg.Payload, poff)
	}
	if len(pieces) == 0 || pieces[len(pieces)-1][1] != e {
		// Every byte was seen before (or the end was): the segment's
		// flags and acknowledgement still count, at its end.
		seg := orig
		seg.Seq, seg.Payload = uint32(e), nil
		w.asm.AssembleWithContext(flow, &seg, ctx)
	}
}

// record adds [s, e), whose bytes are p, at off in the capture file (or
// -1), to h's spans.
func (w *worker) record(h *seenHalf, s, e reassembly.Sequence, p []byte, off int64) {
	keep := w.kept+len(p) <= w.cfg.MaxOverlapBytes
	i := 0
	for i < len(h.spans) && before(h.spans[i].e, s) {
		i++
	}
	if i < len(h.spans) && h.spans[i].e == s {
		// The common case: right after the previous bytes.
		l := &h.spans[i]
		if keep && off >= 0 && len(l.b) == 0 && len(l.refs) < maxRefs {
			// ref mode (see the top of this file)
			if l.refs == nil {
				w.releaseSpan(l)
				l.refs = w.getRefs()
			}
			if len(h.spans) == 1 {
				if over := l.rn + len(p) - keepPerHalf; over >= l.rn {
					w.addKept(h, -l.rn)
					skip := over - l.rn
					p, off = p[skip:], off+int64(skip)
					l.refs, l.rn = l.refs[:0], 0
				} else if over > 0 {
					l.cut(over)
					w.addKept(h, -over)
				}
			}
			l.addRef(off, len(p))
			w.addKept(h, len(p))
		} else if keep {
			w.materialize(h, l)
			if l.base == nil {
				l.b = w.getBuf(len(p))
				l.base = l.b
			}
			if len(h.spans) == 1 {
				// In order: drop now what keepPerHalf would drop
				// after the append, so that the buffer need not
				// grow (64 KiB loopback segments would otherwise
				// reallocate it at every segment).
				if over := len(l.b) + len(p) - keepPerHalf; over >= len(l.b) {
					w.addKept(h, -len(l.b))
					p = p[over-len(l.b):]
					l.b = l.base
				} else if over > 0 {
					l.cut(over)
					w.addKept(h, -over)
				}
			}
			w.keep(l, p)
			w.addKept(h, len(p))
		} else {
			w.addKept(h, -l.kn())
			w.releaseSpan(l)
		}
		l.e = e
		if i+1 < len(h.spans) && h.spans[i+1].s == e {
			w.join(h, i)
		}
	} else {
		if len(h.spans) >= maxSpans {
			if len(h.spans) == 0 || h.next == invalidSequence || before(h.next, h.spans[0].e) {
				return // not tracked (see maxSpans)
			}
			w.addKept(h, -h.spans[0].kn())
			w.releaseSpan(&h.spans[0])
			h.spans = append(h.spans[:0], h.spans[1:]...)
			if i > 0 {
				i--
			}
		}
		n := span{s: s, e: e}
		if keep && off >= 0 {
			n.refs = w.getRefs()
			n.addRef(off, len(p))
			w.addKept(h, len(p))
		} else if keep {
			n.base = w.getBuf(len(p))
			n.b = append(n.base, p...)
			w.addKept(h, len(p))
		}
		h.spans = append(h.spans, span{})
		copy(h.spans[i+1:], h.spans[i:])
		h.spans[i] = n
		if i+1 < len(h.spans) && h.spans[i+1].s == e {
			w.join(h, i)
		}
	}
	for h.kept > keepPerHalf {
		w.dropFront(h, h.kept-keepPerHalf)
	}
}

// join merges span i+1 into span i (adjacent). The merged span keeps the
// bytes that end it: both spans' when the later one's are whole.
func (w *worker) join(h *seenHalf, i int) {
	w.materialize(h, &h.spans[i])
	w.materialize(h, &h.spans[i+1])
	l, r := &h.spans[i], h.spans[i+1]
	if len(r.b) == r.s.Difference(r.e) && l.b != nil {
		w.keep(l, r.b)
		w.releaseSpan(&r)
	} else {
		w.addKept(h, -len(l.b))
		w.releaseSpan(l)
		l.b, l.base = r.b, r.base
	}
	l.e = r.e
	h.spans = append(h.spans[:i+1], h.spans[i+2:]...)
}

// dropFront drops up to n kept bytes from the front of the lowest span
// that has any; a span below gopacket's next sequence number left
// without bytes is forgotten (gopacket keeps the first copy there).
func (w *worker) dropFront(h *seenHalf, n int) {
	for i := range h.spans {
		sp := &h.spans[i]
		if sp.kn() == 0 {
			continue
		}
		k := min(n, sp.kn())
		sp.cut(k)
		w.addKept(h, -k)
		if sp.kn() == 0 {
			w.releaseSpan(sp)
			if h.next != invalidSequence && !before(h.next, sp.e) {
				h.spans = append(h.spans[:i], h.spans[i+1:]...)
			}
		}
		return
	}
}

// acked forgets what h's peer acknowledged up to ack and gopacket has
// delivered: it is not sent again but by mistake, and gopacket keeps the
// first copy of it.
func (w *worker) acked(h *seenHalf, ack reassembly.Sequence) {
	if !h.used || h.next == invalidSequence || len(h.spans) == 0 {
		return
	}
	lim := seqMin(ack, h.next)
	drop := 0
	for drop < len(h.spans) && !before(lim, h.spans[drop].e) {
		w.addKept(h, -h.spans[drop].kn())
		w.releaseSpan(&h.spans[drop])
		drop++
	}
	if drop > 0 {
		h.spans = append(h.spans[:0], h.spans[drop:]...)
	}
	if len(h.spans) > 0 && before(h.spans[0].s, lim) {
		sp := &h.spans[0]
		sp.s = lim
		if n := sp.kn() - lim.Difference(sp.e); n > 0 {
			sp.cut(n)
			w.addKept(h, -n)
		}
	}
}

func (w *worker) addKept(h *seenHalf, n int) {
	h.kept += n
	w.kept += n
}

// forget releases what c's halves keep.
func (w *worker) forget(c *conn) {
	for i := range c.halves {
		if h := &c.halves[i]; h.used {
			w.kept -= h.kept
			for k := range h.spans {
				w.releaseSpan(&h.spans[k])
			}
			c.halves[i] = seenHalf{}
		}
	}
}

// getBuf returns an empty buffer for at least n bytes, recycled when it
// can be.
func (w *worker) getBuf(n int) []byte {
	n = min(n, maxPooledBuf)
	// one of the last few recycled that is large enough
	for k := len(w.bufs) - 1; k >= 0 && k >= len(w.bufs)-4; k-- {
		if b := w.bufs[k]; cap(b) >= n {
			last := len(w.bufs) - 1
			w.bufs[k] = w.bufs[last]
			w.bufs[last] = nil
			w.bufs = w.bufs[:last]
			w.pooled -= cap(b)
			return b
		}
	}
	return make([]byte, 0, max(n, minBuf))
}

// putBuf recycles b, which its owner no longer uses.
func (w *worker) putBuf(b []byte) {
	if c := cap(b); c >= minBuf && c <= maxPooledBuf && w.pooled+c <= maxPooledBytes {
		w.bufs = append(w.bufs, b[:0])
		w.pooled += c
	}
}

// Anomalies capture finds in the TCP stream, noted once per connection.
const (
	noteOverlap uint8 = 1 << iota
	noteDataOnSYN
)

// note tells c's decoder of an anomaly of the TCP stream, once.
func (c *conn) note(n uint8) {
	if c.noted&n != 0 || c.done {
		return
	}
	c.noted |= n
	r, ok := c.dec.(decode.AnomalyRecorder)
	if !ok {
		return
	}
	switch n {
	case noteOverlap:
		r.Anomaly(decode.AnomalyOverlapInconsistent)
	case noteDataOnSYN:
		r.Anomaly(decode.AnomalyDataOnSYN)
	}
}
