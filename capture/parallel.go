package capture

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/mailtap/mailtap/decode"
)

// newWorkerSet returns n workers whose decoders come from newFactory.
// One worker runs inline, on the caller's goroutine, emitting to out
// directly (out may then be nil: the factory's decoders have their sink).
// Several each run on their own goroutine, their records keyed and merged
// into out.
func newWorkerSet(cfg Config, n int, newFactory func(decode.Sink) Factory, out decode.Sink) *workerSet {
	p := &workerSet{out: out, seed: maphash.MakeSeed(), inline: n == 1}
	if p.inline {
		p.ws = []*pworker{{w: newWorker(cfg, newFactory(out))}}
		return p
	}
	// MaxConns bounds the whole set: each worker tracks its share (the
	// flow hash spreads connections evenly).
	cfg.MaxConns = max(1, cfg.MaxConns/n)
	for i := 0; i < n; i++ {
		col := &collector{}
		w := newWorker(cfg, newFactory(col))
		w.mark = col.mark
		p.ws = append(p.ws, &pworker{w: w, col: col, in: make(chan *batch, 4), free: make(chan *batch, 8)})
	}
	p.results = make(chan result, 4*n)
	return p
}

// A batch handed to a worker holds at most batchSize items or batchBytes
// of payload (64 KiB loopback segments would otherwise make batches of
// 32 MiB, four of them queued per worker).
const (
	batchSize  = 512
	batchBytes = 1 << 20
)

type itemKind uint8

const (
	itemSegment itemKind = iota
	itemFlush
	itemFinish
	itemLoss
)

// item is one unit of work for a worker, with its own copy of the bytes.
type item struct {
	kind  itemKind
	frame uint64
	seg   segment
	raw   []byte // TCP header and payload, copied
	tcp   layers.TCP
	ci    gopacket.CaptureInfo
	now   time.Time
}

// key orders records: by the packet that caused them, then by flush phase
// and session, then by emission order within one worker.
type key struct {
	frame   uint64
	phase   uint8
	session uint64
	n       uint64
}

func (a key) less(b key) bool {
	switch {
	case a.frame != b.frame:
		return a.frame < b.frame
	case a.phase != b.phase:
		return a.phase < b.phase
	case a.session != b.session:
		return a.session < b.session
	}
	return a.n < b.n
}

type keyed struct {
	k key
	r decode.Record
}

// collector is a worker's sink: it keys each record.
type collector struct {
	cur  key
	recs []keyed
}

func (c *collector) Emit(r decode.Record) {
	c.cur.n++
	c.recs = append(c.recs, keyed{c.cur, r})
}

func (c *collector) mark(phase uint8, session uint64) {
	c.cur.phase, c.cur.session = phase, session
}

func (c *collector) at(frame uint64, phase uint8) {
	c.cur = key{frame: frame, phase: phase}
}

// result is what a worker reports after a batch: its records, and that it
// will never emit a record keyed below done.
type result struct {
	w    int
	recs []keyed
	done key
}

type pworker struct {
	w     *worker
	col   *collector
	in    chan *batch
	cur   *batch // being filled by the reader
	free  chan *batch
	queue []keyed // merged side: records not yet written
	done  key     // merged side: watermark
}

// workerSet is the engine's workers: one, run inline on the reader's
// goroutine, or several, each on its own goroutine fed with batches of
// copied segments, whose records a merger puts back in order. The engine
// sees one type either way: segment, flush and finish.
type workerSet struct {
	ws      []*pworker
	inline  bool
	out     decode.Sink
	seed    maphash.Seed
	results chan result
	wg      sync.WaitGroup
	merged  chan struct{}
	started bool
}

func (p *workerSet) start() {
	if p.inline || p.started {
		return
	}
	p.started = true
	for i, pw := range p.ws {
		p.wg.Add(1)
		go p.run(i, pw)
	}
	p.merged = make(chan struct{})
	go p.merge()
}

// run is a worker's loop.
func (p *workerSet) run(i int, pw *pworker) {
	defer p.wg.Done()
	for b := range pw.in {
		var last key
		for j := range b.items {
			it := &b.items[j]
			switch it.kind {
			case itemSegment:
				pw.col.at(it.frame, phasePacket)
				// Decode the TCP header again from our own copy: a
				// copied layers.TCP still points at the reader's
				// buffer for its ports (TransportFlow).
				if err := it.tcp.DecodeFromBytes(it.raw, gopacket.NilDecodeFeedback); err != nil {
					continue
				}
				it.seg.tcp = &it.tcp
				pw.w.segment(it.seg, it.ci)
				last = key{frame: it.frame, phase: phasePacket + 1}
			case itemFlush:
				pw.col.at(it.frame, phaseFlush)
				pw.w.flush(it.now)
				last = key{frame: it.frame + 1}
			case itemLoss:
				pw.w.loss()
			case itemFinish:
				pw.col.at(^uint64(0), phaseEOFFlush)
				pw.w.finishAll()
				last = key{frame: ^uint64(0), phase: 255}
			}
		}
		recs := pw.col.recs
		pw.col.recs = nil
		p.results <- result{w: i, recs: recs, done: last}
		// Nothing keeps the batch's bytes (gopacket copies what it
		// queues, decoders copy what they keep): hand it back.
		clear(b.items)
		select {
		case pw.free <- b:
		default:
		}
	}
}

