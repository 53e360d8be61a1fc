package capture

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/mailtap/mailtap/capture/synth"
	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/dispatch"
)

// fuzzConfig bounds the engine tightly, so that what the fuzzer builds
// stays small and the bounds are exercised.
var fuzzConfig = Config{MaxConns: 8, MaxBufferedPagesPerConn: 16, MaxBufferedPagesTotal: 64, MaxOverlapBytes: 256}

// engineSeeds are small captures of each protocol and framing: pcap,
// pcapng, gzip, loss and reordering, a midstream greeting on an unmapped
// port, and the smallest committed captures.
func engineSeeds(f *testing.F) [][]byte {
	var out [][]byte
	add := func(c *synth.Capture, format synth.Format) {
		var b bytes.Buffer
		if err := c.Write(&b, format); err != nil {
			f.Fatal(err)
		}
		out = append(out, b.Bytes())
	}
	cli := netip.MustParseAddrPort("192.0.2.10:40000")
	c := synth.NewCapture(synth.LinkEthernet)
	c.Conn(cli, netip.MustParseAddrPort("198.51.100.1:25"), synth.Options{MSS: 40}).
		Server("220 mx ESMTP\r\n").Client("EHLO a\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n", synth.Reorder(0)).
		Server("250 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n").Client("Subject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n", synth.Drop(0)).
		Server("250 queued\r\n221 bye\r\n").Close(synth.ClientSide)
	add(c, synth.FormatPcap)
	c = synth.NewCapture(synth.LinkEthernet)
	c.Conn(cli, netip.MustParseAddrPort("198.51.100.1:143"), synth.Options{}).
		Server("* OK ready\r\n").Client("a1 LOGIN bob {3}\r\n").Server("+ go\r\n").Client("pw!\r\na2 SELECT INBOX\r\n").
		Server("a1 OK\r\n* 1 EXISTS\r\na2 OK\r\n").Client("a3 FETCH 1 BODY[]\r\n").
		Server("* 1 FETCH (BODY[] {12}\r\nSubject: x\r\n)\r\na3 OK\r\n").Reset(synth.ServerSide)
	add(c, synth.FormatPcapng)
	c = synth.NewCapture(synth.LinkEthernet)
	c.Conn(cli, netip.MustParseAddrPort("198.51.100.1:2526"), synth.Options{Midstream: true}).
		Server("+OK pop\r\n").Client("USER u\r\nPASS p\r\nRETR 1\r\n").Server("+OK\r\n+OK\r\n+OK\r\nSubject: y\r\n\r\n.\r\n")
	add(c, synth.FormatPcap)
	c = synth.NewCapture(synth.LinkEthernet)
	c.Conn(cli, netip.MustParseAddrPort("198.51.100.1:25"), synth.Options{MSS: 24, SYNData: "EHLO a\r\n"}).
		Server("220 mx ESMTP\r\n").Client("MAIL FROM:<a@b.c>\r\nRCPT TO:<c@d.e>\r\n", synth.Forge(12, "x@y", true), synth.Forge(3, "L FRAM:<", false), synth.Resend(20, 10)).
		Server("250 ok\r\n250 ok\r\n").Close(synth.ClientSide)
	add(c, synth.FormatPcap)
	for _, name := range []string{"gen-smtp-oneside.pcap", "gen-smtp-midstream-greeting.pcap", "gen-pop3-midstream.pcap", "gen-imap-midstream.pcap", "gen-smtp-sll2.pcapng", "gen-smtp-frag.pcap"} {
		if b, err := os.ReadFile(filepath.Join("..", "pcaps", name)); err == nil && len(b) < 8<<10 {
			out = append(out, b)
		}
	}
	return out
}

