package capture

import (
	"encoding/binary"
	"net/netip"
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
	p := &workerSet{out: out, inline: n == 1}
	if p.inline {
		p.ws = []*pworker{{w: newWorker(cfg, newFactory(out))}}
		return p
	}
	p.enc, _ = out.(encodingSink)
	// MaxConns bounds the whole set: each worker tracks its share (the
	// flow hash spreads connections evenly).
	cfg.MaxConns = max(1, cfg.MaxConns/n)
	for i := 0; i < n; i++ {
		col := &collector{}
		if p.enc != nil {
			col.encode = p.enc.RecordEncoder()
		}
		w := newWorker(cfg, newFactory(col))
		w.mark = col.mark
		p.ws = append(p.ws, &pworker{w: w, col: col, in: make(chan *batch, n*batchesPerWorker), spare: make(chan result, 4)})
	}
	p.results = make(chan result, 4*n)
	p.free = make(chan *batch, n*batchesPerWorker)
	return p
}

// A batch handed to a worker holds at most batchSize items or batchBytes
// of payload (64 KiB loopback segments would otherwise make batches of
// 32 MiB).
//
// The workers share batchesPerWorker batches each, no more: for each
// worker one the reader fills, one queued, one being decoded, give or
// take (a slower worker may have more queued). The reader waits for one
// to come back when all are out, so what is queued stays bounded (3 MiB
// per worker) whatever the speeds. A pool shared by all workers, rather
// than one per worker, leaves the reader waiting less often while another
// worker has nothing to do.
const (
	batchSize        = 512
	batchBytes       = 1 << 20
	batchesPerWorker = 3
)

type itemKind uint8

const (
	itemSegment itemKind = iota
	itemFlush
	itemFinish
	itemLoss
)