// merge writes records in key order once every worker has passed them.
func (p *workerSet) merge() {
	defer close(p.merged)
	for r := range p.results {
		pw := p.ws[r.w]
		pw.queue = append(pw.queue, r.recs...)
		pw.done = r.done
		for {
			// The smallest head among workers; it may go out when every
			// other worker's watermark (or own head) is past it.
			best := -1
			for i, w := range p.ws {
				if len(w.queue) > 0 && (best < 0 || w.queue[0].k.less(p.ws[best].queue[0].k)) {
					best = i
				}
			}
			if best < 0 {
				break
			}
			k := p.ws[best].queue[0].k
			ok := true
			for i, w := range p.ws {
				if i != best && len(w.queue) == 0 && w.done.less(k) {
					ok = false
					break
				}
			}
			if !ok {
				break
			}
			p.out.Emit(p.ws[best].queue[0].r)
			p.ws[best].queue[0] = keyed{}
			p.ws[best].queue = p.ws[best].queue[1:]
		}
	}
}

func (p *workerSet) pick(seg segment) *pworker {
	if len(p.ws) == 1 {
		return p.ws[0]
	}
	// Symmetric: hash the two endpoints in canonical order.
	k := keyOf(seg.src, seg.dst)
	var h maphash.Hash
	h.SetSeed(p.seed)
	a, b := k.a.Addr().As16(), k.b.Addr().As16()
	h.Write(a[:])
	h.Write(b[:])
	h.WriteByte(byte(k.a.Port()))
	h.WriteByte(byte(k.a.Port() >> 8))
	h.WriteByte(byte(k.b.Port()))
	h.WriteByte(byte(k.b.Port() >> 8))
	return p.ws[h.Sum64()%uint64(len(p.ws))]
}

// batch is a unit of work for a worker: items, and one slab holding the
// bytes of all their segments. Batches are recycled through pworker.free.
type batch struct {
	items []item
	slab  []byte
}

// next returns an empty batch, recycled when one is free.
func (pw *pworker) next() *batch {
	select {
	case b := <-pw.free:
		b.items, b.slab = b.items[:0], b.slab[:0]
		return b
	default:
		return &batch{items: make([]item, 0, batchSize), slab: make([]byte, 0, batchBytes+64<<10)}
	}
}

// segment hands a parsed segment to the worker owning its connection:
// inline, at once; else a copy (its bytes belong to the reader) goes into
// the worker's batch.
func (p *workerSet) segment(seg segment, ci gopacket.CaptureInfo) {
	pw := p.pick(seg)
	if p.inline {
		pw.w.segment(seg, ci)
		return
	}
	p.start()
	if pw.cur == nil {
		pw.cur = pw.next()
	}
	n := len(seg.tcp.Contents) + len(seg.tcp.Payload)
	b := pw.cur
	if cap(b.slab)-len(b.slab) < n {
		if len(b.items) > 0 {
			p.send(pw)
			b = pw.next()
			pw.cur = b
		}
		if cap(b.slab) < n {
			b.slab = make([]byte, 0, n)
		}
	}
	it := item{kind: itemSegment, frame: seg.frame, seg: seg, ci: ci}
	off := len(b.slab)
	b.slab = append(b.slab, seg.tcp.Contents...)
	b.slab = append(b.slab, seg.tcp.Payload...)
	it.raw = b.slab[off : off+n : off+n]
	it.ci.AncillaryData = nil
	it.seg.tcp = nil
	b.items = append(b.items, it)
	if len(b.items) >= batchSize || len(b.slab) >= batchBytes {
		p.send(pw)
	}
}

func (p *workerSet) send(pw *pworker) {
	if pw.cur == nil || len(pw.cur.items) == 0 {
		return
	}
	pw.in <- pw.cur
	pw.cur = nil
}

func (p *workerSet) mark(pw *pworker, it item) {
	if pw.cur == nil {
		pw.cur = pw.next()
	}
	pw.cur.items = append(pw.cur.items, it)
}

// flush flushes every worker after packet frame (a marker in its queue
// when it runs on its own goroutine).
func (p *workerSet) flush(frame uint64, now time.Time) {
	if p.inline {
		p.ws[0].w.flush(now)
		return
	}
	p.start()
	for _, pw := range p.ws {
		p.mark(pw, item{kind: itemFlush, frame: frame, now: now})
		p.send(pw)
	}
}

// loss tells every worker, after packet frame, that the capture lost
// packets.
func (p *workerSet) loss(frame uint64) {
	if p.inline {
		p.ws[0].w.loss()
		return
	}
	p.start()
	for _, pw := range p.ws {
		p.mark(pw, item{kind: itemLoss, frame: frame})
		p.send(pw)
	}
}

// finish ends every worker and waits for the last record. The set cannot
// be used after.
func (p *workerSet) finish() {
	if p.inline {
		p.ws[0].w.finishAll()
		return
	}
	p.start()
	for _, pw := range p.ws {
		p.mark(pw, item{kind: itemFinish})
		p.send(pw)
		close(pw.in)
	}
	p.wg.Wait()
	close(p.results)
	<-p.merged
}
