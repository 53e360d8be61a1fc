package capture

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/reassembly"

	"github.com/mailtap/mailtap/decode"
)

// Factory creates the decoder for a new connection. It is called once per
// TCP connection, with capture's guess of client and server; c is a copy
// the decoder may keep. A decoder that finds the roles reversed says so
// through decode.RoleSwapper.
type Factory interface {
	NewConn(c decode.ConnInfo) decode.Decoder
}

// FactoryFunc adapts a function to Factory.
type FactoryFunc func(c decode.ConnInfo) decode.Decoder

// NewConn calls f(c).
func (f FactoryFunc) NewConn(c decode.ConnInfo) decode.Decoder { return f(c) }

// Ignorer is implemented by decoders that can tell capture they want no
// more bytes (a connection classified as not mail). capture then drops
// the connection's packets before reassembly.
type Ignorer interface {
	Ignored() bool
}

// Config configures an Engine. The zero value is usable.
type Config struct {
	// ServerPort reports whether port is a known server port; it decides
	// which side is the server when the handshake was not captured.
	ServerPort func(port uint16) bool
	// PacketFilter, when set, drops packets for which it returns false,
	// before any parsing (a compiled --bpf expression).
	PacketFilter func(data []byte, link layers.LinkType) bool
	// Filter, when set, drops packets before reassembly unless it returns
	// true for the segment's ports.
	Filter func(srcPort, dstPort uint16) bool
	// IdleTimeout closes a connection with no packets for this long, in
	// capture time. Default 5 minutes.
	IdleTimeout time.Duration
	// FlushInterval is how often (capture time) out-of-order data older
	// than GapTimeout is pushed through and idle connections closed.
	// Default 10 s.
	FlushInterval time.Duration
	// GapTimeout: data waiting behind a hole this long is delivered with
	// a gap. Default 30 s.
	GapTimeout time.Duration
	// MaxConns bounds the connections tracked at once, by the whole
	// engine (each of N workers tracks MaxConns/N); past it the least
	// recently active connection is closed (CloseEvicted). Default
	// DefaultMaxConns.
	MaxConns int
	// MaxBufferedPagesPerConn / MaxBufferedPagesTotal bound out-of-order
	// data held by reassembly (pages of 1900 bytes). Defaults 2048 and
	// 65536 (about 4 MB per connection and 125 MB in all).
	MaxBufferedPagesPerConn int
	MaxBufferedPagesTotal   int
	// MaxOverlapBytes bounds the bytes each worker keeps to tell whether
	// overlapping segments carry the same bytes (overlap_inconsistent;
	// at most 64 KiB per direction of a connection, released as the peer
	// acknowledges them). Default 32 MiB.
	MaxOverlapBytes int
	// VerifyChecksums drops segments whose TCP checksum is wrong. By
	// default they are only counted: captures taken on the sending host
	// carry unfinished checksums (offload).
	VerifyChecksums bool
	// CountChecksums computes checksums only to count the bad ones in
	// Stats (a pass over every payload; off by default).
	CountChecksums bool
	// NextID, when set, numbers connections (ConnInfo.ID) instead of the
	// frame number of their first packet: live capture, where several
	// sockets each count their own packets. It is called from the
	// goroutines that decode, so it must be safe for concurrent use.
	NextID func() uint64
}

func (c *Config) defaults() {
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 5 * time.Minute
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 10 * time.Second
	}
	if c.GapTimeout <= 0 {
		c.GapTimeout = 30 * time.Second
	}
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.MaxBufferedPagesPerConn <= 0 {
		c.MaxBufferedPagesPerConn = 2048
	}
	if c.MaxBufferedPagesTotal <= 0 {
		c.MaxBufferedPagesTotal = 65536
	}
	if c.MaxOverlapBytes <= 0 {
		c.MaxOverlapBytes = 32 << 20
	}
	if c.ServerPort == nil {
		c.ServerPort = func(uint16) bool { return false }
	}
}

