package synth

import (
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"time"
)

// MaxSegment is the largest TCP payload that fits an IPv4 packet.
const MaxSegment = 65535 - 20 - 20

// DefaultStart is the capture time of a Conn whose Options.Start is zero.
var DefaultStart = time.Date(2025, time.March, 3, 9, 30, 0, 0, time.UTC)

// Options configure a Conn. The zero value is a complete IPv4 or IPv6
// connection with a handshake starting at DefaultStart.
type Options struct {
	Start time.Time // time of the first packet; zero means DefaultStart

	// MSS is the largest TCP payload per segment; 0 means 1460 for IPv4
	// and 1440 for IPv6. A step can override it with SegmentSize or Split.
	MSS int

	// VLAN, when non-zero, tags every frame with this 802.1Q VLAN ID
	// (ethernet captures only).
	VLAN uint16

	// Midstream leaves out the handshake: the capture starts with the
	// first step's data, as if it began in the middle of a connection.
	Midstream bool

	// Only, when set, keeps only the packets sent by that side (a capture
	// of one direction, e.g. from an asymmetric tap).
	Only Dir

	// ClientISN and ServerISN are the initial sequence numbers; 0 derives
	// one from the addresses and Start.
	ClientISN, ServerISN uint32

	// Gap separates the packets of one burst (0: 20µs), Think precedes
	// every step (0: 1ms), RTO precedes retransmissions (0: 200ms).
	// Timestamps are written with microsecond precision.
	Gap, Think, RTO time.Duration

	// Offload, when set, is the side whose host took the capture with TCP
	// checksum offload on: the segments it sends carry the unfinished
	// checksum (the pseudo-header sum only), as every capture on lo and
	// most captures on a sending host do. IP header checksums stay valid.
	Offload Dir

	// ClientMAC and ServerMAC are the link addresses (ethernet, SLL, SLL2);
	// nil means 02:00:00:00:00:01 and 02:00:00:00:00:02.
	ClientMAC, ServerMAC net.HardwareAddr

	// SYNData, when set, is carried by the client's SYN (as TCP Fast
	// Open does): the first bytes of the client's stream.
	SYNData string
}

// Conn is one scripted TCP connection. Its methods append to the script
// and return the Conn, so calls chain.
type Conn struct {
	index          int
	opts           Options
	client, server half
	now            time.Time
	raw            []rawPacket
	steps          int
	closed         bool
	err            error
}

type half struct {
	addr   netip.AddrPort
	mac    net.HardwareAddr
	isn    uint32
	data   []byte // every byte sent, in sequence order
	cover  []span // ranges of data that appear in the capture
	ipid   uint16
	fin    bool // FIN sent
	ackDue bool // received data not yet acknowledged
}

func (h *half) seq(off int) uint32 { return h.isn + 1 + uint32(off) }

// next is the sequence number after everything sent, FIN included.
func (h *half) next() uint32 {
	n := h.seq(len(h.data))
	if h.fin {
		n++
	}
	return n
}

type rawPacket struct {
	t   time.Time
	dir Dir
	ip  []byte // IPv4 or IPv6 packet
}

func newConn(index int, client, server netip.AddrPort, opts Options) *Conn {
	if opts.Start.IsZero() {
		opts.Start = DefaultStart
	}
	if opts.Gap <= 0 {
		opts.Gap = 20 * time.Microsecond
	}
	if opts.Think <= 0 {
		opts.Think = time.Millisecond
	}
	if opts.RTO <= 0 {
		opts.RTO = 200 * time.Millisecond
	}
	c := &Conn{index: index, opts: opts, now: opts.Start}
	c.client = half{addr: client, mac: opts.ClientMAC, isn: opts.ClientISN}
	c.server = half{addr: server, mac: opts.ServerMAC, isn: opts.ServerISN}
	if c.client.mac == nil {
		c.client.mac = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	}
	if c.server.mac == nil {
		c.server.mac = net.HardwareAddr{2, 0, 0, 0, 0, 2}
	}
	if c.client.isn == 0 {
		c.client.isn = deriveISN("c", client, server, opts.Start)
	}
	if c.server.isn == 0 {
		c.server.isn = deriveISN("s", client, server, opts.Start)
	}
	h := fnv.New32a()
	fmt.Fprint(h, client, server)
	c.client.ipid = uint16(h.Sum32())
	c.server.ipid = uint16(h.Sum32() >> 16)

	ca, sa := client.Addr().Unmap(), server.Addr().Unmap()
	switch {
	case !client.IsValid() || !server.IsValid():
		c.fail(fmt.Errorf("invalid address %v or %v", client, server))
	case ca.Is4() != sa.Is4():
		c.fail(fmt.Errorf("client %v and server %v are of different IP families", client, server))
	}
	c.client.addr = netip.AddrPortFrom(ca, client.Port())
	c.server.addr = netip.AddrPortFrom(sa, server.Port())
	switch {
	case opts.MSS <= 0:
		c.opts.MSS = 1460
		if !ca.Is4() {
			c.opts.MSS = 1440
		}
	case opts.MSS > MaxSegment:
		c.fail(fmt.Errorf("MSS %d above %d", opts.MSS, MaxSegment))
	}
	if !opts.Midstream {
		c.handshake()
	}
	return c
}

