package capture

import (
	"bytes"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/mailtap/mailtap/capture/synth"
	"github.com/mailtap/mailtap/decode"
)

var (
	cli4 = netip.MustParseAddrPort("192.0.2.10:40000")
	srv4 = netip.MustParseAddrPort("198.51.100.25:25")
	cli6 = netip.MustParseAddrPort("[2001:db8::10]:40000")
	srv6 = netip.MustParseAddrPort("[2001:db8::25]:25")
)

// decodeCapture writes c to a file in the given format and runs the
// engine over it with recording decoders.
func decodeCapture(t *testing.T, c *synth.Capture, name string) (*recFactory, Stats) {
	t.Helper()
	return runFile(t, writeCapture(t, c, name), Config{ServerPort: func(p uint16) bool { return p == 25 }})
}

var body = strings.Repeat("The quick brown fox jumps over the lazy dog.\r\n", 200)

func script(conn *synth.Conn, opts ...synth.StepOption) {
	conn.Server("220 mx.example.test ESMTP\r\n").
		Client("EHLO client.example\r\n").
		Server("250-mx.example.test\r\n250 PIPELINING\r\n").
		Client("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n").
		Server("250 ok\r\n250 ok\r\n354 go\r\n").
		Client(body+".\r\n", opts...).
		Server("250 queued\r\n").
		Client("QUIT\r\n").
		Server("221 bye\r\n").
		Close(synth.ClientSide)
}

func checkStreams(t *testing.T, r *recorder, conn *synth.Conn) {
	t.Helper()
	for _, d := range []struct {
		ours decode.Direction
		syn  synth.Dir
	}{{decode.ClientToServer, synth.ClientSide}, {decode.ServerToClient, synth.ServerSide}} {
		want := conn.Stream(d.syn)
		got := r.bytes[d.ours].Bytes()
		if !bytes.Equal(got, want.Bytes) {
			t.Errorf("%s: reassembled %d bytes, want %d\n got: %.120q\nwant: %.120q", d.ours, len(got), len(want.Bytes), got, want.Bytes)
		}
		lost := 0
		for _, g := range want.Gaps {
			lost += g.Len
		}
		if r.gaps[d.ours] != lost {
			t.Errorf("%s: gap bytes %d, want %d", d.ours, r.gaps[d.ours], lost)
		}
	}
}

func TestReassemblyLinksAndFaults(t *testing.T) {
	cases := []struct {
		name     string
		link     synth.Link
		vlan     uint16
		cli, srv netip.AddrPort
		file     string
		opts     []synth.StepOption
	}{
		{"ethernet", synth.LinkEthernet, 0, cli4, srv4, "a.pcap", nil},
		{"pcapng-gz", synth.LinkEthernet, 0, cli4, srv4, "a.pcapng.gz", nil},
		{"vlan-ipv6", synth.LinkEthernet, 42, cli6, srv6, "a.pcap", nil},
		{"sll", synth.LinkSLL, 0, cli4, srv4, "a.pcap", nil},
		{"sll2", synth.LinkSLL2, 0, cli6, srv6, "a.pcapng", nil},
		{"null", synth.LinkNull, 0, cli4, srv4, "a.pcap", nil},
		{"raw", synth.LinkRaw, 0, cli4, srv4, "a.pcap", nil},
		{"reorder", synth.LinkEthernet, 0, cli4, srv4, "a.pcap", []synth.StepOption{synth.Reorder(1), synth.Reorder(3)}},
		{"retransmit", synth.LinkEthernet, 0, cli4, srv4, "a.pcap", []synth.StepOption{synth.Retransmit(2), synth.Duplicate(4)}},
		{"overlap", synth.LinkEthernet, 0, cli4, srv4, "a.pcap", []synth.StepOption{synth.Resend(1000, 2000)}},
		{"fragments", synth.LinkEthernet, 0, cli4, srv4, "a.pcap", []synth.StepOption{synth.Fragment(2, 512, true)}},
		{"small-segments", synth.LinkEthernet, 0, cli4, srv4, "a.pcap", []synth.StepOption{synth.SegmentSize(7)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			capt := synth.NewCapture(c.link)
			conn := capt.Conn(c.cli, c.srv, synth.Options{VLAN: c.vlan})
			script(conn, c.opts...)
			if err := conn.Err(); err != nil {
				t.Fatal(err)
			}
			f, st := decodeCapture(t, capt, c.file)
			if len(f.conns) != 1 {
				t.Fatalf("want 1 connection, got %d (%+v)", len(f.conns), st)
			}
			r := f.conns[0]
			if r.info.Client != c.cli || r.info.Server != c.srv || r.info.Midstream {
				t.Errorf("conn info %+v", r.info)
			}
			checkStreams(t, r, conn)
			if r.nclose != 1 || r.closed != decode.CloseFIN {
				t.Errorf("closed %d times, reason %v", r.nclose, r.closed)
			}
		})
	}
}

