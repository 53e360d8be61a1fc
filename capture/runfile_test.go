package capture

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailtap/mailtap/capture/synth"
	"github.com/mailtap/mailtap/decode"
)

func manyConns(t *testing.T, n int) string {
	t.Helper()
	capt := synth.NewCapture(synth.LinkEthernet)
	srv := netip.MustParseAddrPort("198.51.100.25:25")
	for i := 0; i < n; i++ {
		cli := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}), uint16(30000+i))
		capt.Conn(cli, srv, synth.Options{Start: synth.DefaultStart.Add(time.Duration(i) * time.Millisecond)}).
			Server("220 hi\r\n").Client("EHLO x\r\n").Server("250 ok\r\n").Close(synth.ClientSide)
	}
	path := writeCapture(t, capt, "many.pcap")
	return path
}

// TestRunFile: the whole file, with progress calls; a context cancelled
// part way stops the reading and still closes every connection opened so
// far exactly once; a missing file names its path once.
func TestRunFile(t *testing.T) {
	path := manyConns(t, 8000) // 72k packets
	src, err := OpenPath(path)
	if err != nil {
		t.Fatal(err)
	}
	f := &recFactory{}
	e := New(Config{}, f)
	var calls int
	var lastRead int64
	if err := RunFile(context.Background(), src, e, func(read, size int64) { calls++; lastRead = read }); err != nil {
		t.Fatal(err)
	}
	src.Close()
	if len(f.conns) != 8000 || e.Stats().Conns != 8000 {
		t.Fatalf("%d connections", len(f.conns))
	}
	if e.Stats().Packets < 1<<15 || calls != int(e.Stats().Packets>>16) || lastRead <= 0 {
		t.Errorf("%d progress calls for %d packets (last at %d bytes)", calls, e.Stats().Packets, lastRead)
	}

	src, err = OpenPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithCancel(context.Background())
	f = &recFactory{}
	e = New(Config{}, FactoryFunc(func(c decode.ConnInfo) decode.Decoder {
		if len(f.conns) == 100 {
			cancel()
		}
		return f.NewConn(c)
	}))
	err = RunFile(ctx, src, e, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v", err)
	}
	if n := len(f.conns); n < 100 || n > 200 {
		t.Errorf("%d connections after the cancel at 100", n)
	}
	for _, c := range f.conns {
		if c.nclose != 1 {
			t.Fatalf("connection %v closed %d times", c.info.Client, c.nclose)
		}
	}

	_, err = OpenPath(filepath.Join(t.TempDir(), "nope.pcap"))
	if err == nil || strings.Count(err.Error(), "nope.pcap") != 1 || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
