package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// readAll opens data as a capture file and reads every packet, returning
// the packet count and the error that ended the read (nil for a clean end).
func readAll(t *testing.T, data []byte) (int, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cut")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := OpenFile(path)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	n := 0
	for {
		_, _, _, err := src.ReadPacket()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
	}
}

// TestPcapngTruncated: a pcapng file cut anywhere inside a block ends with
// ErrTruncated (as pcap and gzip do), one cut at a block boundary ends
// cleanly, and what came before the cut is read either way.
func TestPcapngTruncated(t *testing.T) {
	data, err := os.ReadFile("../pcaps/gen-smtp-sll2.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	whole, err := readAll(t, data)
	if err != nil || whole == 0 {
		t.Fatalf("whole file: %d packets, %v", whole, err)
	}
	// Block boundaries (the file is little-endian).
	bound := map[int]bool{}
	firstPacket := 0
	for off := 0; off+8 <= len(data); {
		bound[off] = true
		if firstPacket == 0 && binary.LittleEndian.Uint32(data[off:]) == 6 {
			firstPacket = off
		}
		off += int(binary.LittleEndian.Uint32(data[off+4:]))
	}
	bound[len(data)] = true
	for cut := 0; cut <= len(data); cut++ {
		if cut%5 != 0 && !bound[cut-1] && !bound[cut] && !bound[cut+1] {
			continue // every fifth offset, and each side of every boundary
		}
		n, err := readAll(t, data[:cut])
		switch {
		case cut < firstPacket:
			// Cut in the section or interface header: OpenFile fails.
			if err == nil && !bound[cut] {
				t.Errorf("cut at %d, in the file's headers: no error", cut)
			}
		case bound[cut] && err != nil:
			t.Errorf("cut at block boundary %d: %v", cut, err)
		case !bound[cut] && !errors.Is(err, ErrTruncated):
			t.Errorf("cut at %d (inside a block): %d packets, err %v, want ErrTruncated", cut, n, err)
		}
		if n > whole {
			t.Fatalf("cut at %d: %d packets of %d", cut, n, whole)
		}
	}
	// The same through gzip.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data[:1324])
	zw.Close()
	if _, err := readAll(t, gz.Bytes()); !errors.Is(err, ErrTruncated) {
		t.Errorf("gzip-compressed cut pcapng: %v, want ErrTruncated", err)
	}
}

// FuzzNgBlocks: any bytes, read in any chunk sizes, pass through
// unchanged, and the end is io.EOF exactly when no block is open.
func FuzzNgBlocks(f *testing.F) {
	data, _ := os.ReadFile("../pcaps/gen-smtp-sll2.pcapng")
	f.Add(data[:200], uint8(7))
	f.Add(data[:1324], uint8(1))
	f.Add([]byte{0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0x1c, 0x1a, 0x2b, 0x3c, 0x4d}, uint8(3))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		b := &ngBlocks{r: &chunked{data: in, n: int(chunk%32) + 1}}
		var out bytes.Buffer
		_, err := io.Copy(&out, b)
		if !bytes.Equal(out.Bytes(), in) {
			t.Fatalf("bytes changed")
		}
		open := b.hn > 0 || b.inBody
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) || err == nil && open {
			t.Fatalf("err %v with a block open: %v", err, open)
		}
	})
}

// chunked returns at most n bytes per Read.
type chunked struct {
	data []byte
	n    int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	k := min(len(p), c.n, len(c.data))
	copy(p, c.data[:k])
	c.data = c.data[k:]
	return k, nil
}