func TestReassemblyLoss(t *testing.T) {
	capt := synth.NewCapture(synth.LinkEthernet)
	conn := capt.Conn(cli4, srv4, synth.Options{})
	script(conn, synth.Drop(3))
	f, st := decodeCapture(t, capt, "loss.pcap")
	if len(f.conns) != 1 {
		t.Fatalf("conns %d", len(f.conns))
	}
	checkStreams(t, f.conns[0], conn)
	if st.Gaps != 1 || st.GapBytes != 1460 {
		t.Errorf("stats gaps %d bytes %d", st.Gaps, st.GapBytes)
	}
}

func TestReassemblyMidstreamAndOneSided(t *testing.T) {
	capt := synth.NewCapture(synth.LinkEthernet)
	// Capture starts mid-connection; the server port decides the roles.
	mid := capt.Conn(srv4, cli4, synth.Options{Midstream: true}) // synth's "client" is our server here
	mid.Client("250 ok\r\n").Server("QUIT\r\n").Client("221 bye\r\n")
	one := capt.Conn(netip.MustParseAddrPort("192.0.2.11:40001"), srv4, synth.Options{Only: synth.ClientSide})
	one.Client("EHLO x\r\n").Client("QUIT\r\n").Close(synth.ClientSide)
	f, _ := decodeCapture(t, capt, "mid.pcap")
	if len(f.conns) != 2 {
		t.Fatalf("conns %d", len(f.conns))
	}
	m, o := f.conns[0], f.conns[1]
	if m.info.Client.Port() == 40001 {
		m, o = o, m
	}
	if !m.info.Midstream || m.info.Server != srv4 {
		t.Errorf("midstream conn: %+v", m.info)
	}
	if got := m.bytes[decode.ClientToServer].String(); got != "QUIT\r\n" {
		t.Errorf("midstream client bytes %q", got)
	}
	if got := m.bytes[decode.ServerToClient].String(); got != "250 ok\r\n221 bye\r\n" {
		t.Errorf("midstream server bytes %q", got)
	}
	if m.closed != decode.CloseEOF {
		t.Errorf("midstream close reason %v", m.closed)
	}
	if got := o.bytes[decode.ClientToServer].String(); got != "EHLO x\r\nQUIT\r\n" {
		t.Errorf("one-sided client bytes %q", got)
	}
}

func TestReassemblyPortReuse(t *testing.T) {
	capt := synth.NewCapture(synth.LinkEthernet)
	a := capt.Conn(cli4, srv4, synth.Options{})
	a.Server("220 first\r\n").Client("QUIT\r\n").Server("221 bye\r\n").Close(synth.ClientSide)
	b := capt.Conn(cli4, srv4, synth.Options{Start: a.Now().Add(time.Second)})
	b.Server("220 second\r\n").Client("QUIT\r\n").Server("221 bye\r\n").Reset(synth.ClientSide)
	f, st := decodeCapture(t, capt, "reuse.pcap")
	if len(f.conns) != 2 {
		t.Fatalf("want 2 sessions on one 4-tuple, got %d", len(f.conns))
	}
	if got := f.conns[1].bytes[decode.ServerToClient].String(); got != "220 second\r\n221 bye\r\n" {
		t.Errorf("second session server bytes %q", got)
	}
	if f.conns[0].info.ID == f.conns[1].info.ID {
		t.Error("sessions share an id")
	}
	if f.conns[1].closed != decode.CloseRST {
		t.Errorf("second closed by %v", f.conns[1].closed)
	}
	_ = st
}

func TestIdleTimeoutInCaptureTime(t *testing.T) {
	capt := synth.NewCapture(synth.LinkEthernet)
	a := capt.Conn(cli4, srv4, synth.Options{})
	a.Server("220 hi\r\n").Client("NOOP\r\n").Wait(20 * time.Minute).Server("250 ok\r\n")
	f, _ := decodeCapture(t, capt, "idle.pcap")
	if len(f.conns) != 2 {
		t.Fatalf("an idle gap of 20 minutes must split the session: got %d", len(f.conns))
	}
	if f.conns[0].closed != decode.CloseTimeout {
		t.Errorf("first closed by %v, want timeout", f.conns[0].closed)
	}
}

