package capture

import (
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/mailtap/mailtap/decode"
)

// nopDecoder takes bytes and does nothing with them: the flood benchmark
// measures connection tracking, not decoding.
type nopDecoder struct{}

func (nopDecoder) Data(decode.Direction, []byte, time.Time) {}
func (nopDecoder) Gap(decode.Direction, int, time.Time)     {}
func (nopDecoder) Close(decode.CloseReason, time.Time)      {}

// floodPacket returns an Ethernet/IPv4/TCP packet with one payload byte
// from 10.0.0.1:1024 to 192.0.2.25:25; floodTuple rewrites its source.
func floodPacket(tb testing.TB) []byte {
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{192, 0, 2, 25}}
	tcp := &layers.TCP{SrcPort: 1024, DstPort: 25, Seq: 1000, Ack: 1, ACK: true, PSH: true, Window: 512}
	tcp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp, gopacket.Payload("x")); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// floodTuple makes p the i-th distinct 4-tuple (source address and port).
func floodTuple(p []byte, i int) {
	binary.BigEndian.PutUint16(p[14+12+2:], uint16(i>>16)) // source IP 10.0.x.y
	p[14+12+1] = 0
	binary.BigEndian.PutUint16(p[14+20:], uint16(1024+i%60000))
	p[14+12+1] = byte(i / 60000)
}

// BenchmarkFlood: a flood of distinct 4-tuples, one data segment each
// (issue: a SYN flood past --max-conns), with the table bounded at 10k
// connections: new connections per second must not fall as the flood
// grows from 10k to 2M tuples (eviction of the least recently active
// connection is O(1)). Each sub-benchmark feeds its N tuples once per
// iteration, 10 µs of capture time apart (the idle timeout of 1 s lets
// gopacket forget the evicted connections at the next flush).
func BenchmarkFlood(b *testing.B) {
	for _, n := range []int{10_000, 200_000, 2_000_000} {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			pkt := floodPacket(b)
			start := time.Date(2025, 3, 3, 12, 0, 0, 0, time.UTC)
			var evicted uint64
			b.ResetTimer()
			for it := 0; it < b.N; it++ {
				cfg := Config{MaxConns: 10_000, IdleTimeout: time.Second, FlushInterval: time.Second}
				e := New(cfg, FactoryFunc(func(decode.ConnInfo) decode.Decoder { return nopDecoder{} }))
				for i := 0; i < n; i++ {
					floodTuple(pkt, i)
					e.Packet(pkt, gopacket.CaptureInfo{Timestamp: start.Add(time.Duration(i) * 10 * time.Microsecond), CaptureLength: len(pkt), Length: len(pkt)}, layers.LinkTypeEthernet)
				}
				e.Finish()
				st := e.Stats()
				if st.Conns != uint64(n) {
					b.Fatalf("%d connections, want %d", st.Conns, n)
				}
				evicted = st.ConnsEvicted
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "conns/s")
			b.ReportMetric(float64(evicted), "evicted")
		})
	}
}

// TestEvictLeastRecentlyActive: at MaxConns, the connection evicted is
// the one idle longest, not the oldest: A, B, then A again, then C evicts
// B.
func TestEvictLeastRecentlyActive(t *testing.T) {
	pkt := floodPacket(t)
	start := time.Date(2025, 3, 3, 12, 0, 0, 0, time.UTC)
	f := &recFactory{}
	e := New(Config{MaxConns: 2}, f)
	for step, tuple := range []int{0, 1, 0, 2} {
		floodTuple(pkt, tuple)
		binary.BigEndian.PutUint32(pkt[14+20+4:], uint32(1000+step)) // a new byte each time
		e.Packet(pkt, gopacket.CaptureInfo{Timestamp: start.Add(time.Duration(step) * time.Second), CaptureLength: len(pkt), Length: len(pkt)}, layers.LinkTypeEthernet)
	}
	if len(f.conns) != 3 {
		t.Fatalf("%d connections", len(f.conns))
	}
	if a, b, c := f.conns[0].nclose, f.conns[1].nclose, f.conns[2].nclose; a != 0 || b != 1 || c != 0 {
		t.Errorf("closed: A %d, B %d, C %d; want only B", a, b, c)
	}
	if st := e.Stats(); st.ConnsEvicted != 1 {
		t.Errorf("evicted %d", st.ConnsEvicted)
	}
	e.Finish()
}
