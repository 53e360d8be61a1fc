//go:build linux

package live

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/mailtap/mailtap/capture/bpfexpr"
)

// Linux constants x/sys/unix does not name.
const (
	tpacketV3    = 2      // enum tpacket_versions: TPACKET_V3
	ethPAll      = 0x0300 // htons(ETH_P_ALL)
	arphrdEther  = 1
	arphrdLoop   = 772
	frameSize    = 2048
	tp3HdrLen    = 48 // TPACKET_ALIGN(sizeof(struct tpacket3_hdr))
	sockaddrLL   = 20 // sizeof(struct sockaddr_ll)
	sllLen       = 16 // Linux cooked header (v1)
	pollSlice    = 100 * time.Millisecond
	blockStatus  = 8  // offset of block_status in tpacket_block_desc
	blockNumPkts = 12 // num_pkts
	blockFirst   = 16 // offset_to_first_pkt
)

var ne = binary.NativeEndian

// Capture is an open live capture: one Handle per worker.
type Capture struct {
	cfg     Config
	handles []*Handle
	framing Framing
	link    layers.LinkType
	prog    []bpf.Instruction
}

// Open opens cfg.Workers packet sockets on cfg.Interface.
func Open(cfg Config) (*Capture, error) {
	cfg.defaults()
	ifindex, framing, err := resolveInterface(cfg.Interface)
	if err != nil {
		return nil, err
	}
	c := &Capture{cfg: cfg, framing: framing, link: layers.LinkTypeEthernet}
	if framing == FramingIP {
		c.link = layers.LinkTypeLinuxSLL
	}
	switch cfg.Filter {
	case FilterPorts:
		c.prog, err = PortFilter(framing, cfg.Ports, uint32(cfg.Snaplen))
	case FilterTCP:
		c.prog, err = PortFilter(framing, nil, uint32(cfg.Snaplen))
	case FilterExpr:
		c.prog, err = bpfexpr.Compile(cfg.Expr, exprLink(framing), cfg.Snaplen)
	default:
		c.prog = []bpf.Instruction{bpf.RetConstant{Val: uint32(cfg.Snaplen)}}
	}
	if err != nil {
		return nil, err
	}
	// Loopback frames pass the packet tap twice, going out and coming
	// back in; keep the incoming copy, as libpcap does.
	if lo := loopbackIndex(); lo > 0 && (ifindex == 0 || ifindex == lo) {
		c.prog = append(skipOutgoing(lo, ifindex == 0), c.prog...)
	}
	raw, err := bpf.Assemble(c.prog)
	if err != nil {
		return nil, fmt.Errorf("bpf: %w", err)
	}
	group := uint16(os.Getpid()) ^ uint16(time.Now().UnixNano()>>10)
	for i := 0; i < cfg.Workers; i++ {
		h, err := openHandle(&cfg, ifindex, framing, raw, group, cfg.Workers > 1)
		if err != nil {
			c.Close()
			return nil, err
		}
		h.link = c.link
		c.handles = append(c.handles, h)
	}
	return c, nil
}

// exprLink is the libpcap link type (DLT) whose layout matches what the
// kernel filter sees for a framing.
func exprLink(f Framing) layers.LinkType {
	switch f {
	case FramingSLL:
		return layers.LinkTypeLinuxSLL
	case FramingIP:
		return 12 // DLT_RAW on Linux: the packet starts at the IP header
	}
	return layers.LinkTypeEthernet
}

// resolveInterface returns the interface index (0 for "any") and how its
// packets are framed. Interfaces with an Ethernet header (loopback has
// one) are read whole; "any" and the others through SOCK_DGRAM, with a
// Linux cooked header rebuilt in front, as libpcap does.
func resolveInterface(name string) (int, Framing, error) {
	if name == "" || name == "any" {
		return 0, FramingIP, nil
	}
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		var names []string
		if all, err := net.Interfaces(); err == nil {
			for _, i := range all {
				names = append(names, i.Name)
			}
		}
		return 0, 0, fmt.Errorf("%w: %q (interfaces here: %s, or any)", ErrNoInterface, name, strings.Join(names, ", "))
	}
	ether := len(ifi.HardwareAddr) == 6 || ifi.Flags&net.FlagLoopback != 0
	if b, err := os.ReadFile("/sys/class/net/" + name + "/type"); err == nil {
		if t, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			ether = t == arphrdEther || t == arphrdLoop
		}
	}
	if ether {
		return ifi.Index, FramingEthernet, nil
	}
	return ifi.Index, FramingIP, nil
}