// TestTickClosesIdleConnections: on a silent wire, Tick (live mode) closes
// a connection idle past the timeout without waiting for another packet.
func TestTickClosesIdleConnections(t *testing.T) {
	capt := synth.NewCapture(synth.LinkEthernet)
	capt.Conn(cli4, srv4, synth.Options{}).Server("220 hi\r\n").Client("NOOP\r\n")
	pkts, err := capt.Packets()
	if err != nil {
		t.Fatal(err)
	}
	f := &recFactory{}
	e := New(Config{ServerPort: func(p uint16) bool { return p == 25 }}, f)
	for _, p := range pkts {
		e.Packet(p.Data, gopacket.CaptureInfo{Timestamp: p.Time, CaptureLength: len(p.Data), Length: len(p.Data)}, layers.LinkTypeEthernet)
	}
	last := pkts[len(pkts)-1].Time
	e.Tick(last.Add(time.Minute))
	if f.conns[0].nclose != 0 {
		t.Fatal("closed before the idle timeout")
	}
	e.Tick(last.Add(6 * time.Minute))
	e.Tick(last.Add(7 * time.Minute))
	if f.conns[0].nclose != 1 || f.conns[0].closed != decode.CloseTimeout {
		t.Fatalf("after 7 idle minutes: closed %d times, reason %v", f.conns[0].nclose, f.conns[0].closed)
	}
}

// TestHoleAckedByPeer: when the capture loses a segment that the peer
// acknowledges, the data after the hole reaches the decoder (with its gap)
// before the peer's next bytes, not at the next flush.
func TestHoleAckedByPeer(t *testing.T) {
	capt := synth.NewCapture(synth.LinkEthernet)
	conn := capt.Conn(cli4, srv4, synth.Options{})
	conn.Server("+OK ready\r\n").Client("RETR 1\r\n").
		Server("+OK\r\n"+strings.Repeat("body line\r\n", 600)+".\r\n", synth.Drop(1)).
		Client("QUIT\r\n").Server("+OK bye\r\n").Close(synth.ClientSide)
	f, _ := decodeCapture(t, capt, "hole.pcap")
	ev := strings.Join(f.conns[0].events, " ")
	gap := strings.Index(ev, "s2c:gap")
	quit := strings.LastIndex(ev, "c2s:6")
	if gap < 0 || quit < 0 || gap > quit {
		t.Fatalf("the server's gap must come before the client's QUIT: %s", ev)
	}
	checkStreams(t, f.conns[0], conn)
}

// TestIPv6ExtensionHeaders: TCP after an IPv6 hop-by-hop header still
// decodes, and its checksum (over the TCP bytes only) verifies.
func TestIPv6ExtensionHeaders(t *testing.T) {
	eth := &layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv6}
	ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolIPv6HopByHop, HopLimit: 64, SrcIP: cli6.Addr().AsSlice(), DstIP: srv6.Addr().AsSlice()}
	hop := &layers.IPv6HopByHop{}
	hop.NextHeader = layers.IPProtocolTCP
	hop.Options = []*layers.IPv6HopByHopOption{{OptionType: 1, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}}}
	var pkts [][]byte
	for i, p := range []struct {
		syn, ack bool
		seq      uint32
		data     string
		src      netip.AddrPort
	}{{true, false, 100, "", cli6}, {false, true, 101, "EHLO v6\r\n", cli6}} {
		tcp := &layers.TCP{SrcPort: layers.TCPPort(p.src.Port()), DstPort: layers.TCPPort(srv6.Port()), Seq: p.seq, SYN: p.syn, ACK: p.ack, Window: 1000}
		tcp.SetNetworkLayerForChecksum(ip)
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, hop, tcp, gopacket.Payload(p.data)); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		pkts = append(pkts, append([]byte(nil), buf.Bytes()...))
	}
	f := &recFactory{}
	e := New(Config{ServerPort: func(p uint16) bool { return p == 25 }, VerifyChecksums: true}, f)
	for i, p := range pkts {
		e.Packet(p, gopacket.CaptureInfo{Timestamp: synth.DefaultStart.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(p), Length: len(p)}, layers.LinkTypeEthernet)
	}
	e.Finish()
	st := e.Stats()
	if len(f.conns) != 1 || f.conns[0].bytes[decode.ClientToServer].String() != "EHLO v6\r\n" || st.BadChecksum != 0 {
		t.Fatalf("conns %d, stats %+v", len(f.conns), st)
	}
}

// writeCapture writes c to a file name in a test directory and returns
// its path.
func writeCapture(t testing.TB, c *synth.Capture, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := c.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// openCapture opens the capture at path, closed at the test's end.
func openCapture(t testing.TB, path string) *FileSource {
	t.Helper()
	src, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}
