package capture

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/mailtap/mailtap/capture/synth"
	"github.com/mailtap/mailtap/decode"
)

// TestResetConnectionsReleased: a connection closed by an RST (from either
// side, with or without a handshake seen, with data in flight) or by FINs
// leaves nothing behind at once: no connection of ours, none in gopacket's
// pool (which, left alone, keeps a reset connection until the idle timeout,
// 5 minutes of capture time), and its decoder was closed exactly once.
func TestResetConnectionsReleased(t *testing.T) {
	capt := synth.NewCapture(synth.LinkEthernet)
	start := time.Date(2025, 3, 3, 12, 0, 0, 0, time.UTC)
	const n = 40
	for i := 0; i < n; i++ {
		cli := netip.AddrPortFrom(cli4.Addr(), uint16(41000+i))
		c := capt.Conn(cli, srv4, synth.Options{Start: start.Add(time.Duration(i) * time.Millisecond), Midstream: i%8 == 7})
		c.Server("220 hi\r\n").Client("EHLO x\r\nMAIL FROM:<a@example.test>\r\n")
		switch i % 4 {
		case 0:
			c.Server("250 ok\r\n").Reset(synth.ClientSide)
		case 1:
			c.Server("250 ok\r\n").Reset(synth.ServerSide)
		case 2:
			// the server resets with the client's bytes not yet answered
			c.Reset(synth.ServerSide)
		case 3:
			c.Server("250 ok\r\n").Client("QUIT\r\n").Server("221 bye\r\n").Close(synth.ClientSide)
		}
	}
	// Traffic the decoder gives up on (port 80): ignored, then reset.
	for i := 0; i < 4; i++ {
		cli := netip.AddrPortFrom(cli4.Addr(), uint16(42000+i))
		web := netip.AddrPortFrom(srv4.Addr(), 80)
		c := capt.Conn(cli, web, synth.Options{Start: start.Add(time.Second + time.Duration(i)*time.Millisecond)})
		c.Client("GET / HTTP/1.1\r\n\r\n").Server("HTTP/1.1 200 OK\r\n\r\n").Client("GET /2 HTTP/1.1\r\n\r\n").Reset(synth.ServerSide)
	}
	pkts, err := capt.Packets()
	if err != nil {
		t.Fatal(err)
	}
	f := &ignoreFactory{}
	e := New(Config{ServerPort: func(p uint16) bool { return p == 25 || p == 80 }}, f)
	for _, p := range pkts {
		e.Packet(p.Data, gopacket.CaptureInfo{Timestamp: p.Time, CaptureLength: len(p.Data), Length: len(p.Data)}, layers.LinkTypeEthernet)
	}
	w := e.set.ws[0].w
	if len(f.conns) != n || len(f.ignored) != 4 {
		t.Fatalf("%d connections decoded and %d ignored, want %d and 4", len(f.conns), len(f.ignored), n)
	}
	for i, r := range f.ignored {
		if r.nclose != 1 || r.closed != decode.CloseRST {
			t.Errorf("ignored connection %d: closed %d times, by %v; want once, by RST", i, r.nclose, r.closed)
		}
	}
	if len(w.conns) != 0 || w.streams != 0 {
		t.Errorf("after the last RST/FIN: %d connections tracked, %d in gopacket's pool; want none", len(w.conns), w.streams)
	}
	for i, r := range f.conns {
		want := decode.CloseRST
		if i%4 == 3 {
			want = decode.CloseFIN
		}
		if r.nclose != 1 || r.closed != want {
			t.Errorf("connection %d (%v): closed %d times, by %v; want once, by %v", i, r.info.Client, r.nclose, r.closed, want)
		}
		if got := r.bytes[decode.ClientToServer].String(); i%8 != 7 && got != "EHLO x\r\nMAIL FROM:<a@example.test>\r\n" && i%4 != 3 {
			t.Errorf("connection %d: client bytes %q", i, got)
		}
	}
	e.Finish()
}

// ignoreFactory records mail connections and ignores those to port 80
// after their first bytes, as the dispatcher does with what is not mail.
type ignoreFactory struct {
	recFactory
	ignored []*ignoring
}

type ignoring struct{ recorder }

func (*ignoring) Ignored() bool { return true }

func (f *ignoreFactory) NewConn(c decode.ConnInfo) decode.Decoder {
	if c.Server.Port() == 80 {
		r := &ignoring{recorder{info: c}}
		f.ignored = append(f.ignored, r)
		return r
	}
	return f.recFactory.NewConn(c)
}