func loopbackIndex() int {
	all, err := net.Interfaces()
	if err != nil {
		return 0
	}
	for _, i := range all {
		if i.Flags&net.FlagLoopback != 0 {
			return i.Index
		}
	}
	return 0
}

// skipOutgoing is a filter prefix that drops packets going out on the
// loopback interface (index lo; with anyIf, only those of that index). It
// uses the kernel's ancillary loads, which x/net/bpf's VM does not run.
func skipOutgoing(lo int, anyIf bool) []bpf.Instruction {
	const packetOutgoing = 4
	p := []bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: packetOutgoing, SkipFalse: 1},
		bpf.RetConstant{Val: 0},
	}
	if anyIf {
		p = append([]bpf.Instruction{
			bpf.LoadExtension{Num: bpf.ExtInterfaceIndex},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(lo), SkipFalse: 3},
		}, p...)
	}
	return p
}

// Handles returns one Handle per worker.
func (c *Capture) Handles() []*Handle { return c.handles }

// LinkType is the link type of every packet the handles return: Ethernet,
// or Linux cooked (SLL) for "any" and interfaces without Ethernet headers.
func (c *Capture) LinkType() layers.LinkType { return c.link }

// Framing is what the kernel filter program sees.
func (c *Capture) Framing() Framing { return c.framing }

// Filter returns the kernel filter program.
func (c *Capture) Filter() []bpf.Instruction { return c.prog }

// Interface is the name of the interface captured on ("any" for all).
func (c *Capture) Interface() string { return c.cfg.Interface }

// Snaplen is the most bytes kept of a packet.
func (c *Capture) Snaplen() int { return c.cfg.Snaplen }

// Interrupt makes every handle return io.EOF once the packets already in
// its ring have been read. Safe from any goroutine.
func (c *Capture) Interrupt() {
	for _, h := range c.handles {
		h.Interrupt()
	}
}

// Stats sums the handles' counters (reading the kernel's).
func (c *Capture) Stats() Stats {
	var s Stats
	for _, h := range c.handles {
		s.Add(h.Stats())
	}
	return s
}

// Close closes every handle. Call it once the readers have returned.
func (c *Capture) Close() error {
	var first error
	for _, h := range c.handles {
		if err := h.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Handle reads one packet socket's ring. ReadPacket and Next must be called
// from one goroutine; Interrupt and Stats from any.
type Handle struct {
	fd      int
	ring    []byte
	nblocks int
	tov     time.Duration
	framing Framing
	link    layers.LinkType

	blk   int    // block we read or wait for
	held  bool   // blk is ours (TP_STATUS_USER) until released
	left  uint32 // packets left in blk
	off   int    // offset of the next packet in blk
	drain time.Time
	spare []byte // for headers that do not fit in front of a packet

	stop    atomic.Bool
	packets atomic.Uint64
	bytes   atomic.Uint64
	trunc   atomic.Uint64
	skipped atomic.Uint64

	mu     sync.Mutex // kernel counters, and fd against Close
	kernel Stats
	closed bool
}

func openHandle(cfg *Config, ifindex int, framing Framing, prog []bpf.RawInstruction, group uint16, fanout bool) (h *Handle, err error) {
	typ := unix.SOCK_RAW
	if framing == FramingIP {
		typ = unix.SOCK_DGRAM
	}
	// Protocol 0: no packet arrives before bind, so none escapes the
	// filter or lands outside the fanout group's hashing for long.
	fd, err := unix.Socket(unix.AF_PACKET, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, ErrPermission
		}
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	h = &Handle{fd: fd, framing: framing, tov: cfg.BlockTimeout}
	defer func() {
		if err != nil {
			h.Close()
		}
	}()
	filter := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		filter[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return nil, fmt.Errorf("attach filter: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, tpacketV3); err != nil {
		return nil, fmt.Errorf("TPACKET_V3: %w", err)
	}
	h.nblocks = cfg.RingBytes / blockSize
	req := unix.TpacketReq3{
		Block_size:     blockSize,
		Block_nr:       uint32(h.nblocks),
		Frame_size:     frameSize,
		Frame_nr:       uint32(h.nblocks * (blockSize / frameSize)),
		Retire_blk_tov: uint32(max(1, cfg.BlockTimeout.Milliseconds())),
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return nil, fmt.Errorf("ring of %d blocks: %w", h.nblocks, err)
	}
	h.ring, err = unix.Mmap(fd, 0, h.nblocks*blockSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap ring: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: ethPAll, Ifindex: ifindex}); err != nil {
		if errors.Is(err, unix.ENODEV) {
			return nil, fmt.Errorf("%w: index %d", ErrNoInterface, ifindex)
		}
		return nil, fmt.Errorf("bind: %w", err)
	}
	if cfg.Promiscuous && ifindex != 0 {
		mreq := unix.PacketMreq{Ifindex: int32(ifindex), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			return nil, fmt.Errorf("promiscuous mode: %w", err)
		}
	}
	if fanout {
		// The hash is symmetric (__skb_get_hash_symmetric), so both
		// directions of a flow land on one socket; DEFRAG hashes IPv4
		// fragments once reassembled.
		// The option is a C int: its top bit is DEFRAG's, so the value
		// is made as 32 bits (an int constant would not fit on 386).
		v := int(int32(uint32(group) | uint32(unix.PACKET_FANOUT_HASH|unix.PACKET_FANOUT_FLAG_DEFRAG)<<16))
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, v); err != nil {
			return nil, fmt.Errorf("fanout group %d: %w", group, err)
		}
	}
	return h, nil
}

// Interrupt makes the reader return io.EOF once the packets already in
// the ring (and the block the kernel is filling) have been read.
func (h *Handle) Interrupt() { h.stop.Store(true) }

// ReadPacket returns the next packet, waiting as long as needed; io.EOF
// after Interrupt. Data is valid until the next call. It implements
// capture.Source.
func (h *Handle) ReadPacket() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	return h.Next(-1)
}