// FuzzEngine feeds capture-file bytes through the whole capture side:
// file parser (pcap, pcapng, gzip), packet parser, defragmentation,
// reassembly, the dispatcher's sniffing and the protocol decoders, with 1
// to 3 workers. Nothing may panic; every record must marshal to JSON; the
// connection table never holds more than MaxConns; the decoders never get
// more bytes than the packets carried. More seeds in
// testdata/fuzz/FuzzEngine.
func FuzzEngine(f *testing.F) {
	for _, b := range engineSeeds(f) {
		f.Add(b, uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, workers uint8) {
		if len(data) > 1<<20 {
			return
		}
		src, err := OpenReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		defer src.Close()
		n := 1 + int(workers%3)
		// Emit runs on the merger's goroutine with several workers:
		// failures are collected, not reported from there.
		var records int
		var bad error
		var got []string
		out := decode.SinkFunc(func(r decode.Record) {
			records++
			b, err := json.Marshal(r)
			if err != nil && bad == nil {
				bad = fmt.Errorf("record %T does not marshal: %v", r, err)
			}
			got = append(got, string(b))
		})
		ports := dispatch.DefaultPorts()
		newFactory := func(s decode.Sink) Factory {
			return dispatch.New(dispatch.Config{
				Ports: ports, Sniff: true, Sink: s, Protocols: dispatch.Protocols(),
				Options: decode.Options{Level: decode.LevelCommands, MaxLine: 1024, MaxMessage: 8 << 10, MaxLiteral: 8 << 10},
			})
		}
		cfg := fuzzConfig
		cfg.ServerPort = func(p uint16) bool { _, ok := ports[p]; return ok }
		cfg.CountChecksums = workers&4 != 0
		e := NewParallel(cfg, n, newFactory, out)
		for {
			pkt, ci, link, err := src.ReadPacket()
			if err != nil {
				break
			}
			e.Packet(pkt, ci, link)
			if n == 1 {
				if held := len(e.set.ws[0].w.conns); held > cfg.MaxConns {
					t.Fatalf("%d connections tracked, MaxConns %d", held, cfg.MaxConns)
				}
			}
		}
		e.Finish()
		if bad != nil {
			t.Fatal(bad)
		}
		st := e.Stats()
		if st.DeliveredByte > st.PayloadBytes {
			t.Fatalf("decoders got %d bytes of %d payload bytes", st.DeliveredByte, st.PayloadBytes)
		}
		if st.Conns == 0 && records > 0 {
			t.Fatalf("%d records without a connection", records)
		}
		// Again through Run, which keeps the bytes overlaps are compared
		// with as offsets into the input (overlap.go's ref mode) where
		// it can: the same records.
		src2, err := OpenReader(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("opened once, not twice: %v", err)
		}
		var again []string
		e2 := NewParallel(cfg, n, newFactory, decode.SinkFunc(func(r decode.Record) {
			b, _ := json.Marshal(r)
			again = append(again, string(b))
		}))
		e2.Run(src2, nil)
		if !slices.Equal(got, again) {
			t.Fatalf("kept bytes read back from the input and copied: different records\n%q\n%q", got, again)
		}
	})
}

// TestHugeSnaplen: a pcap header may claim any snaplen; reading must not
// allocate by it (pcapgo sized its buffer by it: 4 GB for 0xfffffff0).
func TestHugeSnaplen(t *testing.T) {
	c := synth.NewCapture(synth.LinkEthernet)
	c.Conn(netip.MustParseAddrPort("192.0.2.10:40000"), netip.MustParseAddrPort("198.51.100.1:25"), synth.Options{}).
		Server("220 mx\r\n").Close(synth.ServerSide)
	var b bytes.Buffer
	if err := c.Write(&b, synth.FormatPcap); err != nil {
		t.Fatal(err)
	}
	data := b.Bytes()
	copy(data[16:20], []byte{0xf0, 0xff, 0xff, 0xff}) // little-endian snaplen
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	src, err := OpenReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		if _, _, _, err := src.ReadPacket(); err != nil {
			break
		}
		n++
	}
	runtime.ReadMemStats(&after)
	if n == 0 {
		t.Fatal("no packet read")
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
		t.Errorf("reading %d packets allocated %d MB", n, got>>20)
	}
}

// TestHugePcapngLengths: neither an interface's snaplen nor a packet
// block's capture length may make reading allocate by it.
func TestHugePcapngLengths(t *testing.T) {
	c := synth.NewCapture(synth.LinkEthernet)
	c.Conn(netip.MustParseAddrPort("192.0.2.10:40000"), netip.MustParseAddrPort("198.51.100.1:25"), synth.Options{}).
		Server("220 mx\r\n").Close(synth.ServerSide)
	var b bytes.Buffer
	if err := c.Write(&b, synth.FormatPcapng); err != nil {
		t.Fatal(err)
	}
	le := func(d []byte, at int) int { return int(d[at]) | int(d[at+1])<<8 | int(d[at+2])<<16 | int(d[at+3])<<24 }
	idb := le(b.Bytes(), 4)
	epb := idb + le(b.Bytes(), idb+4)
	huge := []byte{0xf0, 0xff, 0xff, 0xff}
	for _, c := range []struct {
		name    string
		at      int
		packets bool
	}{{"snaplen", idb + 12, true}, {"zero snaplen", -1, true}, {"capture length", epb + 20, false}} {
		data := bytes.Clone(b.Bytes())
		if c.at >= 0 {
			copy(data[c.at:], huge)
		} else {
			copy(data[idb+12:], []byte{0, 0, 0, 0})
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		src, err := OpenReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			if _, _, _, err = src.ReadPacket(); err != nil {
				break
			}
			n++
		}
		runtime.ReadMemStats(&after)
		if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
			t.Errorf("%s: reading allocated %d MB", c.name, got>>20)
		}
		if c.packets && n == 0 || !c.packets && (n != 0 || err == nil || err == io.EOF) {
			t.Errorf("%s: %d packets, then %v", c.name, n, err)
		}
	}
}