func deriveISN(side string, client, server netip.AddrPort, start time.Time) uint32 {
	h := fnv.New32a()
	fmt.Fprint(h, side, client, server, start.UnixNano())
	return h.Sum32()
}

func (c *Conn) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

// Err returns the first scripting error, if any.
func (c *Conn) Err() error { return c.err }

// Now returns the time of the connection's last packet so far (after
// flushing pending ACKs). A Conn reusing the same 4-tuple should start
// later than this.
func (c *Conn) Now() time.Time {
	c.flush()
	return c.now
}

// Client scripts one write by the client.
func (c *Conn) Client(data string, opts ...StepOption) *Conn {
	return c.step(ClientSide, data, opts)
}

// Server scripts one write by the server.
func (c *Conn) Server(data string, opts ...StepOption) *Conn {
	return c.step(ServerSide, data, opts)
}

// Wait advances the connection's clock by d (after flushing pending ACKs).
func (c *Conn) Wait(d time.Duration) *Conn {
	if d < 0 {
		c.fail(fmt.Errorf("negative wait %v", d))
		return c
	}
	c.flush()
	c.now = c.now.Add(d)
	return c
}

// Close ends the connection in order: from sends FIN, the peer answers
// with its own FIN, from acknowledges it.
func (c *Conn) Close(from Dir) *Conn {
	if c.usable("close") {
		p := c.half(from.Peer())
		c.tick(c.opts.Think)
		c.send(from, flagFIN|flagACK, nil, c.half(from).next(), nil)
		c.half(from).fin = true
		p.ackDue = false
		c.tick(c.opts.Gap)
		c.send(from.Peer(), flagFIN|flagACK, nil, p.next(), nil)
		p.fin = true
		c.half(from).ackDue = false
		c.tick(c.opts.Gap)
		c.send(from, flagACK, nil, c.half(from).next(), nil)
		c.closed = true
	}
	return c
}

// Reset ends the connection with a RST from the given side.
func (c *Conn) Reset(from Dir) *Conn {
	if c.usable("reset") {
		c.tick(c.opts.Think)
		c.send(from, flagRST|flagACK, nil, c.half(from).next(), nil)
		c.client.ackDue, c.server.ackDue = false, false
		c.closed = true
	}
	return c
}

func (c *Conn) usable(what string) bool {
	if c.err != nil {
		return false
	}
	if c.closed {
		c.fail(fmt.Errorf("%s after the connection was closed", what))
		return false
	}
	return true
}

func (c *Conn) half(d Dir) *half {
	if d == ServerSide {
		return &c.server
	}
	return &c.client
}

func (c *Conn) tick(d time.Duration) { c.now = c.now.Add(d) }

func (c *Conn) handshake() {
	var syn []byte
	if c.opts.SYNData != "" {
		syn = []byte(c.opts.SYNData)
		c.client.data = append(c.client.data, syn...)
		c.client.cover = append(c.client.cover, span{0, len(syn)})
	}
	c.send(ClientSide, flagSYN, syn, c.client.isn, nil)
	c.tick(c.opts.Gap)
	c.send(ServerSide, flagSYN|flagACK, nil, c.server.isn, nil)
	c.tick(c.opts.Gap)
	c.send(ClientSide, flagACK, nil, c.client.seq(len(syn)), nil)
}

// flush sends the ACKs still owed when the script ends or pauses.
func (c *Conn) flush() {
	if c.closed || c.err != nil {
		return
	}
	for _, d := range []Dir{ClientSide, ServerSide} {
		if c.half(d).ackDue {
			c.tick(c.opts.Gap)
			c.pureAck(d)
		}
	}
}

// pureAck sends an ACK without data from d for everything the peer sent.
func (c *Conn) pureAck(d Dir) {
	c.send(d, flagACK, nil, c.half(d).next(), nil)
	c.half(d).ackDue = false
}

// StepOption changes how one step is cut into segments and which faults
// hit them. Segment indexes count from 0 within the step.
type StepOption func(*step)

type step struct {
	split      []int
	segSize    int
	delay      time.Duration
	hasDelay   bool
	reorder    []int
	retransmit []int
	resend     []span
	forged     []forgery
	drop       []int
	dup        []int
	frag       []fragment
}

