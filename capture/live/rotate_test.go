package live

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/mailtap/mailtap/capture"
)

type testPacket struct {
	ci   gopacket.CaptureInfo
	data []byte
}

// capturePackets reads a project capture, re-timed to one packet every
// step so rotation by time has something to cut.
func capturePackets(t *testing.T, step time.Duration) ([]testPacket, layers.LinkType) {
	t.Helper()
	src, err := capture.OpenPath(filepath.Join("..", "..", "pcaps", "real-dovecot-imaplib.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var out []testPacket
	var link layers.LinkType
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for {
		data, ci, l, err := src.ReadPacket()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ci.Timestamp = base.Add(time.Duration(len(out)) * step)
		ci.CaptureLength = len(data)
		out = append(out, testPacket{ci, append([]byte(nil), data...)})
		link = l
	}
	return out, link
}

func writeRotated(t *testing.T, pkts []testPacket, link layers.LinkType, rot Rotation) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cap.pcapng")
	intf := pcapgo.DefaultNgInterface
	intf.LinkType = link
	intf.SnapLength = 262144
	p, err := newPcapWriterIntf(path, intf, "test", rot)
	if err != nil {
		t.Fatal(err)
	}
	for _, pk := range pkts {
		p.write(pk.ci, pk.data)
	}
	if err := p.close(Stats{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	return path
}

// readRotated reads files path, path1, path2 ... (or the ring names) in
// order and returns their packets per file.
func readFiles(t *testing.T, names []string) [][]testPacket {
	t.Helper()
	var files [][]testPacket
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var pkts []testPacket
		for {
			data, ci, err := r.ReadPacketData()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			pkts = append(pkts, testPacket{ci, data})
		}
		f.Close()
		files = append(files, pkts)
	}
	return files
}

func samePackets(t *testing.T, got, want []testPacket) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d packets, want %d", len(got), len(want))
	}
	for i := range got {
		if !got[i].ci.Timestamp.Equal(want[i].ci.Timestamp) || !bytes.Equal(got[i].data, want[i].data) {
			t.Fatalf("packet %d differs", i)
		}
	}
}

func rotatedNames(t *testing.T, path string, rot Rotation) []string {
	var names []string
	for n := 0; ; n++ {
		name := rot.Name(path, n)
		if _, err := os.Stat(name); err != nil {
			break
		}
		names = append(names, name)
	}
	return names
}

// TestRotateByTime: -G: each file spans less than Every of capture time,
// and the files hold every packet in order.
func TestRotateByTime(t *testing.T) {
	pkts, link := capturePackets(t, 10*time.Millisecond)
	rot := Rotation{Every: 250 * time.Millisecond}
	path := writeRotated(t, pkts, link, rot)
	names := rotatedNames(t, path, rot)
	span := time.Duration(len(pkts)-1) * 10 * time.Millisecond
	if want := int(span/rot.Every) + 1; len(names) != want {
		t.Fatalf("%d files for %v of packets, want %d", len(names), span, want)
	}
	var all []testPacket
	for i, f := range readFiles(t, names) {
		if d := f[len(f)-1].ci.Timestamp.Sub(f[0].ci.Timestamp); d >= rot.Every {
			t.Errorf("file %d spans %v", i, d)
		}
		all = append(all, f...)
	}
	samePackets(t, all, pkts)
}

// TestRotateBySize: -C: no file with more than one packet passes Bytes.
func TestRotateBySize(t *testing.T) {
	pkts, link := capturePackets(t, time.Millisecond)
	rot := Rotation{Bytes: 4096}
	path := writeRotated(t, pkts, link, rot)
	names := rotatedNames(t, path, rot)
	if len(names) < 3 || names[0] != path || names[1] != path+"1" {
		t.Fatalf("files %v", names)
	}
	files := readFiles(t, names)
	var all []testPacket
	for i, name := range names {
		st, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > rot.Bytes && len(files[i]) > 1 {
			t.Errorf("%s: %d bytes, %d packets", name, st.Size(), len(files[i]))
		}
		all = append(all, files[i]...)
	}
	samePackets(t, all, pkts)
}

// TestRotateRing: -W: a ring of Files files, the newest packets kept.
func TestRotateRing(t *testing.T) {
	pkts, link := capturePackets(t, time.Millisecond)
	rot := Rotation{Bytes: 4096, Files: 3}
	path := writeRotated(t, pkts, link, rot)
	if got := rot.Name(path, 4); got != path+"1" {
		t.Errorf("Name(4) = %q", got)
	}
	matches, _ := filepath.Glob(path + "*")
	if len(matches) != 3 {
		t.Fatalf("files %v, want 3", matches)
	}
	// Which file is newest: the one holding the last packet; the ring
	// read from the one after it holds a tail of the capture in order.
	files := readFiles(t, []string{rot.Name(path, 0), rot.Name(path, 1), rot.Name(path, 2)})
	newest := -1
	for i, f := range files {
		if len(f) > 0 && f[len(f)-1].ci.Timestamp.Equal(pkts[len(pkts)-1].ci.Timestamp) {
			newest = i
		}
	}
	if newest < 0 {
		t.Fatal("no file holds the last packet")
	}
	var tail []testPacket
	for k := 1; k <= 3; k++ {
		tail = append(tail, files[(newest+k)%3]...)
	}
	samePackets(t, tail, pkts[len(pkts)-len(tail):])
	if len(tail) >= len(pkts) {
		t.Errorf("the ring kept all %d packets", len(pkts))
	}
}