// Next is ReadPacket with a timeout (negative: none): ErrTimeout when no
// packet came in time, so a caller can do timed work on its own goroutine.
func (h *Handle) Next(timeout time.Duration) ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		if h.left > 0 {
			if data, ci, ok := h.packet(); ok {
				return data, ci, h.link, nil
			}
			continue
		}
		if h.held {
			h.release()
		}
		if h.ready() {
			b := h.block()
			h.held = true
			h.left = ne.Uint32(b[blockNumPkts:])
			h.off = int(ne.Uint32(b[blockFirst:]))
			continue
		}
		wait := pollSlice
		if h.stop.Load() {
			// Give the kernel one block timeout to retire the block it
			// is filling, then stop.
			if h.drain.IsZero() {
				h.drain = time.Now().Add(2*h.tov + 20*time.Millisecond)
			}
			wait = time.Until(h.drain)
			if wait <= 0 {
				return nil, gopacket.CaptureInfo{}, h.link, io.EOF
			}
		}
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return nil, gopacket.CaptureInfo{}, h.link, ErrTimeout
			}
			wait = min(wait, left)
		}
		fds := []unix.PollFd{{Fd: int32(h.fd), Events: unix.POLLIN | unix.POLLERR}}
		ms := int(wait.Milliseconds())
		if ms <= 0 {
			ms = 1
		}
		if _, err := unix.Poll(fds, ms); err != nil && !errors.Is(err, unix.EINTR) {
			return nil, gopacket.CaptureInfo{}, h.link, fmt.Errorf("poll: %w", err)
		}
	}
}

func (h *Handle) block() []byte {
	return h.ring[h.blk*blockSize : (h.blk+1)*blockSize]
}

func (h *Handle) status() *uint32 {
	return (*uint32)(unsafe.Pointer(&h.ring[h.blk*blockSize+blockStatus]))
}

func (h *Handle) ready() bool {
	return atomic.LoadUint32(h.status())&unix.TP_STATUS_USER != 0
}

// release hands the current block back to the kernel.
func (h *Handle) release() {
	atomic.StoreUint32(h.status(), unix.TP_STATUS_KERNEL)
	h.held, h.left = false, 0
	h.blk = (h.blk + 1) % h.nblocks
}