// forgery is a segment whose bytes differ from the stream's.
type forgery struct {
	off   int
	data  string
	early bool
}

type fragment struct {
	seg, size int
	reverse   bool
}

// Split cuts the step at the given byte offsets (ascending, inside the
// step) instead of at the MSS. Pieces longer than the MSS are cut further.
func Split(offsets ...int) StepOption {
	return func(s *step) { s.split = append(s.split, offsets...) }
}

// SegmentSize cuts the step into segments of at most n bytes.
func SegmentSize(n int) StepOption { return func(s *step) { s.segSize = n } }

// Delay replaces Options.Think before this step.
func Delay(d time.Duration) StepOption {
	return func(s *step) { s.delay, s.hasDelay = d, true }
}

// Reorder sends segment i after segment i+1.
func Reorder(i int) StepOption { return func(s *step) { s.reorder = append(s.reorder, i) } }

// Retransmit sends segment i again, one RTO after the step's segments.
func Retransmit(i int) StepOption { return func(s *step) { s.retransmit = append(s.retransmit, i) } }

// Resend sends the step's bytes [off, off+n) again as one segment, one RTO
// after the step's segments. A range spanning two segments gives an
// overlapping retransmission; over a dropped segment it fills the gap.
func Resend(off, n int) StepOption {
	return func(s *step) { s.resend = append(s.resend, span{off, off + n}) }
}

// Forge sends data at the step's offset off as one segment whose bytes
// need not match the stream's (an overlap with different content, as an
// evasion or a broken middlebox makes): before the step's segments when
// early is set (a copy the receiver buffers out of order), else one RTO
// after them (a retransmission). The stream's expected bytes stay the
// step's own.
func Forge(off int, data string, early bool) StepOption {
	return func(s *step) { s.forged = append(s.forged, forgery{off, data, early}) }
}

// Drop leaves segment i out of the capture (the receiver got it, the
// capture did not): its bytes are a gap unless a Retransmit or Resend
// covers them.
func Drop(i int) StepOption { return func(s *step) { s.drop = append(s.drop, i) } }

// Duplicate captures segment i twice, the copy identical to the byte (as a
// SPAN port mirroring both ways does).
func Duplicate(i int) StepOption { return func(s *step) { s.dup = append(s.dup, i) } }

// Fragment sends segment i as IPv4 fragments carrying at most size bytes
// of IP payload each (rounded down to a multiple of 8), in reverse order
// if reverse is set. IPv4 only.
func Fragment(i, size int, reverse bool) StepOption {
	return func(s *step) { s.frag = append(s.frag, fragment{i, size, reverse}) }
}

type emission struct {
	sp         span // step-relative
	seg        int
	forged     *forgery // bytes of their own at sp
	retransmit bool
	dup        bool
	countAck   bool // an original: counts toward the peer's ACK every two segments
	lost       bool
}

