package capture

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mailtap/mailtap/capture/synth"
	"github.com/mailtap/mailtap/decode"
)

// swapper is a decoder that, like the dispatcher's sniffer, finds the roles
// reversed when the first bytes it gets as the client's are a greeting.
type swapper struct {
	info    decode.ConnInfo
	bytes   [3]bytes.Buffer
	swapped bool
	asked   int
}

func (s *swapper) RolesSwapped() bool { s.asked++; return s.swapped }

func (s *swapper) Data(dir decode.Direction, p []byte, _ time.Time) {
	if s.bytes[1].Len()+s.bytes[2].Len() == 0 && dir == decode.ClientToServer && bytes.HasPrefix(p, []byte("220 ")) {
		s.swapped = true
		dir = dir.Reverse() // the bytes it was given before telling capture
	}
	s.bytes[dir].Write(p)
}
func (s *swapper) Gap(decode.Direction, int, time.Time) {}
func (s *swapper) Close(decode.CloseReason, time.Time)  {}

// TestRoleSwap: a capture that starts mid-connection on a port nobody
// names, with the server's greeting first. capture takes the greeting's
// sender for the client (the ports say nothing), the decoder says the
// roles are reversed, and capture swaps them once: every later byte,
// reordered and flushed ones included, arrives with its true direction.
func TestRoleSwap(t *testing.T) {
	capt := synth.NewCapture(synth.LinkEthernet)
	cli := netip.MustParseAddrPort("192.0.2.29:50629")
	srv := netip.MustParseAddrPort("198.51.100.26:2526")
	c := capt.Conn(cli, srv, synth.Options{Midstream: true})
	c.Server("220 mx ESMTP\r\n").
		Client("EHLO a\r\n").
		Server("250 mx\r\n").
		Client(strings.Repeat("x", 4000), synth.Reorder(1)).
		Server("250 ok\r\n").
		Client(strings.Repeat("y", 3000), synth.Drop(0)).
		Wait(time.Minute).
		Server("221 bye\r\n").
		Close(synth.ServerSide)
	path := writeCapture(t, capt, "swap.pcap")
	for _, workers := range []int{1, 2} {
		src, err := OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var made []*swapper
		newFactory := func(decode.Sink) Factory {
			return FactoryFunc(func(c decode.ConnInfo) decode.Decoder {
				s := &swapper{info: c}
				made = append(made, s)
				return s
			})
		}
		var e *Engine
		if workers == 1 {
			e = New(Config{}, newFactory(nil))
		} else {
			e = NewParallel(Config{}, workers, newFactory, decode.SinkFunc(func(decode.Record) {}))
		}
		if err := e.Run(src, nil); err != nil {
			t.Fatal(err)
		}
		src.Close()
		if len(made) != 1 {
			t.Fatalf("%d workers: %d connections", workers, len(made))
		}
		s := made[0]
		if s.info.Client != srv {
			t.Fatalf("%d workers: capture's first guess %v -> %v; the test wants it wrong", workers, s.info.Client, s.info.Server)
		}
		if got, want := s.bytes[decode.ServerToClient].String(), "220 mx ESMTP\r\n250 mx\r\n250 ok\r\n221 bye\r\n"; got != want {
			t.Errorf("%d workers: server bytes %.60q (%d), want %q", workers, got, len(got), want)
		}
		if got, want := s.bytes[decode.ClientToServer].String(), "EHLO a\r\n"+strings.Repeat("x", 4000); !strings.HasPrefix(got, want) {
			t.Errorf("%d workers: client bytes %.40q..., want %.40q...", workers, got, want)
		}
		if st := e.Stats(); st.Conns != 1 {
			t.Errorf("%d workers: %d connections in stats", workers, st.Conns)
		}
	}
}
