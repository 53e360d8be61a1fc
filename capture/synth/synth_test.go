package synth

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

var (
	cli4 = netip.MustParseAddrPort("192.0.2.10:49152")
	srv4 = netip.MustParseAddrPort("198.51.100.25:25")
	cli6 = netip.MustParseAddrPort("[2001:db8::10]:49152")
	srv6 = netip.MustParseAddrPort("[2001:db8::25]:25")
)

// seg is one parsed TCP segment (IPv4 fragments already joined).
type seg struct {
	t       time.Time
	src     netip.AddrPort
	flags   string // "S", "SA", "A", "PA", "FA", "RA"...
	seq     uint32
	ack     uint32
	payload []byte
	frags   []fragInfo // the fragments it came in, in capture order
}

type fragInfo struct {
	off uint16 // in 8-byte units
	mf  bool
}

func flagString(t *layers.TCP) string {
	var b strings.Builder
	for _, f := range []struct {
		on bool
		c  byte
	}{{t.SYN, 'S'}, {t.FIN, 'F'}, {t.RST, 'R'}, {t.PSH, 'P'}, {t.ACK, 'A'}} {
		if f.on {
			b.WriteByte(f.c)
		}
	}
	return b.String()
}

// ipBytes strips the link header from a frame written for link l.
func ipBytes(t *testing.T, l Link, frame []byte) []byte {
	t.Helper()
	switch l {
	case LinkRaw:
		return frame
	case LinkNull:
		fam := binary.LittleEndian.Uint32(frame)
		if fam != 2 && fam != 30 {
			t.Fatalf("null family %d", fam)
		}
		return frame[4:]
	case LinkSLL:
		p := gopacket.NewPacket(frame, layers.LayerTypeLinuxSLL, gopacket.Default)
		sll, ok := p.Layer(layers.LayerTypeLinuxSLL).(*layers.LinuxSLL)
		if !ok {
			t.Fatalf("no SLL layer: %v", p)
		}
		return sll.Payload
	case LinkSLL2:
		if len(frame) < 20 || frame[2] != 0 || frame[3] != 0 || binary.BigEndian.Uint16(frame[8:]) != arphrdEther || frame[11] != 6 {
			t.Fatalf("bad SLL2 header % x", frame[:min(20, len(frame))])
		}
		et := binary.BigEndian.Uint16(frame)
		if et != 0x0800 && et != 0x86dd {
			t.Fatalf("SLL2 protocol %#x", et)
		}
		return frame[20:]
	case LinkEthernet:
		p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
		if d := p.Layer(layers.LayerTypeDot1Q); d != nil {
			return d.LayerPayload()
		}
		return p.Layer(layers.LayerTypeEthernet).LayerPayload()
	}
	t.Fatalf("link %v", l)
	return nil
}