func (c *Conn) step(d Dir, data string, opts []StepOption) *Conn {
	c.steps++
	if !c.usable("step") {
		return c
	}
	if len(data) == 0 {
		c.fail(fmt.Errorf("step %d: empty write", c.steps))
		return c
	}
	var s step
	for _, o := range opts {
		o(&s)
	}
	segs, err := s.cut(len(data), c.opts.MSS)
	if err == nil {
		err = s.check(len(data), len(segs), c.client.addr.Addr().Is4())
	}
	if err != nil {
		c.fail(fmt.Errorf("step %d (%s): %w", c.steps, d, err))
		return c
	}
	h, p := c.half(d), c.half(d.Peer())
	if p.ackDue { // the peer's delayed ACK for d's previous write
		c.tick(c.opts.Gap)
		c.pureAck(d.Peer())
	}
	h.ackDue = false // d's segments carry the ACK
	if s.hasDelay {
		c.tick(s.delay)
	} else {
		c.tick(c.opts.Think)
	}

	base := len(h.data)
	h.data = append(h.data, data...)

	order := make([]int, len(segs))
	for i := range order {
		order[i] = i
	}
	for _, r := range s.reorder {
		a, b := indexOf(order, r), indexOf(order, r+1)
		order[a], order[b] = order[b], order[a]
	}
	var plan []emission
	for i, f := range s.forged {
		if f.early {
			plan = append(plan, emission{sp: span{f.off, f.off + len(f.data)}, seg: -1, forged: &s.forged[i]})
		}
	}
	for _, i := range order {
		plan = append(plan, emission{sp: segs[i], seg: i, countAck: true, lost: contains(s.drop, i)})
		if contains(s.dup, i) {
			plan = append(plan, emission{sp: segs[i], seg: i, dup: true})
		}
	}
	for _, i := range s.retransmit {
		plan = append(plan, emission{sp: segs[i], seg: i, retransmit: true})
	}
	for _, sp := range s.resend {
		plan = append(plan, emission{sp: sp, seg: -1, retransmit: true})
	}
	for i, f := range s.forged {
		if !f.early {
			plan = append(plan, emission{sp: span{f.off, f.off + len(f.data)}, seg: -1, retransmit: true, forged: &s.forged[i]})
		}
	}

	counted, maxEnd := 0, 0
	first, rto := true, false
	var last [][]byte // IP packets of the previous emission, for Duplicate
	for _, e := range plan {
		abs := span{base + e.sp.off, base + e.sp.end}
		switch {
		case e.dup:
			c.tick(time.Microsecond)
			for _, ip := range last {
				c.raw = append(c.raw, rawPacket{t: c.now, dir: d, ip: ip})
			}
			continue
		case e.retransmit && !rto:
			c.tick(c.opts.RTO)
			rto = true
		case !first:
			c.tick(c.opts.Gap)
		}
		first = false
		flags := flagACK
		if e.sp.end == len(data) {
			flags |= flagPSH
		}
		if e.forged != nil {
			c.send(d, flags, []byte(e.forged.data), h.seq(abs.off), nil)
			last = nil
			continue
		}
		if e.lost {
			last = nil
		} else {
			var fr *fragment
			if !e.retransmit {
				for i := range s.frag {
					if s.frag[i].seg == e.seg {
						fr = &s.frag[i]
					}
				}
			}
			n := len(c.raw)
			c.send(d, flags, []byte(data[e.sp.off:e.sp.end]), h.seq(abs.off), fr)
			last = nil
			for _, r := range c.raw[n:] {
				last = append(last, r.ip)
			}
			h.cover = append(h.cover, abs)
		}
		maxEnd = max(maxEnd, abs.end)
		if e.countAck {
			counted++
			if counted%2 == 0 {
				c.tick(c.opts.Gap)
				c.packet(d.Peer(), flagACK, p.next(), h.seq(maxEnd), nil, nil)
			}
		}
	}
	p.ackDue = counted%2 == 1 || rto
	return c
}

func (s *step) cut(n, mss int) ([]span, error) {
	size := mss
	if s.segSize > 0 {
		size = s.segSize
	}
	if size > MaxSegment {
		return nil, fmt.Errorf("segment size %d above %d", size, MaxSegment)
	}
	if s.delay < 0 {
		return nil, fmt.Errorf("negative delay %v", s.delay)
	}
	var bounds []int
	prev := 0
	for _, o := range s.split {
		if o <= prev || o >= n {
			return nil, fmt.Errorf("split offset %d out of order or outside (0, %d)", o, n)
		}
		bounds = append(bounds, o)
		prev = o
	}
	bounds = append(bounds, n)
	var segs []span
	off := 0
	for _, b := range bounds {
		for off < b {
			end := min(off+size, b)
			segs = append(segs, span{off, end})
			off = end
		}
	}
	return segs, nil
}

func (s *step) check(n, segs int, ipv4 bool) error {
	in := func(what string, i, limit int) error {
		if i < 0 || i >= limit {
			return fmt.Errorf("%s segment %d: the step has %d segments", what, i, segs)
		}
		return nil
	}
	for _, i := range s.reorder {
		if err := in("reorder", i, segs-1); err != nil {
			return err
		}
	}
	for _, group := range []struct {
		what string
		idx  []int
	}{{"retransmit", s.retransmit}, {"drop", s.drop}, {"duplicate", s.dup}} {
		for _, i := range group.idx {
			if err := in(group.what, i, segs); err != nil {
				return err
			}
		}
	}
	for _, i := range s.dup {
		if contains(s.drop, i) {
			return fmt.Errorf("segment %d both dropped and duplicated", i)
		}
	}
	for _, sp := range s.resend {
		if sp.off < 0 || sp.end > n || sp.end <= sp.off {
			return fmt.Errorf("resend range [%d,%d) outside the step's %d bytes", sp.off, sp.end, n)
		}
	}
	for _, f := range s.forged {
		if f.off < 0 || f.data == "" || f.off+len(f.data) > n {
			return fmt.Errorf("forged range [%d,%d) outside the step's %d bytes", f.off, f.off+len(f.data), n)
		}
	}
	for _, f := range s.frag {
		if err := in("fragment", f.seg, segs); err != nil {
			return err
		}
		if !ipv4 {
			return fmt.Errorf("fragmentation is only scripted for IPv4")
		}
		if f.size < 8 {
			return fmt.Errorf("fragment size %d below 8", f.size)
		}
		if contains(s.drop, f.seg) {
			return fmt.Errorf("segment %d both dropped and fragmented", f.seg)
		}
	}
	return nil
}

func indexOf(s []int, v int) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func contains(s []int, v int) bool { return indexOf(s, v) >= 0 }
