package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/pcapgo"
	"github.com/mailtap/mailtap/capture"
	"github.com/mailtap/mailtap/decode"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1GB": 1e9, "512MB": 512e6, "1.5G": 15e8, "64kb": 64e3, "100": 100, " 2 GB ": 2e9} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "GB", "-1GB", "x"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

func TestWithin(t *testing.T) {
	if !within("/a/b/c", "/a/b") || !within("/a/b", "/a/b") || within("/a/bc", "/a/b") || within("/tmp/x", "/a/b") {
		t.Error("within is wrong")
	}
}

type countConns struct {
	n     int
	bytes map[decode.Direction]int
}

type connCounter struct{ c *countConns }

func (c connCounter) Data(d decode.Direction, p []byte, _ time.Time) { c.c.bytes[d] += len(p) }
func (c connCounter) Gap(decode.Direction, int, time.Time)           {}
func (c connCounter) Close(decode.CloseReason, time.Time)            {}

// TestGenerate generates a small capture and checks it with the floor loop
// and the capture engine: every packet is TCP, every session is there.
func TestGenerate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.pcap")
	res, err := generate(genSpec{Path: path, Size: 1, MSS: 1460, Seed: 7, Batch: 12, MaxMsg: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	sessions := res.Sessions["smtp"] + res.Sessions["pop3"] + res.Sessions["imap"]
	if sessions != 12 || res.Packets == 0 || res.Payload == 0 {
		t.Fatalf("generated %+v", res)
	}
	fc, err := floor(path)
	if err != nil {
		t.Fatal(err)
	}
	if fc.Packets != res.Packets || fc.TCP != res.Packets {
		t.Errorf("floor read %+v, generator wrote %d packets", fc, res.Packets)
	}
	cc := &countConns{bytes: map[decode.Direction]int{}}
	eng := capture.New(capture.Config{}, capture.FactoryFunc(func(decode.ConnInfo) decode.Decoder {
		cc.n++
		return connCounter{cc}
	}))
	src, err := capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := eng.Run(src, nil); err != nil {
		t.Fatal(err)
	}
	if cc.n != sessions {
		t.Errorf("engine saw %d connections, want %d", cc.n, sessions)
	}
	if st := eng.Stats(); st.Gaps != 0 {
		t.Errorf("generated capture has %d gaps", st.Gaps)
	}
	if got := int64(cc.bytes[decode.ClientToServer] + cc.bytes[decode.ServerToClient]); got < res.Payload {
		t.Errorf("reassembled %d bytes, less than the %d bytes of messages", got, res.Payload)
	}
	// The required-work loop reassembles the same bytes as the engine
	// and hashes both halves of every session.
	rc, err := required(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(cc.bytes[decode.ClientToServer] + cc.bytes[decode.ServerToClient]); rc.Reassembled != want || rc.HashedStreams != int64(2*sessions) || rc.Packets != res.Packets {
		t.Errorf("required-work loop: %+v; engine reassembled %d bytes of %d sessions", rc, want, sessions)
	}
	// The same packets as pcapng: the floor and the required-work loop
	// read them alike.
	ng := filepath.Join(t.TempDir(), "g.pcapng")
	toPcapng(t, path, ng)
	if nc, err := floor(ng); err != nil || nc != fc {
		t.Errorf("floor of the pcapng copy: %+v, %v; of the pcap: %+v", nc, err, fc)
	}
	if nrc, err := required(ng, true); err != nil || nrc != rc {
		t.Errorf("required work on the pcapng copy: %+v, %v; on the pcap: %+v", nrc, err, rc)
	}
	if m := (&genResult{Sessions: res.Sessions, Messages: res.Messages}).check(recordCounts{}); !strings.Contains(m, "MISMATCH") {
		t.Errorf("check of empty counts: %q", m)
	}
}

// toPcapng copies the pcap file src to a pcapng file dst with pcapgo.
func toPcapng(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	r, err := pcapgo.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	w, err := pcapgo.NewNgWriter(out, r.LinkType())
	if err != nil {
		t.Fatal(err)
	}
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}