// checksum16 is the Internet checksum (RFC 1071) over b with an initial sum.
func checksum16(sum uint32, b []byte) uint16 {
	for len(b) > 1 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

func pseudoSum(src, dst netip.Addr, n int) uint32 {
	var sum uint32
	for _, a := range [][]byte{src.AsSlice(), dst.AsSlice()} {
		for i := 0; i < len(a); i += 2 {
			sum += uint32(a[i])<<8 | uint32(a[i+1])
		}
	}
	return sum + 6 + uint32(n)
}

// parseAll decodes frames into TCP segments, verifying IP and TCP
// checksums and joining IPv4 fragments.
func parseAll(t *testing.T, l Link, pkts []Packet) []seg {
	t.Helper()
	type fragKey struct {
		src netip.Addr
		id  uint16
	}
	pending := map[fragKey][]*layers.IPv4{}
	pendingInfo := map[fragKey][]fragInfo{}
	var out []seg
	for i, pk := range pkts {
		ip := ipBytes(t, l, pk.Data)
		var src, dst netip.Addr
		var body []byte
		var frags []fragInfo
		if ip[0]>>4 == 4 {
			if checksum16(0, ip[:20]) != 0xffff {
				t.Fatalf("packet %d: bad IPv4 header checksum", i)
			}
			var v4 layers.IPv4
			if err := v4.DecodeFromBytes(ip, gopacket.NilDecodeFeedback); err != nil {
				t.Fatalf("packet %d: %v", i, err)
			}
			src, _ = netip.AddrFromSlice(v4.SrcIP)
			dst, _ = netip.AddrFromSlice(v4.DstIP)
			if v4.FragOffset != 0 || v4.Flags&layers.IPv4MoreFragments != 0 {
				k := fragKey{src, v4.Id}
				c := v4
				c.Payload = slices.Clone(v4.Payload)
				pending[k] = append(pending[k], &c)
				pendingInfo[k] = append(pendingInfo[k], fragInfo{v4.FragOffset, v4.Flags&layers.IPv4MoreFragments != 0})
				fs := slices.Clone(pending[k])
				slices.SortFunc(fs, func(a, b *layers.IPv4) int { return int(a.FragOffset) - int(b.FragOffset) })
				if fs[len(fs)-1].Flags&layers.IPv4MoreFragments != 0 {
					continue
				}
				var whole []byte
				for _, f := range fs {
					if int(f.FragOffset)*8 != len(whole) {
						whole = nil
						break
					}
					whole = append(whole, f.Payload...)
				}
				if whole == nil {
					continue
				}
				body, frags = whole, pendingInfo[k]
				delete(pending, k)
				delete(pendingInfo, k)
			} else {
				body = v4.Payload
			}
		} else {
			var v6 layers.IPv6
			if err := v6.DecodeFromBytes(ip, gopacket.NilDecodeFeedback); err != nil {
				t.Fatalf("packet %d: %v", i, err)
			}
			src, _ = netip.AddrFromSlice(v6.SrcIP)
			dst, _ = netip.AddrFromSlice(v6.DstIP)
			body = v6.Payload
		}
		if checksum16(pseudoSum(src, dst, len(body)), body) != 0xffff {
			t.Fatalf("packet %d: bad TCP checksum", i)
		}
		var tcp layers.TCP
		if err := tcp.DecodeFromBytes(body, gopacket.NilDecodeFeedback); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		out = append(out, seg{
			t: pk.Time, src: netip.AddrPortFrom(src, uint16(tcp.SrcPort)), flags: flagString(&tcp),
			seq: tcp.Seq, ack: tcp.Ack, payload: slices.Clone(tcp.Payload), frags: frags,
		})
	}
	if len(pending) != 0 {
		t.Fatalf("%d incomplete fragment sets", len(pending))
	}
	return out
}

// reassemble rebuilds what src sent from the segments alone (a minimal,
// independent reassembler): bytes present in order, and the lost ranges.
func reassemble(segs []seg, src netip.AddrPort, base uint32) Stream {
	have := map[int]byte{}
	end := 0
	for _, s := range segs {
		if s.src != src || len(s.payload) == 0 {
			continue
		}
		off := int(s.seq - base)
		for i, b := range s.payload {
			have[off+i] = b
		}
		end = max(end, off+len(s.payload))
	}
	var st Stream
	for i := 0; i < end; i++ {
		b, ok := have[i]
		if !ok {
			if n := len(st.Gaps); n > 0 && st.Gaps[n-1].Off+st.Gaps[n-1].Len == i {
				st.Gaps[n-1].Len++
			} else {
				st.Gaps = append(st.Gaps, Gap{At: len(st.Bytes), Off: i, Len: 1})
			}
			continue
		}
		st.Bytes = append(st.Bytes, b)
	}
	st.Sent = end
	return st
}

func mustPackets(t *testing.T, c *Capture) []Packet {
	t.Helper()
	p, err := c.Packets()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func flagsOf(segs []seg) []string {
	var f []string
	for _, s := range segs {
		f = append(f, s.flags)
	}
	return f
}

func TestConversation(t *testing.T) {
	c := NewCapture(LinkEthernet)
	cn := c.Conn(cli4, srv4, Options{})
	cn.Server("220 mail.example.net ESMTP Postfix\r\n").
		Client("EHLO client.example.org\r\n").
		Server("250-mail.example.net\r\n250 PIPELINING\r\n").
		Client("QUIT\r\n").
		Server("221 2.0.0 Bye\r\n").
		Close(ServerSide)
	segs := parseAll(t, c.Link, mustPackets(t, c))

	want := []string{"S", "SA", "A", "PA", "PA", "PA", "PA", "PA", "FA", "FA", "A"}
	if got := flagsOf(segs); !slices.Equal(got, want) {
		t.Fatalf("flags %v, want %v", got, want)
	}
	// Every ACK acknowledges everything the peer sent before it.
	sent := map[netip.AddrPort]uint32{}
	for i, s := range segs {
		peer := srv4
		if s.src == srv4 {
			peer = cli4
		}
		if i > 0 && s.ack != sent[peer] {
			t.Errorf("segment %d (%s) acks %d, peer's next is %d", i, s.flags, s.ack, sent[peer])
		}
		n := s.seq + uint32(len(s.payload))
		if strings.ContainsAny(s.flags, "SF") {
			n++
		}
		if i > 1 && s.seq != sent[s.src] {
			t.Errorf("segment %d starts at %d, want %d", i, s.seq, sent[s.src])
		}
		sent[s.src] = n
		if i > 0 && !s.t.After(segs[i-1].t) {
			t.Errorf("segment %d not after its predecessor", i)
		}
	}
	for _, d := range []Dir{ClientSide, ServerSide} {
		h := cn.half(d)
		got := reassemble(segs, h.addr, h.isn+1)
		want := cn.Stream(d)
		if !bytes.Equal(got.Bytes, want.Bytes) || len(want.Gaps) != 0 {
			t.Errorf("%v stream %q, want %q (gaps %v)", d, got.Bytes, want.Bytes, want.Gaps)
		}
	}
	if got, want := string(cn.Expected(ClientSide)), "EHLO client.example.org\r\nQUIT\r\n"; got != want {
		t.Errorf("client expected %q, want %q", got, want)
	}
}

func TestSegmentation(t *testing.T) {
	body := strings.Repeat("0123456789", 30) // 300 bytes
	for _, tc := range []struct {
		name string
		opts []StepOption
		mss  int
		want []int // payload sizes in capture order
	}{
		{"mss", nil, 128, []int{128, 128, 44}},
		{"segsize", []StepOption{SegmentSize(100)}, 0, []int{100, 100, 100}},
		{"split", []StepOption{Split(1, 10)}, 0, []int{1, 9, 290}},
		{"split+mss", []StepOption{Split(200)}, 150, []int{150, 50, 100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCapture(LinkRaw)
			cn := c.Conn(cli4, srv4, Options{MSS: tc.mss, Midstream: true})
			cn.Client(body, tc.opts...)
			var got []int
			for _, s := range parseAll(t, c.Link, mustPackets(t, c)) {
				if len(s.payload) > 0 {
					got = append(got, len(s.payload))
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("sizes %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFaults(t *testing.T) {
	body := strings.Repeat("abcdefghij", 40) // 400 bytes, 4 segments of 100
	for _, tc := range []struct {
		name    string
		opts    []StepOption
		order   []int // offsets/100 of the data segments in capture order (-1: resend)
		gaps    []Gap
		dupNext bool // segment 0 is followed by an identical frame
	}{
		{"clean", nil, []int{0, 1, 2, 3}, nil, false},
		{"reorder", []StepOption{Reorder(1)}, []int{0, 2, 1, 3}, nil, false},
		{"reorder twice", []StepOption{Reorder(0), Reorder(2)}, []int{1, 0, 3, 2}, nil, false},
		{"retransmit", []StepOption{Retransmit(1)}, []int{0, 1, 2, 3, 1}, nil, false},
		{"drop", []StepOption{Drop(2)}, []int{0, 1, 3}, []Gap{{At: 200, Off: 200, Len: 100}}, false},
		{"drop last", []StepOption{Drop(3)}, []int{0, 1, 2}, []Gap{{At: 300, Off: 300, Len: 100}}, false},
		{"drop then resend overlapping", []StepOption{Drop(2), Resend(150, 150)}, []int{0, 1, 3, -1}, nil, false},
		{"drop, partial resend", []StepOption{Drop(2), Resend(150, 100), Resend(260, 10)}, []int{0, 1, 3, -1, -1},
			[]Gap{{At: 250, Off: 250, Len: 10}, {At: 260, Off: 270, Len: 30}}, false},
		{"duplicate", []StepOption{Duplicate(0)}, []int{0, 0, 1, 2, 3}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCapture(LinkEthernet)
			cn := c.Conn(cli4, srv4, Options{})
			cn.Client(body, append([]StepOption{SegmentSize(100)}, tc.opts...)...)
			pkts := mustPackets(t, c)
			segs := parseAll(t, c.Link, pkts)
			base := cn.client.isn + 1
			var order []int
			for _, s := range segs {
				if s.src != cli4 || len(s.payload) == 0 {
					continue
				}
				off := int(s.seq - base)
				if len(s.payload) != 100 || off%100 != 0 {
					order = append(order, -1)
				} else {
					order = append(order, off/100)
				}
			}
			if !slices.Equal(order, tc.order) {
				t.Errorf("segment order %v, want %v", order, tc.order)
			}
			st := cn.Stream(ClientSide)
			if !slices.Equal(st.Gaps, tc.gaps) {
				t.Errorf("gaps %+v, want %+v", st.Gaps, tc.gaps)
			}
			got := reassemble(segs, cli4, base)
			if !bytes.Equal(got.Bytes, st.Bytes) {
				t.Errorf("reassembled %d bytes, Stream says %d", len(got.Bytes), len(st.Bytes))
			}
			if st.Sent != len(body) {
				t.Errorf("Sent %d, want %d", st.Sent, len(body))
			}
			if tc.dupNext {
				found := false
				for i := 1; i < len(pkts); i++ {
					found = found || bytes.Equal(pkts[i].Data, pkts[i-1].Data)
				}
				if !found {
					t.Error("no identical consecutive frames")
				}
			}
		})
	}
}

func TestAcksEveryTwoSegments(t *testing.T) {
	c := NewCapture(LinkRaw)
	cn := c.Conn(cli4, srv4, Options{Midstream: true})
	cn.Client(strings.Repeat("x", 500), SegmentSize(100)).Client("y\r\n")
	var got []string
	for _, s := range parseAll(t, c.Link, mustPackets(t, c)) {
		who := "c"
		if s.src == srv4 {
			who = "s"
		}
		got = append(got, who+s.flags)
	}
	// 5 segments: server ACKs after the 2nd and 4th; the 5th is acked
	// (delayed) before the client's next write; the final write is acked
	// at the end of the script.
	want := []string{"cA", "cA", "sA", "cA", "cA", "sA", "cPA", "sA", "cPA", "sA"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}

func TestFragments(t *testing.T) {
	for _, rev := range []bool{false, true} {
		c := NewCapture(LinkEthernet)
		cn := c.Conn(cli4, srv4, Options{})
		msg := strings.Repeat("fragmented ", 20) // 220 bytes
		cn.Client(msg, Fragment(0, 100, rev))
		segs := parseAll(t, c.Link, mustPackets(t, c))
		var data *seg
		for i := range segs {
			if len(segs[i].payload) > 0 {
				data = &segs[i]
			}
		}
		if data == nil || string(data.payload) != msg {
			t.Fatalf("reverse=%v: fragments did not rebuild the segment", rev)
		}
		// 20-byte TCP header + 220 bytes = 240: fragments of 96, 96, 48.
		want := []fragInfo{{0, true}, {12, true}, {24, false}}
		if rev {
			slices.Reverse(want)
		}
		if !slices.Equal(data.frags, want) {
			t.Errorf("reverse=%v: fragments %+v, want %+v", rev, data.frags, want)
		}
	}
	c := NewCapture(LinkEthernet)
	c.Conn(cli6, srv6, Options{}).Client("x", Fragment(0, 8, false))
	if _, err := c.Packets(); err == nil || !strings.Contains(err.Error(), "IPv4") {
		t.Errorf("IPv6 fragmentation: err %v", err)
	}
}

func TestScriptErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(*Conn)
		want string
	}{
		{"reorder last", func(c *Conn) { c.Client("abc", Reorder(0)) }, "reorder segment 0"},
		{"drop range", func(c *Conn) { c.Client("abc", Drop(3)) }, "drop segment 3"},
		{"split order", func(c *Conn) { c.Client("abcdef", Split(4, 2)) }, "split offset 2"},
		{"resend range", func(c *Conn) { c.Client("abc", Resend(2, 5)) }, "resend range"},
		{"after close", func(c *Conn) { c.Close(ClientSide).Client("x") }, "after the connection was closed"},
		{"empty", func(c *Conn) { c.Server("") }, "empty write"},
	} {
		c := NewCapture(LinkEthernet)
		tc.run(c.Conn(cli4, srv4, Options{}))
		if _, err := c.Packets(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
	c := NewCapture(LinkSLL)
	c.Conn(cli4, srv4, Options{VLAN: 5}).Client("x")
	if _, err := c.Packets(); err == nil {
		t.Error("VLAN on SLL accepted")
	}
	c = NewCapture(LinkEthernet)
	c.Conn(cli4, srv6, Options{})
	if _, err := c.Packets(); err == nil {
		t.Error("mixed families accepted")
	}
}

// readBack writes c in format f and reads it back with pcapgo.
func readBack(t *testing.T, c *Capture, f Format) (linkType layers.LinkType, frames [][]byte, times []time.Time) {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Write(&buf, f); err != nil {
		t.Fatal(err)
	}
	type src interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	var r src
	if f == FormatPcap {
		pr, err := pcapgo.NewReader(&buf)
		if err != nil {
			t.Fatal(err)
		}
		linkType, r = pr.LinkType(), pr
	} else {
		nr, err := pcapgo.NewNgReader(&buf, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatal(err)
		}
		linkType, r = nr.LinkType(), nr
	}
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ci.CaptureLength != len(data) || ci.Length != len(data) {
			t.Fatalf("capture info %+v for %d bytes", ci, len(data))
		}
		frames = append(frames, slices.Clone(data))
		times = append(times, ci.Timestamp)
	}
	return linkType, frames, times
}

func TestLinksAndFormats(t *testing.T) {
	for _, l := range []Link{LinkEthernet, LinkSLL, LinkSLL2, LinkNull, LinkRaw} {
		for _, six := range []bool{false, true} {
			for _, f := range []Format{FormatPcap, FormatPcapng} {
				c := NewCapture(l)
				cl, sv := cli4, srv4
				if six {
					cl, sv = cli6, srv6
				}
				opts := Options{}
				if l == LinkEthernet && six {
					opts.VLAN = 100
				}
				cn := c.Conn(cl, sv, opts)
				cn.Server("220 ready\r\n").Client("QUIT\r\n").Server("221 bye\r\n").Close(ServerSide)
				pkts := mustPackets(t, c)
				lt, frames, times := readBack(t, c, f)
				// pcapgo keeps only the low byte of the link type.
				if lt != layers.LinkType(l.LinkType()) {
					t.Errorf("%v/%v: link type %d, want %d", l, f, lt, uint8(l.LinkType()))
				}
				if len(frames) != len(pkts) {
					t.Fatalf("%v/%v: read %d packets, wrote %d", l, f, len(frames), len(pkts))
				}
				for i := range frames {
					if !bytes.Equal(frames[i], pkts[i].Data) || !times[i].Equal(pkts[i].Time) {
						t.Fatalf("%v/%v: packet %d differs after reading back", l, f, i)
					}
				}
				var back []Packet
				for i := range frames {
					back = append(back, Packet{Data: frames[i], Time: times[i]})
				}
				segs := parseAll(t, l, back)
				h := cn.half(ServerSide)
				if got := reassemble(segs, h.addr, h.isn+1); string(got.Bytes) != "220 ready\r\n221 bye\r\n" {
					t.Errorf("%v/%v: server stream %q", l, f, got.Bytes)
				}
				if l == LinkEthernet && six {
					p := gopacket.NewPacket(frames[0], layers.LayerTypeEthernet, gopacket.Default)
					if d, ok := p.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q); !ok || d.VLANIdentifier != 100 {
						t.Errorf("no VLAN 100 tag: %v", p)
					}
				}
			}
		}
	}
}

func TestCookedHeaders(t *testing.T) {
	c := NewCapture(LinkSLL)
	c.Conn(cli4, srv4, Options{Midstream: true}).Client("a").Server("b")
	pkts := mustPackets(t, c)
	p := gopacket.NewPacket(pkts[0].Data, layers.LayerTypeLinuxSLL, gopacket.Default)
	sll := p.Layer(layers.LayerTypeLinuxSLL).(*layers.LinuxSLL)
	if sll.PacketType != layers.LinuxSLLPacketTypeHost || sll.AddrType != 1 || sll.AddrLen != 6 || sll.EthernetType != layers.EthernetTypeIPv4 {
		t.Errorf("SLL header %+v", sll)
	}
	if p.Layer(layers.LayerTypeTCP) == nil {
		t.Error("gopacket did not decode TCP under SLL")
	}

	c.Link = LinkSLL2
	pkts = mustPackets(t, c)
	want := []byte{0x08, 0, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0}
	if !bytes.Equal(pkts[0].Data[:20], want) {
		t.Errorf("SLL2 header % x, want % x", pkts[0].Data[:20], want)
	}
	if pkts[len(pkts)-2].Dir != ServerSide || pkts[len(pkts)-2].Data[10] != sllPacketOutgoing {
		t.Errorf("server packet not marked outgoing")
	}

	c.Link = LinkNull
	pkts = mustPackets(t, c)
	p = gopacket.NewPacket(pkts[0].Data, layers.LayerTypeLoopback, gopacket.Default)
	if lo, ok := p.Layer(layers.LayerTypeLoopback).(*layers.Loopback); !ok || lo.Family != layers.ProtocolFamilyIPv4 || p.Layer(layers.LayerTypeTCP) == nil {
		t.Errorf("null frame not decoded: %v", p)
	}
	c6 := NewCapture(LinkNull)
	c6.Conn(cli6, srv6, Options{Midstream: true}).Client("a")
	p = gopacket.NewPacket(mustPackets(t, c6)[0].Data, layers.LayerTypeLoopback, gopacket.Default)
	if p.Layer(layers.LayerTypeIPv6) == nil || p.Layer(layers.LayerTypeTCP) == nil {
		t.Errorf("null IPv6 frame not decoded: %v", p)
	}
}

func TestInterleaveAndPortReuse(t *testing.T) {
	c := NewCapture(LinkEthernet)
	a := c.Conn(cli4, srv4, Options{})
	other := netip.MustParseAddrPort("192.0.2.11:50000")
	b := c.Conn(other, srv4, Options{Start: DefaultStart.Add(500 * time.Microsecond)})
	a.Server("220 a\r\n").Client("QUIT\r\n").Server("221 a\r\n").Close(ServerSide)
	b.Server("220 b\r\n").Client("QUIT\r\n").Server("221 b\r\n").Close(ServerSide)
	again := c.Conn(cli4, srv4, Options{Start: a.Now().Add(time.Second)})
	again.Server("220 again\r\n").Reset(ClientSide)

	pkts := mustPackets(t, c)
	seen := map[int]bool{}
	switches := 0
	for i, p := range pkts {
		if i > 0 {
			if p.Time.Before(pkts[i-1].Time) {
				t.Fatalf("packet %d goes back in time", i)
			}
			if p.Conn != pkts[i-1].Conn {
				switches++
			}
		}
		seen[p.Conn] = true
	}
	if len(seen) != 3 || switches < 3 {
		t.Errorf("conns %v, %d switches: not interleaved", seen, switches)
	}
	segs := parseAll(t, c.Link, pkts)
	var syns []uint32
	finBeforeSecondSYN := false
	for _, s := range segs {
		if s.flags == "S" && s.src == cli4 {
			syns = append(syns, s.seq)
		}
		if s.flags == "FA" && len(syns) == 1 && s.src == srv4 {
			finBeforeSecondSYN = true
		}
	}
	if len(syns) != 2 || syns[0] == syns[1] || !finBeforeSecondSYN {
		t.Errorf("port reuse: SYN seqs %v, FIN before the second SYN %v", syns, finBeforeSecondSYN)
	}
	if string(again.Expected(ServerSide)) != "220 again\r\n" {
		t.Errorf("second connection expected %q", again.Expected(ServerSide))
	}
}

func TestOnlyAndMidstream(t *testing.T) {
	c := NewCapture(LinkEthernet)
	cn := c.Conn(cli4, srv4, Options{Only: ClientSide, Midstream: true})
	cn.Client("line one\r\n").Server("250 ok\r\n").Client("line two\r\n")
	segs := parseAll(t, c.Link, mustPackets(t, c))
	for _, s := range segs {
		if s.src != cli4 || s.flags == "S" {
			t.Fatalf("unexpected segment %+v", s)
		}
	}
	if got := string(cn.Expected(ClientSide)); got != "line one\r\nline two\r\n" {
		t.Errorf("client %q", got)
	}
	st := cn.Stream(ServerSide)
	if len(st.Bytes) != 0 || !slices.Equal(st.Gaps, []Gap{{0, 0, 8}}) {
		t.Errorf("server stream %+v", st)
	}
}

func TestDeterministicAndGzip(t *testing.T) {
	build := func() *Capture {
		c := NewCapture(LinkEthernet)
		c.Conn(cli4, srv4, Options{}).Server("220 x\r\n").Client("QUIT\r\n", Split(2)).Close(ClientSide)
		return c
	}
	for _, name := range []string{"a.pcap", "a.pcapng", "a.pcap.gz", "a.pcapng.gz"} {
		one, err := build().Bytes(name)
		if err != nil {
			t.Fatal(err)
		}
		two, _ := build().Bytes(name)
		if !bytes.Equal(one, two) {
			t.Errorf("%s: two builds differ", name)
		}
		f, gz := FormatOf(name)
		if !gz {
			continue
		}
		zr, err := gzip.NewReader(bytes.NewReader(one))
		if err != nil {
			t.Fatal(err)
		}
		plain, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if err := build().Write(&want, f); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(plain, want.Bytes()) {
			t.Errorf("%s: gunzipped content differs from the plain file", name)
		}
	}
}

func TestOffloadChecksums(t *testing.T) {
	for _, six := range []bool{false, true} {
		cl, sv := cli4, srv4
		if six {
			cl, sv = cli6, srv6
		}
		c := NewCapture(LinkRaw)
		c.Conn(cl, sv, Options{Offload: ServerSide}).Server("220 ready\r\n").Client("QUIT\r\n").Close(ServerSide)
		bad := map[Dir]int{}
		for _, p := range mustPackets(t, c) {
			ip := p.Data
			var src, dst netip.Addr
			var tcp []byte
			if !six {
				if checksum16(0, ip[:20]) != 0xffff {
					t.Fatal("IPv4 header checksum broken by offload")
				}
				src, _ = netip.AddrFromSlice(ip[12:16])
				dst, _ = netip.AddrFromSlice(ip[16:20])
				tcp = ip[20:]
			} else {
				src, _ = netip.AddrFromSlice(ip[8:24])
				dst, _ = netip.AddrFromSlice(ip[24:40])
				tcp = ip[40:]
			}
			if checksum16(pseudoSum(src, dst, len(tcp)), tcp) == 0xffff {
				continue
			}
			bad[p.Dir]++
			// The unfinished value is the pseudo-header sum.
			if got, want := binary.BigEndian.Uint16(tcp[16:]), checksum16(pseudoSum(src, dst, len(tcp)), nil); got != want {
				t.Errorf("partial checksum %#04x, want %#04x", got, want)
			}
		}
		if bad[ClientSide] != 0 || bad[ServerSide] != 4 {
			t.Errorf("ipv6=%v: bad checksums by side %v, want only the server's 4 (SYN-ACK, 220, FIN, last ACK)", six, bad)
		}
	}
}
