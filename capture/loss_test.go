package capture

import (
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/mailtap/mailtap/capture/synth"
	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/dispatch"
)

// TestCaptureLoss reports a capture loss to an engine in the middle of a
// synthetic capture, as live.Run does when the kernel's drop counter
// grows, and checks the session records of the real decoders: the
// connections open at that moment carry capture_loss (also one whose
// decoder did not exist yet: no byte seen, on a mapped port and on a
// sniffed one), those closed before and opened after do not; a gap still
// makes its session partial with missing_bytes.
func TestCaptureLoss(t *testing.T) {
	t0 := synth.DefaultStart
	report := t0.Add(5 * time.Second)
	cli := func(port uint16) netip.AddrPort {
		return netip.AddrPortFrom(netip.MustParseAddr("192.0.2.10"), port)
	}
	srv := func(port uint16) netip.AddrPort {
		return netip.AddrPortFrom(netip.MustParseAddr("198.51.100.1"), port)
	}
	c := synth.NewCapture(synth.LinkEthernet)
	// open across the report, whole
	c.Conn(cli(40001), srv(25), synth.Options{Start: t0}).
		Server("220 mx ESMTP\r\n").Client("EHLO a\r\n").Server("250 mx\r\n").
		Wait(10 * time.Second).Client("QUIT\r\n").Server("221 bye\r\n").Close(synth.ClientSide)
	// open across the report, a segment lost after it
	c.Conn(cli(40002), srv(110), synth.Options{Start: t0, MSS: 8}).
		Server("+OK pop\r\n").Client("USER bob\r\n").Server("+OK\r\n").
		Wait(10*time.Second).Client("PASS secret\r\nQUIT\r\n", synth.Drop(1)).Server("+OK\r\n+OK bye\r\n").Close(synth.ClientSide)
	// handshake only before the report: no decoder yet, mapped port
	c.Conn(cli(40003), srv(143), synth.Options{Start: t0.Add(time.Second)}).
		Wait(10 * time.Second).Server("* OK ready\r\n").Client("a1 LOGOUT\r\n").Server("* BYE\r\na1 OK\r\n").Close(synth.ClientSide)
	// handshake only before the report: sniffed port
	c.Conn(cli(40004), srv(2525), synth.Options{Start: t0.Add(time.Second)}).
		Wait(10 * time.Second).Server("220 mx ESMTP\r\n").Client("QUIT\r\n").Server("221 bye\r\n").Close(synth.ClientSide)
	// closed before the report
	c.Conn(cli(40005), srv(25), synth.Options{Start: t0}).
		Server("220 mx ESMTP\r\n").Client("QUIT\r\n").Server("221 bye\r\n").Close(synth.ClientSide)
	// opened after the report
	c.Conn(cli(40006), srv(25), synth.Options{Start: report.Add(time.Second)}).
		Server("220 mx ESMTP\r\n").Client("QUIT\r\n").Server("221 bye\r\n").Close(synth.ClientSide)
	pkts, err := c.Packets()
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint16]bool{25: true, 110: true, 143: true, 2525: true}

	for _, workers := range []int{1, 2} {
		var mu sync.Mutex
		sessions := map[string]*decode.SessionRecord{}
		out := decode.SinkFunc(func(r decode.Record) {
			if s, ok := r.(*decode.SessionRecord); ok {
				mu.Lock()
				sessions[s.Client] = s
				mu.Unlock()
			}
		})
		ports := dispatch.DefaultPorts()
		e := NewParallel(Config{ServerPort: func(p uint16) bool { _, ok := ports[p]; return ok }}, workers, func(s decode.Sink) Factory {
			return dispatch.New(dispatch.Config{Ports: ports, Sniff: true, Sink: s, Protocols: dispatch.Protocols()})
		}, out)
		reported := false
		for _, p := range pkts {
			if !reported && !p.Time.Before(report) {
				e.CaptureLoss(report)
				reported = true
			}
			e.Packet(p.Data, gopacket.CaptureInfo{Timestamp: p.Time, CaptureLength: len(p.Data), Length: len(p.Data)}, layers.LinkTypeEthernet)
		}
		e.Finish()
		if !reported || len(sessions) != 6 {
			t.Fatalf("%d workers: reported %v, %d sessions", workers, reported, len(sessions))
		}
		for port := uint16(40001); port <= 40006; port++ {
			s := sessions[cli(port).String()]
			if s == nil {
				t.Fatalf("%d workers: no session from %v", workers, cli(port))
			}
			srvPort := s.ServerPort
			open := port <= 40004
			if got := slices.Contains(s.Anomalies, string(decode.AnomalyCaptureLoss)); got != open {
				t.Errorf("%d workers: session to :%d from :%d: capture_loss %v, want %v (anomalies %v)", workers, srvPort, port, got, open, s.Anomalies)
			}
			if !want[srvPort] {
				t.Errorf("session to unexpected port %d", srvPort)
			}
			switch port {
			case 40002:
				if s.State != decode.StatePartial || s.MissingBytes == 0 || !slices.Contains(s.Anomalies, string(decode.AnomalyGap)) {
					t.Errorf("%d workers: lossy POP3 session: state %s, missing_bytes %d, anomalies %v", workers, s.State, s.MissingBytes, s.Anomalies)
				}
			case 40001, 40005, 40006:
				if s.State != decode.StateComplete {
					t.Errorf("%d workers: session from :%d: state %s", workers, port, s.State)
				}
			}
		}
	}
}