// item is one unit of work for a worker. A segment's bytes, its TCP
// header and payload, are copied to slab[off:end] of its batch, and the
// worker decodes its layers.TCP again from them: a copied layers.TCP would
// still point at the reader's buffer for its ports (TransportFlow) and
// options. A flush, loss or finish says in seg.frame which packet it
// follows, and a flush in seg.ts its time. Items are small (128 bytes):
// the reader writes one per packet.
type item struct {
	kind     itemKind
	off, end uint32
	seg      segment // seg.tcp is nil
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

// keyed is a record with its key: the record itself, or when the output
// sink encodes ahead (encodingSink) its bytes, buf[off:end] of its result,
// or the error encoding it.
type keyed struct {
	k        key
	r        decode.Record
	off, end int
	err      error
}

// encodingSink is sink.Encoder, said again here so that capture does not
// depend on the sinks: an output whose records can be encoded by the
// workers, leaving the merger only to write bytes in order.
type encodingSink interface {
	RecordEncoder() func(dst []byte, r decode.Record) ([]byte, error)
	EmitEncoded(b []byte, err error)
}

// collector is a worker's sink: it keys each record, and encodes it when
// the output can take encoded records.
type collector struct {
	cur    key
	recs   []keyed
	encode func(dst []byte, r decode.Record) ([]byte, error) // or nil
	buf    []byte                                            // what encode made for recs
}

func (c *collector) Emit(r decode.Record) {
	c.cur.n++
	if c.encode == nil {
		c.recs = append(c.recs, keyed{k: c.cur, r: r})
		return
	}
	off := len(c.buf)
	var err error
	c.buf, err = c.encode(c.buf, r)
	c.recs = append(c.recs, keyed{k: c.cur, off: off, end: len(c.buf), err: err})
}

func (c *collector) mark(phase uint8, session uint64) {
	c.cur.phase, c.cur.session = phase, session
}

func (c *collector) at(frame uint64, phase uint8) {
	c.cur = key{frame: frame, phase: phase}
}

// result is what a worker reports after a batch: its records (and the
// bytes of those encoded), and that it will never emit a record keyed
// below done.
type result struct {
	w    int
	recs []keyed
	buf  []byte
	done key
}

// spareCap is the largest record buffer (encoded bytes) kept for reuse; the
// last batches of a run, closing every connection, can make larger ones.
const spareCap = 4 << 20

type pworker struct {
	w   *worker
	col *collector
	tcp layers.TCP // the worker's: decoded from each item's bytes
	in  chan *batch
	cur *batch // being filled by the reader
	// spare takes results back from the merger once written, for their
	// slices to be reused.
	spare chan result
	// Merger side: results with records not yet written, oldest first,
	// nextRec the index of the first of them in pending[0], and the
	// watermark.
	pending []result
	nextRec int
	done    key
}

// workerSet is the engine's workers: one, run inline on the reader's
// goroutine, or several, each on its own goroutine fed with batches of
// copied segments, whose records a merger puts back in order. The engine
// sees one type either way: segment, flush and finish.
type workerSet struct {
	ws      []*pworker
	inline  bool
	out     decode.Sink
	enc     encodingSink // out, when it takes encoded records
	results chan result
	wg      sync.WaitGroup
	merged  chan struct{}
	// The batches: made so far, and those handed back by the workers.
	made    int
	free    chan *batch
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
	col := pw.col
	for b := range pw.in {
		select {
		case r := <-pw.spare:
			col.recs, col.buf = r.recs[:0], r.buf[:0]
		default:
		}
		var last key
		for j := range b.items {
			it := &b.items[j]
			switch it.kind {
			case itemSegment:
				col.at(it.seg.frame, phasePacket)
				// The assembler copies what it keeps: one layers.TCP
				// serves every segment.
				if err := pw.tcp.DecodeFromBytes(b.slab[it.off:it.end], gopacket.NilDecodeFeedback); err != nil {
					continue
				}
				it.seg.tcp = &pw.tcp
				pw.w.segment(&it.seg)
				last = key{frame: it.seg.frame, phase: phasePacket + 1}
			case itemFlush:
				col.at(it.seg.frame, phaseFlush)
				pw.w.flush(it.seg.ts)
				last = key{frame: it.seg.frame + 1}
			case itemLoss:
				pw.w.loss()
			case itemFinish:
				col.at(^uint64(0), phaseEOFFlush)
				pw.w.finishAll()
				last = key{frame: ^uint64(0), phase: 255}
			}
		}
		p.results <- result{w: i, recs: col.recs, buf: col.buf, done: last}
		col.recs, col.buf = nil, nil
		// Nothing keeps the batch's bytes (gopacket copies what it
		// queues, decoders copy what they keep): hand it back. Its
		// items point at nothing but global data (time zones, address
		// handles), so they need no clearing.
		p.free <- b
	}
}

// merge writes records in key order once every worker has passed them.
func (p *workerSet) merge() {
	defer close(p.merged)
	for r := range p.results {
		p.take(r)
	}
}

// take merges a worker's result: it writes the records that every worker
// has now passed.
func (p *workerSet) take(r result) {
	pw := p.ws[r.w]
	pw.done = r.done
	if len(r.recs) > 0 {
		pw.pending = append(pw.pending, r)
	} else {
		p.recycle(pw, r)
	}
	for {
		// The smallest head among workers; it may go out when every
		// other worker's watermark (or own head) is past it.
		var best *pworker
		for _, w := range p.ws {
			if len(w.pending) > 0 && (best == nil || w.head().k.less(best.head().k)) {
				best = w
			}
		}
		if best == nil {
			break
		}
		k := best.head().k
		ok := true
		for _, w := range p.ws {
			if w != best && len(w.pending) == 0 && w.done.less(k) {
				ok = false
				break
			}
		}
		if !ok {
			break
		}
		p.emitHead(best)
	}
}

// head is the first record pw's merger has not written.
func (pw *pworker) head() *keyed { return &pw.pending[0].recs[pw.nextRec] }

// emitHead writes pw's head record.
func (p *workerSet) emitHead(pw *pworker) {
	r := &pw.pending[0]
	h := &r.recs[pw.nextRec]
	if p.enc != nil {
		p.enc.EmitEncoded(r.buf[h.off:h.end], h.err)
	} else {
		p.out.Emit(h.r)
	}
	pw.nextRec++
	if pw.nextRec == len(r.recs) {
		p.recycle(pw, *r)
		pw.pending[0] = result{}
		pw.pending = pw.pending[1:]
		pw.nextRec = 0
	}
}

// recycle hands a written result's slices back to its worker.
func (p *workerSet) recycle(pw *pworker, r result) {
	if cap(r.buf) > spareCap {
		r.buf = nil
	}
	clear(r.recs) // the records are written: let them go
	select {
	case pw.spare <- r:
	default:
	}
}

// pick returns the worker that owns seg's connection: a hash of its two
// endpoints that does not depend on their order (a sum), so that both
// directions meet.
func (p *workerSet) pick(seg *segment) *pworker {
	if len(p.ws) == 1 {
		return p.ws[0]
	}
	h := mix64(endpointHash(seg.src) + endpointHash(seg.dst))
	return p.ws[h%uint64(len(p.ws))]
}

// endpointHash mixes an address and port into 64 bits.
func endpointHash(e netip.AddrPort) uint64 {
	a := e.Addr().As16()
	return mix64(binary.LittleEndian.Uint64(a[:8]) ^ mix64(binary.LittleEndian.Uint64(a[8:])^uint64(e.Port())))
}

// mix64 is splitmix64's finalizer: every input bit changes about half of
// the output bits.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// batch is a unit of work for a worker: items, and one slab holding the
// bytes of all their segments. Batches are recycled through workerSet.free.
type batch struct {
	items []item
	slab  []byte
}

// next returns an empty batch: a new one while there are fewer than
// batchesPerWorker per worker, else the next a worker hands back (waiting
// for it).
func (p *workerSet) next() *batch {
	var b *batch
	if p.made < len(p.ws)*batchesPerWorker {
		select {
		case b = <-p.free:
		default:
			p.made++
			return &batch{items: make([]item, 0, batchSize), slab: make([]byte, 0, batchBytes+64<<10)}
		}
	} else {
		b = <-p.free
	}
	b.items, b.slab = b.items[:0], b.slab[:0]
	return b
}

// segment hands a parsed segment to the worker owning its connection:
// inline, at once; else a copy (its bytes belong to the reader) goes into
// the worker's batch.
func (p *workerSet) segment(seg *segment) {
	pw := p.pick(seg)
	if p.inline {
		pw.w.segment(seg)
		return
	}
	p.start()
	if pw.cur == nil {
		pw.cur = p.next()
	}
	n := len(seg.tcp.Contents) + len(seg.tcp.Payload)
	b := pw.cur
	if cap(b.slab)-len(b.slab) < n {
		if len(b.items) > 0 {
			p.send(pw)
			b = p.next()
			pw.cur = b
		}
		if cap(b.slab) < n {
			b.slab = make([]byte, 0, n)
		}
	}
	off := len(b.slab)
	b.slab = append(b.slab, seg.tcp.Contents...)
	b.slab = append(b.slab, seg.tcp.Payload...)
	b.items = append(b.items, item{kind: itemSegment, off: uint32(off), end: uint32(len(b.slab)), seg: *seg})
	b.items[len(b.items)-1].seg.tcp = nil
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
		pw.cur = p.next()
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
		p.mark(pw, item{kind: itemFlush, seg: segment{frame: frame, ts: now}})
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
		p.mark(pw, item{kind: itemLoss, seg: segment{frame: frame}})
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