// Packet timestamps outside these are malformed (records could not carry
// them: RFC 3339 years have four digits).
var (
	minTime = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

// DefaultMaxConns is Config.MaxConns's default.
const DefaultMaxConns = 100000

// Stats counts what the engine saw: a snapshot, taken by Engine.Stats.
type Stats struct {
	Packets       uint64 `json:"packets"`
	Bytes         uint64 `json:"bytes"`
	TCP           uint64 `json:"tcp"`
	NotTCP        uint64 `json:"not_tcp"`
	UnknownLink   uint64 `json:"unknown_link"`
	Malformed     uint64 `json:"malformed"`
	Fragments     uint64 `json:"fragments"`
	BadChecksum   uint64 `json:"bad_checksum"`
	Filtered      uint64 `json:"filtered"`
	Ignored       uint64 `json:"ignored"`
	Conns         uint64 `json:"connections"`
	ConnsEvicted  uint64 `json:"connections_evicted"`
	Gaps          uint64 `json:"gaps"`
	GapBytes      uint64 `json:"gap_bytes"`
	PortReuse     uint64 `json:"port_reuse"`
	PayloadBytes  uint64 `json:"payload_bytes"`
	DeliveredByte uint64 `json:"delivered_bytes"`
}

// Add adds o to s (the statistics of several engines).
func (s *Stats) Add(o Stats) {
	s.Packets += o.Packets
	s.Bytes += o.Bytes
	s.TCP += o.TCP
	s.NotTCP += o.NotTCP
	s.UnknownLink += o.UnknownLink
	s.Malformed += o.Malformed
	s.Fragments += o.Fragments
	s.BadChecksum += o.BadChecksum
	s.Filtered += o.Filtered
	s.Ignored += o.Ignored
	s.Conns += o.Conns
	s.ConnsEvicted += o.ConnsEvicted
	s.Gaps += o.Gaps
	s.GapBytes += o.GapBytes
	s.PortReuse += o.PortReuse
	s.PayloadBytes += o.PayloadBytes
	s.DeliveredByte += o.DeliveredByte
}

// counters are the live form of Stats: written by the goroutine that owns
// them (the reader for the front end, each worker for its own), read by
// Engine.Stats from any goroutine.
type counters struct {
	Packets, Bytes, TCP, NotTCP, UnknownLink, Malformed, Fragments atomic.Uint64
	BadChecksum, Filtered, Ignored, Conns, ConnsEvicted            atomic.Uint64
	Gaps, GapBytes, PortReuse, PayloadBytes, DeliveredByte         atomic.Uint64
}

// addTo adds the counters to s.
func (c *counters) addTo(s *Stats) {
	s.Packets += c.Packets.Load()
	s.Bytes += c.Bytes.Load()
	s.TCP += c.TCP.Load()
	s.NotTCP += c.NotTCP.Load()
	s.UnknownLink += c.UnknownLink.Load()
	s.Malformed += c.Malformed.Load()
	s.Fragments += c.Fragments.Load()
	s.BadChecksum += c.BadChecksum.Load()
	s.Filtered += c.Filtered.Load()
	s.Ignored += c.Ignored.Load()
	s.Conns += c.Conns.Load()
	s.ConnsEvicted += c.ConnsEvicted.Load()
	s.Gaps += c.Gaps.Load()
	s.GapBytes += c.GapBytes.Load()
	s.PortReuse += c.PortReuse.Load()
	s.PayloadBytes += c.PayloadBytes.Load()
	s.DeliveredByte += c.DeliveredByte.Load()
}

// Engine reads packets, parses them and hands TCP segments to its worker
// set (see workerSet): each worker owns its own connections and gopacket
// assembler. With one worker everything runs on the caller's goroutine;
// with several, connections are sharded by a symmetric flow hash and
// their records merged back into the order one worker would have
// produced. Stats may be called at any time, from any goroutine.
type Engine struct {
	cfg    Config
	stats  counters // front-end counters; workers keep their own
	parser *parser
	set    *workerSet
	frame  uint64 // packets seen (the reader's own count)
	now    time.Time
	nextFl time.Time
	// dataOff is where the current packet's bytes lie in the capture
	// file that RunContext reads, or -1 (overlap.go's ref mode).
	dataOff int64
	// copyKept makes the workers copy the bytes kept for overlaps even
	// when they could read them back from the file (tests compare both).
	copyKept bool
}

// worker owns a set of connections.
type worker struct {
	cfg     Config
	factory Factory
	stats   counters
	asm     *reassembly.Assembler
	conns   map[connKey]*conn
	nextUID uint64
	now     time.Time
	closing decode.CloseReason // reason used for connections closed by a flush
	current *conn              // the connection being assembled (for streamFactory)
	last    *conn              // the connection of the previous packet, if still tracked
	streams int                // connections in gopacket's pool (streams not complete)

	// lru lists the tracked connections by last activity, least recent
	// first (a sentinel: lru.next is the oldest), so that eviction at
	// MaxConns is O(1) (it scanned the whole table for each new
	// connection: 680 new connections/s at 10k tracked).
	lru conn

	kept   int                      // bytes kept to compare overlaps (overlap.go)
	bufs   [][]byte                 // recycled buffers for them
	pooled int                      // bytes of capacity in bufs
	pieces [][2]reassembly.Sequence // scratch for assemble
	// file is the capture file, when kept bytes can be read back from it
	// (ref mode, overlap.go); refBufs recycles the refs' slices.
	file     io.ReaderAt
	refBufs  [][]ref
	readBuf  []byte // scratch for reading refs back
	readBack int    // spans taken out of ref mode (tests)

	deferring bool
	ctxs      []assemblerCtx // unused contexts of the current slab
	pending   []pendingCall
	// mark, when set, is told which connection the records emitted next
	// belong to (parallel mode keys records by it).
	mark func(phase uint8, session uint64)
}

// connKey is a 4-tuple in canonical order (smaller endpoint first).
type connKey struct{ a, b netip.AddrPort }

func keyOf(x, y netip.AddrPort) connKey {
	if x.Compare(y) > 0 {
		x, y = y, x
	}
	return connKey{x, y}
}

// conn is our view of one TCP connection; several may follow each other
// on one 4-tuple (port reuse).
type conn struct {
	w   *worker
	key connKey
	uid uint64
	// info is capture's view of the connection, the only one: decoders
	// got a copy. first is the endpoint first taken for the client; it
	// names the two halves to gopacket (see flow) and does not change
	// when the roles are swapped.
	info     decode.ConnInfo
	first    netip.AddrPort
	swapped  bool // roles exchanged since the decoder was created
	dec      decode.Decoder
	ignorer  Ignorer
	swapper  decode.RoleSwapper
	lastSeen time.Time
	// prev and next link the worker's lru list.
	prev, next *conn
	finC       bool // FIN seen from client
	finS       bool
	rst        bool
	done       bool // decoder closed
	ignored    bool
	synSeq     uint32
	hasSyn     bool
	stream     *stream   // gopacket's stream of c, until gopacket drops it
	seen       [3]bool   // per side: a segment was seen
	seq0       [3]uint32 // per side: sequence number of the first segment seen
	// Per half (indexed by side: ClientToServer is the half sent by
	// first): the half waits behind a hole starting at holeAt, and the
	// peer has acknowledged bytes past it (so the capture lost them for
	// good: do not wait for them).
	waiting  [3]bool
	holeAt   [3]reassembly.Sequence
	holeSeen [3]bool
	// halves: what each half handed to gopacket (overlap.go); noted:
	// the stream anomalies already told to the decoder.
	halves [3]seenHalf
	noted  uint8
	// flows name c's halves to gopacket: [0] the half sent by first.
	flows [2]gopacket.Flow
}

// New returns a single-worker Engine that creates decoders with f; it
// runs on the caller's goroutine.
func New(cfg Config, f Factory) *Engine {
	return NewParallel(cfg, 1, func(decode.Sink) Factory { return f }, nil)
}

// NewParallel returns an Engine that decodes with n workers (n <= 0: one
// per CPU). The caller's goroutine reads and parses packets; each worker
// owns the connections that hash to it (a symmetric hash of the 4-tuple,
// so both directions meet) with its own assembler and decoders. Records
// reach out on one goroutine, in the order a single worker would have
// produced them: every record is keyed by the packet that caused it, and
// flushes happen at the same packets whatever n is. With n == 1 the
// worker runs on the caller's goroutine and its decoders emit to out
// directly.
//
// newFactory is called once per worker with the sink its decoders must
// emit to.
func NewParallel(cfg Config, n int, newFactory func(decode.Sink) Factory, out decode.Sink) *Engine {
	cfg.defaults()
	if n <= 0 {
		n = runtime.NumCPU()
	}
	e := &Engine{cfg: cfg, dataOff: -1}
	e.parser = newParser(&e.stats, cfg.VerifyChecksums || cfg.CountChecksums)
	e.set = newWorkerSet(cfg, n, newFactory, out)
	return e
}

func newWorker(cfg Config, f Factory) *worker {
	w := &worker{cfg: cfg, factory: f, conns: make(map[connKey]*conn), closing: decode.CloseEOF}
	w.lru.prev, w.lru.next = &w.lru, &w.lru
	pool := reassembly.NewStreamPool(streamFactory{w})
	w.asm = reassembly.NewAssembler(pool)
	w.asm.MaxBufferedPagesPerConnection = cfg.MaxBufferedPagesPerConn
	w.asm.MaxBufferedPagesTotal = cfg.MaxBufferedPagesTotal
	return w
}

// Stats returns a snapshot of the counters. It is safe to call at any
// time from any goroutine, while Run or Packet are going on; each counter
// is exact, the snapshot as a whole is taken while they move.
func (e *Engine) Stats() Stats {
	var s Stats
	e.stats.addTo(&s)
	for _, pw := range e.set.ws {
		pw.w.stats.addTo(&s)
	}
	return s
}

// Run reads src to its end, then closes every open connection. A truncated
// final record is reported as ErrTruncated after everything before it was
// decoded. progress, if not nil, is called every 64k packets.
func (e *Engine) Run(src Source, progress func()) error {
	return e.RunContext(context.Background(), src, progress)
}

// RunContext is Run that also stops reading when ctx is done: the
// connections are then closed as at the end of the input (every record
// whole) and ctx's error is returned.
func (e *Engine) RunContext(ctx context.Context, src Source, progress func()) error {
	fs, _ := src.(*FileSource)
	if fs != nil && fs.fileAt() != nil && !e.copyKept {
		for _, pw := range e.set.ws {
			pw.w.file = fs.fileAt()
		}
	} else {
		fs = nil
	}
	e.set.start()
	done := ctx.Done()
	var err error
	for {
		var data []byte
		var ci gopacket.CaptureInfo
		var link layers.LinkType
		data, ci, link, err = src.ReadPacket()
		if err != nil {
			break
		}
		if fs != nil {
			e.dataOff = fs.dataOffset(len(data))
		}
		e.Packet(data, ci, link)
		if e.frame&0xff == 0 && done != nil {
			select {
			case <-done:
				err = ctx.Err()
			default:
			}
			if err != nil {
				break
			}
		}
		if progress != nil && e.frame&0xffff == 0 {
			progress()
		}
	}
	e.Finish()
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// Packet processes one packet.
func (e *Engine) Packet(data []byte, ci gopacket.CaptureInfo, link layers.LinkType) {
	e.frame++
	e.stats.Packets.Add(1)
	e.stats.Bytes.Add(uint64(len(data)))
	ts := ci.Timestamp
	if ts.After(maxTime) || ts.Before(minTime) {
		// A pcapng timestamp can say year 584,000; no record could
		// carry it (RFC 3339 has four digits for the year). Found by
		// FuzzEngine.
		e.stats.Malformed.Add(1)
		return
	}
	if ts.After(e.now) {
		e.now = ts
	}
	if e.cfg.PacketFilter != nil && !e.cfg.PacketFilter(data, link) {
		e.stats.Filtered.Add(1)
		e.schedule()
		return
	}
	if seg, ok := e.parser.parse(data, link, ts); ok {
		e.stats.TCP.Add(1)
		keep := true
		if seg.badSum {
			e.stats.BadChecksum.Add(1)
			keep = !e.cfg.VerifyChecksums
		}
		if keep && e.cfg.Filter != nil && !e.cfg.Filter(uint16(seg.tcp.SrcPort), uint16(seg.tcp.DstPort)) {
			e.stats.Filtered.Add(1)
			keep = false
		}
		if keep {
			e.stats.PayloadBytes.Add(uint64(len(seg.tcp.Payload)))
			seg.frame = e.frame
			seg.off = payloadOffset(data, seg.tcp.Payload, e.dataOff)
			e.set.segment(&seg)
		}
	}
	e.schedule()
}

// Tick tells a live engine that time has passed with no packet (now is the
// wall clock, which is capture time for live traffic), so that data stuck
// behind holes is pushed through and idle connections are closed while
// the wire is silent. Call it from the goroutine that calls Packet.
func (e *Engine) Tick(now time.Time) {
	if now.After(e.now) {
		e.now = now
	}
	e.schedule()
}

// CaptureLoss tells the engine that its source dropped packets (a live
// ring's kernel drop counter grew) by now: every connection open at that
// moment is told through decode.LossMarker, so its session record carries
// the capture_loss anomaly; connections opened later are not. It costs one
// pass over the connection table, so call it once per drop report (live
// capture checks its counters every second), not per packet. Call it from
// the goroutine that calls Packet.
func (e *Engine) CaptureLoss(now time.Time) {
	if now.After(e.now) {
		e.now = now
	}
	e.set.loss(e.frame)
	e.schedule()
}

// schedule runs the flushes that are due. They are scheduled here, in
// capture time, for every worker at the same packet, so the output does
// not depend on the worker count.
func (e *Engine) schedule() {
	if !e.now.Before(e.nextFl) {
		if !e.nextFl.IsZero() {
			e.set.flush(e.frame, e.now)
		}
		e.nextFl = e.now.Add(e.cfg.FlushInterval)
	}
}

// Finish flushes all data still held and closes every connection (end of
// input).
func (e *Engine) Finish() {
	e.set.finish()
}

func (w *worker) segment(seg *segment) {
	t := seg.tcp
	ts := seg.ts
	if ts.After(w.now) {
		w.now = ts
	}
	// Packets come in runs of one connection (its data, then the peer's
	// acknowledgement): the previous packet's connection is tried first,
	// without building the key.
	var k connKey
	c := w.last
	if c != nil && (c.key.a == seg.src && c.key.b == seg.dst || c.key.a == seg.dst && c.key.b == seg.src) {
		k = c.key
	} else {
		k = keyOf(seg.src, seg.dst)
		c = w.conns[k]
	}
	if c != nil && t.SYN && !t.ACK && c.reusedBy(seg) {
		w.stats.PortReuse.Add(1)
		w.finish(c, decode.CloseReused)
		c = nil
	}
	if c != nil && ts.Sub(c.lastSeen) > w.cfg.IdleTimeout {
		w.finish(c, decode.CloseTimeout)
		c = nil
	}
	if c == nil {
		if len(t.Payload) == 0 && !t.SYN {
			// A stray ACK, FIN or RST of a connection we do not know:
			// nothing to decode.
			return
		}
		c = w.newConn(k, seg)
	}
	c.lastSeen = ts
	w.last = c
	w.touch(c)
	if c.ignored {
		w.stats.Ignored.Add(1)
		if t.RST && !c.done {
			// Not decoded, but not kept until the idle timeout either.
			c.rst = true
			w.finish(c, decode.CloseRST)
			w.release(c)
		}
		return
	}
	fromClient := seg.src == c.info.Client
	if t.SYN && !t.ACK && fromClient {
		c.hasSyn, c.synSeq = true, t.Seq
	}
	fromFirst := seg.src == c.first
	dir, peer := decode.ClientToServer, decode.ServerToClient // sides
	if !fromFirst {
		dir, peer = peer, dir
	}
	if !c.seen[dir] {
		c.seen[dir], c.seq0[dir] = true, t.Seq
	}
	if t.ACK && c.waiting[peer] && reassembly.Sequence(t.Ack).Difference(c.holeAt[peer]) < 0 {
		// The peer acknowledged bytes of ours past the hole in its
		// data: they reached it, the capture missed them. gopacket would
		// hold what follows the hole until a flush, and the other
		// direction's later bytes would reach the decoder first.
		c.holeSeen[peer] = true
	}
	limit := w.asm.MaxBufferedPagesPerConnection
	if c.holeSeen[dir] {
		// Push the queue out with this packet of the held half: a page
		// limit of 1 makes the assembler skip the hole now.
		w.asm.MaxBufferedPagesPerConnection = 1
		c.holeSeen[dir] = false
	}
	// gopacket keeps the context of a segment it queues (out of order) and
	// asks it for the timestamp later, so each packet needs its own; they
	// come from small slabs, not one allocation per packet.
	ctx := w.newCtx(ts)
	if t.ACK {
		w.acked(&c.halves[peer], reassembly.Sequence(t.Ack))
	}
	w.current = c
	w.assemble(c, dir, fromFirst, t, ctx, seg.off)
	w.current = nil
	w.asm.MaxBufferedPagesPerConnection = limit
	if t.RST && !c.done {
		c.rst = true
		w.finish(c, decode.CloseRST)
		w.release(c)
	} else if t.FIN {
		if fromClient {
			c.finC = true
		} else {
			c.finS = true
		}
	}
}

// reusedBy reports whether a client SYN starts a new connection on c's
// 4-tuple: the old one was closed (FIN/RST) or the SYN's sequence number
// differs from the SYN that opened c.
func (c *conn) reusedBy(seg *segment) bool {
	if c.hasSyn && c.synSeq == seg.tcp.Seq {
		return false // a retransmitted SYN
	}
	return c.finC || c.finS || c.rst || c.done || c.hasSyn
}

func (w *worker) newConn(k connKey, seg *segment) *conn {
	if len(w.conns) >= w.cfg.MaxConns {
		w.evictOldest()
	}
	t := seg.tcp
	client, server := seg.src, seg.dst
	switch {
	case t.SYN && !t.ACK:
	case t.SYN && t.ACK:
		client, server = seg.dst, seg.src
	case w.cfg.ServerPort(server.Port()):
	case w.cfg.ServerPort(client.Port()):
		client, server = server, client
	case client.Port() < server.Port() && client.Port() < 1024:
		client, server = server, client
	}
	w.nextUID++
	id := seg.frame
	if w.cfg.NextID != nil {
		id = w.cfg.NextID()
	}
	c := &conn{
		w:        w,
		key:      k,
		uid:      w.nextUID,
		lastSeen: seg.ts,
		first:    client,
		info: decode.ConnInfo{
			ID:        id,
			Client:    client,
			Server:    server,
			Start:     seg.ts,
			Midstream: !t.SYN,
		},
	}
	c.setFlows()
	w.stats.Conns.Add(1)
	c.dec = w.factory.NewConn(c.info)
	c.ignorer, _ = c.dec.(Ignorer)
	c.swapper, _ = c.dec.(decode.RoleSwapper)
	c.checkSwap()
	w.conns[k] = c
	w.touch(c)
	return c
}

// touch moves c to the most recent end of the lru list.
func (w *worker) touch(c *conn) {
	if c.next != nil {
		if c.next == &w.lru {
			return // already the most recent
		}
		c.prev.next, c.next.prev = c.next, c.prev
	}
	last := w.lru.prev
	c.prev, c.next = last, &w.lru
	last.next, w.lru.prev = c, c
}

// untrack takes c off the lru list.
func (w *worker) untrack(c *conn) {
	if c.next != nil {
		c.prev.next, c.next.prev = c.next, c.prev
		c.prev, c.next = nil, nil
	}
}

// checkSwap exchanges client and server once, when the decoder has found
// them reversed.
func (c *conn) checkSwap() {
	if c.swapper == nil || c.swapped || !c.swapper.RolesSwapped() {
		return
	}
	c.swapped = true
	c.info = c.info.Swapped()
}

// dir is the decoder's direction of the bytes of a half: side is
// ClientToServer for the half sent by first.
func (c *conn) dir(side decode.Direction) decode.Direction {
	if c.swapped {
		return side.Reverse()
	}
	return side
}

// evictOldest closes the least recently active connection.
func (w *worker) evictOldest() {
	if old := w.lru.next; old != &w.lru {
		w.stats.ConnsEvicted.Add(1)
		w.finish(old, decode.CloseEvicted)
	}
}

// flow returns the synthetic network flow that identifies c (and the
// half) to the assembler. Using our own per-connection identity instead
// of the IP addresses lets a reused 4-tuple start a fresh reassembly
// connection while the old one is still in gopacket's pool. Halves are
// named by side (sent by first or not), which a role swap does not change.
func (c *conn) flow(fromFirst bool) gopacket.Flow {
	if fromFirst {
		return c.flows[0]
	}
	return c.flows[1]
}

// setFlows builds c's two flows (see flow) from its uid, once: building
// them for every packet cost more than the copy.
func (c *conn) setFlows() {
	var a, b [16]byte
	binary.BigEndian.PutUint64(a[:8], c.uid)
	binary.BigEndian.PutUint64(b[:8], c.uid)
	a[15], b[15] = 'c', 's'
	c.flows[0] = gopacket.NewFlow(layers.EndpointIPv6, a[:], b[:])
	c.flows[1] = gopacket.NewFlow(layers.EndpointIPv6, b[:], a[:])
}

// finish closes c's decoder once and forgets c. The decoder is dropped at
// once: gopacket may hold c (through its stream) for a while.
func (w *worker) finish(c *conn, reason decode.CloseReason) {
	if !c.done {
		c.done = true
		c.dec.Close(reason, c.lastSeen)
		c.dec, c.ignorer, c.swapper = nil, nil, nil
	}
	if w.conns[c.key] == c {
		delete(w.conns, c.key)
	}
	if w.last == c {
		w.last = nil
	}
	w.untrack(c)
	w.forget(c)
}

// release makes gopacket drop a connection that was reset. gopacket
// closes only the half that sent the RST and keeps the connection (its
// stream, pages and state) until the other half closes too, which after an
// RST happens only at the idle timeout: thousands of finished connections
// on a busy capture. An RST on each half, at a sequence number the half has
// already passed (the first one seen; a half never seen starts there), has
// it close that half now; the second close removes the connection.
func (w *worker) release(c *conn) {
	other := c.info.Server
	if other == c.first {
		other = c.info.Client
	}
	for _, side := range []decode.Direction{decode.ClientToServer, decode.ServerToClient} {
		if c.stream == nil || c.stream.complete {
			return
		}
		src, dst := c.first.Port(), other.Port()
		if side != decode.ClientToServer {
			src, dst = dst, src
		}
		var hdr [20]byte
		binary.BigEndian.PutUint16(hdr[0:], src)
		binary.BigEndian.PutUint16(hdr[2:], dst)
		binary.BigEndian.PutUint32(hdr[4:], c.seq0[side])
		hdr[12] = 5 << 4 // data offset: 5 words
		hdr[13] = 0x04   // RST
		var t layers.TCP
		if t.DecodeFromBytes(hdr[:], gopacket.NilDecodeFeedback) != nil {
			return
		}
		ctx := w.newCtx(c.lastSeen)
		w.current = c
		w.asm.AssembleWithContext(c.flow(side == decode.ClientToServer), &t, ctx)
		w.current = nil
	}
}

// Record phases: the order in which a flush hands out records, so that one
// worker and several produce the same output.
const (
	phasePacket uint8 = iota
	phaseFlush
	phaseIdle
	phaseEOFFlush
	phaseEOF
)

// flush pushes through data stuck behind holes for GapTimeout and closes
// connections idle for IdleTimeout, at capture time now.
func (w *worker) flush(now time.Time) {
	if now.After(w.now) {
		w.now = now
	}
	w.closing = decode.CloseTimeout
	w.flushWith(phaseFlush, func() {
		w.asm.FlushWithOptions(reassembly.FlushOptions{T: now.Add(-w.cfg.GapTimeout), TC: now.Add(-w.cfg.IdleTimeout)})
	})
	w.closing = decode.CloseEOF
	var idle []*conn
	for _, c := range w.conns {
		if now.Sub(c.lastSeen) > w.cfg.IdleTimeout {
			idle = append(idle, c)
		}
	}
	w.closeSorted(phaseIdle, idle, decode.CloseTimeout)
}

// loss tells every open connection's decoder that the capture lost
// packets.
func (w *worker) loss() {
	for _, c := range w.conns {
		if c.done || c.ignored {
			continue
		}
		if m, ok := c.dec.(decode.LossMarker); ok {
			m.CaptureLoss()
		}
	}
}

// finishAll flushes everything held and closes every connection.
func (w *worker) finishAll() {
	w.closing = decode.CloseEOF
	w.flushWith(phaseEOFFlush, func() { w.asm.FlushAll() })
	rest := make([]*conn, 0, len(w.conns))
	for _, c := range w.conns {
		rest = append(rest, c)
	}
	w.closeSorted(phaseEOF, rest, decode.CloseEOF)
}

func (w *worker) closeSorted(phase uint8, cs []*conn, reason decode.CloseReason) {
	sortConns(cs)
	for _, c := range cs {
		if w.mark != nil {
			w.mark(phase, c.info.ID)
		}
		w.finish(c, reason)
	}
}

// assemblerCtx is what gopacket keeps of a packet: its timestamp, which
// is all it and the stream ask for. It holds no pointer (a time.Time
// holds its Location), so the slabs cost the collector nothing to scan.
type assemblerCtx struct {
	sec  int64
	nsec int32
	utc  bool // the timestamp was in UTC (else in Local, as pcapgo's)
}

func (a *assemblerCtx) set(ts time.Time) {
	a.sec, a.nsec, a.utc = ts.Unix(), int32(ts.Nanosecond()), ts.Location() == time.UTC
}

func (a *assemblerCtx) GetCaptureInfo() gopacket.CaptureInfo {
	ts := time.Unix(a.sec, int64(a.nsec))
	if a.utc {
		ts = ts.UTC()
	}
	return gopacket.CaptureInfo{Timestamp: ts}
}

// ctxSlab is the number of contexts allocated at once.
const ctxSlab = 64

// newCtx returns an unused context for a packet at ts.
func (w *worker) newCtx(ts time.Time) *assemblerCtx {
	if len(w.ctxs) == 0 {
		w.ctxs = make([]assemblerCtx, ctxSlab)
	}
	ctx := &w.ctxs[0]
	w.ctxs = w.ctxs[1:]
	ctx.set(ts)
	return ctx
}