// packet takes the next packet of the held block. ok is false for a
// malformed entry (the rest of the block is skipped).
func (h *Handle) packet() (data []byte, ci gopacket.CaptureInfo, ok bool) {
	b := h.block()
	if h.off < 0 || h.off+tp3HdrLen+sockaddrLL > len(b) {
		h.skipped.Add(uint64(h.left))
		h.left = 0
		return nil, ci, false
	}
	p := b[h.off:]
	next := int(ne.Uint32(p[0:]))
	sec, nsec := ne.Uint32(p[4:]), ne.Uint32(p[8:])
	snap, wire := int(ne.Uint32(p[12:])), int(ne.Uint32(p[16:]))
	status := ne.Uint32(p[20:])
	mac := int(ne.Uint16(p[24:]))
	start := h.off
	h.left--
	if next <= 0 && h.left > 0 {
		h.skipped.Add(uint64(h.left))
		h.left = 0
	}
	h.off += next
	if mac < tp3HdrLen+sockaddrLL || start+mac+snap > len(b) {
		h.skipped.Add(1 + uint64(h.left))
		h.left = 0
		return nil, ci, false
	}
	data = b[start+mac : start+mac+snap]
	ci = gopacket.CaptureInfo{Timestamp: time.Unix(int64(sec), int64(nsec)), CaptureLength: snap, Length: wire}
	switch {
	case h.framing == FramingIP:
		data = h.cooked(p, mac, data)
		ci.CaptureLength += sllLen
		ci.Length += sllLen
	case status&unix.TP_STATUS_VLAN_VALID != 0 && snap >= 12:
		data = h.vlan(p, mac, data)
		ci.CaptureLength += 4
		ci.Length += 4
	}
	h.packets.Add(1)
	h.bytes.Add(uint64(wire))
	if snap < wire {
		h.trunc.Add(1)
	}
	return data, ci, true
}

// cooked puts a Linux cooked (SLL) header in front of a packet read from a
// SOCK_DGRAM socket, built from the sockaddr_ll that follows the packet
// header. It is written into the ring just before the packet when there is
// room (there is: the kernel leaves 16 bytes), else into a spare buffer.
func (h *Handle) cooked(p []byte, mac int, data []byte) []byte {
	sa := p[tp3HdrLen : tp3HdrLen+sockaddrLL]
	var hdr [sllLen]byte
	binary.BigEndian.PutUint16(hdr[0:], uint16(sa[10]))    // sll_pkttype
	binary.BigEndian.PutUint16(hdr[2:], ne.Uint16(sa[8:])) // sll_hatype
	halen := min(int(sa[11]), 8)                           // sll_halen
	binary.BigEndian.PutUint16(hdr[4:], uint16(sa[11]))    //
	copy(hdr[6:6+halen], sa[12:12+halen])                  // sll_addr
	copy(hdr[14:16], sa[2:4])                              // sll_protocol, network order
	if mac-sllLen >= tp3HdrLen+sockaddrLL {
		out := p[mac-sllLen : mac+len(data)]
		copy(out, hdr[:])
		return out
	}
	h.spare = append(append(h.spare[:0], hdr[:]...), data...)
	return h.spare
}

// vlan puts back the 802.1Q tag the kernel took off the frame.
func (h *Handle) vlan(p []byte, mac int, data []byte) []byte {
	tci := uint16(ne.Uint32(p[32:]))
	tpid := uint16(0x8100)
	if ne.Uint32(p[20:])&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
		if t := ne.Uint16(p[36:]); t != 0 {
			tpid = t
		}
	}
	var tag [4]byte
	binary.BigEndian.PutUint16(tag[0:], tpid)
	binary.BigEndian.PutUint16(tag[2:], tci)
	if mac-4 >= tp3HdrLen+sockaddrLL {
		out := p[mac-4 : mac+len(data)]
		copy(out[0:12], out[4:16]) // MAC addresses move 4 bytes up
		copy(out[12:16], tag[:])
		return out
	}
	h.spare = append(append(append(h.spare[:0], data[:12]...), tag[:]...), data[12:]...)
	return h.spare
}

// Stats returns the counters, reading (and so resetting) the kernel's.
func (h *Handle) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.readKernel()
	}
	s := h.kernel
	s.Packets = h.packets.Load()
	s.Bytes = h.bytes.Load()
	s.Truncated = h.trunc.Load()
	s.Skipped = h.skipped.Load()
	return s
}

func (h *Handle) readKernel() {
	st, err := unix.GetsockoptTpacketStatsV3(h.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return
	}
	// The kernel counts tp_packets including the drops.
	h.kernel.Received += uint64(st.Packets)
	h.kernel.Drops += uint64(st.Drops)
	h.kernel.Freezes += uint64(st.Freeze_q_cnt)
}

// Close unmaps the ring and closes the socket. The reader must have
// returned.
func (h *Handle) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.stop.Store(true)
	h.readKernel()
	h.closed = true
	var err error
	if h.ring != nil {
		err = unix.Munmap(h.ring)
		h.ring = nil
	}
	if cerr := unix.Close(h.fd); err == nil {
		err = cerr
	}
	return err
}
