package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

// ngBlock encodes one pcapng block.
func ngBlock(o orderAppender, typ uint32, body []byte) []byte {
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	b := o.AppendUint32(nil, typ)
	b = o.AppendUint32(b, uint32(12+len(body)))
	b = append(b, body...)
	return o.AppendUint32(b, uint32(12+len(body)))
}

func ngFile(o orderAppender, secrets ...string) []byte {
	shb := o.AppendUint32(nil, 0x1A2B3C4D)
	shb = o.AppendUint16(shb, 1)
	shb = o.AppendUint16(shb, 0)
	shb = o.AppendUint64(shb, ^uint64(0))
	idb := o.AppendUint16(nil, 1) // Ethernet
	idb = o.AppendUint16(idb, 0)
	idb = o.AppendUint32(idb, 65535)
	pkt := make([]byte, 60) // an Ethernet frame of zeros
	epb := o.AppendUint32(nil, 0)
	epb = o.AppendUint32(epb, 0)
	epb = o.AppendUint32(epb, 1)
	epb = o.AppendUint32(epb, uint32(len(pkt)))
	epb = o.AppendUint32(epb, uint32(len(pkt)))
	epb = append(epb, pkt...)
	dsb := func(s string) []byte {
		b := o.AppendUint32(nil, SecretsTLSKeyLog)
		b = o.AppendUint32(b, uint32(len(s)))
		return ngBlock(o, ngBlockDSB, append(b, s...))
	}
	f := ngBlock(o, ngBlockSHB, shb)
	f = append(f, ngBlock(o, 1, idb)...)
	if len(secrets) > 0 {
		f = append(f, dsb(secrets[0])...)
	}
	f = append(f, ngBlock(o, 6, epb)...)
	for _, s := range secrets[min(1, len(secrets)):] {
		f = append(f, dsb(s)...)
		f = append(f, ngBlock(o, 6, epb)...)
	}
	return f
}

// TestDSBScanner: the secrets of every block are found, at the start and
// after packets, in either byte order, however the bytes are cut.
func TestDSBScanner(t *testing.T) {
	want := []string{"CLIENT_RANDOM aa bb\n", "SERVER_TRAFFIC_SECRET_0 cc dd\n# odd length", "x"}
	for _, o := range []orderAppender{binary.LittleEndian, binary.BigEndian} {
		for _, oneByte := range []bool{false, true} {
			var got []string
			var r io.Reader = bytes.NewReader(ngFile(o, want...))
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			s := &dsbScanner{r: r, found: func(typ uint32, data []byte) {
				if typ == SecretsTLSKeyLog {
					got = append(got, string(data))
				}
			}}
			if _, err := io.ReadAll(s); err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "|") != strings.Join(want, "|") || s.bad {
				t.Fatalf("%v one byte %v: got %q (bad %v)", o, oneByte, got, s.bad)
			}
		}
	}
	// Garbage: no panic, nothing found.
	s := &dsbScanner{r: bytes.NewReader([]byte("\x0a\x0d\x0d\x0a\xff\xff\xff\xff\x00\x00\x00\x00")), found: func(uint32, []byte) { t.Fatal("found secrets in garbage") }}
	io.ReadAll(s)
	if !s.bad {
		t.Fatal("bad block structure not noticed")
	}
}

// TestOpenFileSecrets: FileSource hands the secrets over, also those read
// while the file was opened (before OnSecrets), and packets still read.
func TestOpenFileSecrets(t *testing.T) {
	p := filepath.Join(t.TempDir(), "dsb.pcapng")
	if err := os.WriteFile(p, ngFile(binary.LittleEndian, "first\n", "second\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := OpenFile(p)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var got []string
	src.OnSecrets(func(typ uint32, data []byte) { got = append(got, string(data)) })
	n, err := countPackets(src)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || strings.Join(got, "") != "first\nsecond\n" {
		t.Fatalf("%d packets, secrets %q", n, got)
	}
}

// countPackets reads src to its end and counts the packets.
func countPackets(src *FileSource) (int, error) {
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

// TestEditcapSecrets reads a file made by editcap --inject-secrets.
func TestEditcapSecrets(t *testing.T) {
	editcap, err := exec.LookPath("editcap")
	if err != nil {
		t.Skip("editcap not installed")
	}
	dir := t.TempDir()
	in := filepath.Join("..", "pcaps", "gen-smtp-starttls.pcap")
	keys := filepath.Join(dir, "keys.log")
	line := "CLIENT_RANDOM " + strings.Repeat("ab", 32) + " " + strings.Repeat("cd", 48) + "\n"
	if err := os.WriteFile(keys, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.pcapng")
	if b, err := exec.Command(editcap, "-F", "pcapng", "--inject-secrets", "tls,"+keys, in, out).CombinedOutput(); err != nil {
		t.Fatalf("editcap: %v\n%s", err, b)
	}
	src, err := OpenFile(out)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var got string
	src.OnSecrets(func(typ uint32, data []byte) {
		if typ == SecretsTLSKeyLog {
			got += string(data)
		}
	})
	for {
		if _, _, _, err := src.ReadPacket(); err != nil {
			break
		}
	}
	if got != line {
		t.Fatalf("secrets %q", got)
	}
}

type orderAppender interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

// FuzzDSBScanner: any byte stream, cut anywhere: no panic, the bytes pass
// through unchanged, and the secrets found do not depend on the cuts.
func FuzzDSBScanner(f *testing.F) {
	f.Add(ngFile(binary.LittleEndian, "CLIENT_RANDOM aa bb\n", "x"), uint8(7))
	f.Add(ngFile(binary.BigEndian, "k"), uint8(1))
	f.Add([]byte("\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x4d\x3c\x2b\x1a"), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		scan := func(r io.Reader) ([]byte, []string) {
			var got []string
			s := &dsbScanner{r: r, found: func(typ uint32, d []byte) { got = append(got, fmt.Sprint(typ, string(d))) }}
			out, _ := io.ReadAll(s)
			return out, got
		}
		out1, got1 := scan(bytes.NewReader(data))
		out2, got2 := scan(&cutReader{data: data, n: int(cut%16) + 1})
		if !bytes.Equal(out1, data) || !bytes.Equal(out2, data) {
			t.Fatal("bytes changed on the way through")
		}
		if strings.Join(got1, "|") != strings.Join(got2, "|") {
			t.Fatalf("secrets depend on the cuts: %q vs %q", got1, got2)
		}
	})
}

// FuzzScanSecrets: any file: no panic, and the secrets found do not
// depend on the window (12 bytes: a read per block header, as ScanSecrets
// read before it had windows; 64 bytes; scanWindow).
func FuzzScanSecrets(f *testing.F) {
	f.Add(ngFile(binary.LittleEndian, "CLIENT_RANDOM aa bb\n", "x", "yz"))
	f.Add(ngFile(binary.BigEndian, "k"))
	f.Add([]byte("\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x4d\x3c\x2b\x1a"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "f.pcapng")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		var first []string
		for i, w := range []int{12, 64, scanWindow} {
			var got []string
			ok, err := scanSecrets(p, func(typ uint32, d []byte) { got = append(got, fmt.Sprint(typ, string(d))) }, w)
			if err != nil {
				t.Fatal(err)
			}
			if ok != (len(data) >= 12 && binary.LittleEndian.Uint32(data) == ngBlockSHB) {
				t.Fatalf("window %d: ok %v", w, ok)
			}
			if i == 0 {
				first = got
			} else if strings.Join(got, "|") != strings.Join(first, "|") {
				t.Fatalf("window %d: %q, window 12: %q", w, got, first)
			}
		}
	})
}

// cutReader returns at most n bytes per Read.
type cutReader struct {
	data []byte
	n    int
}

func (c *cutReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.data)
	c.data = c.data[k:]
	return k, nil
}

// TestScanSecrets: the secrets of a pcapng file before decoding, in either
// byte order; not for pcap.
func TestScanSecrets(t *testing.T) {
	dir := t.TempDir()
	for i, o := range []orderAppender{binary.LittleEndian, binary.BigEndian} {
		p := filepath.Join(dir, fmt.Sprintf("%d.pcapng", i))
		if err := os.WriteFile(p, ngFile(o, "first\n", "second\n", "third"), 0o600); err != nil {
			t.Fatal(err)
		}
		var got []string
		ok, err := ScanSecrets(p, func(typ uint32, data []byte) {
			if typ == SecretsTLSKeyLog {
				got = append(got, string(data))
			}
		})
		if !ok || err != nil || strings.Join(got, "") != "first\nsecond\nthird" {
			t.Fatalf("%v: ok %v err %v secrets %q", o, ok, err, got)
		}
	}
	if ok, err := ScanSecrets(filepath.Join("..", "pcaps", "smtp-basic.pcap"), func(uint32, []byte) { t.Fatal("secrets in a pcap") }); ok || err != nil {
		t.Fatalf("pcap: ok %v err %v", ok, err)
	}
}

// TestScanSecretsWindows: ScanSecrets reads the file in windows; secrets
// are found wherever their blocks fall against the windows' edges (block
// headers cut by an edge, blocks longer than a window), in order, the same
// as the reader's own scanner finds them; a file cut anywhere gives the
// secrets of the whole blocks before the cut.
func TestScanSecretsWindows(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 15))
	for i := range 24 {
		o := []orderAppender{binary.LittleEndian, binary.BigEndian}[i%2]
		file := ngFile(o)
		var want []string
		for len(file) < 3*scanWindow {
			// A packet block of 32 bytes to 160 KB, then perhaps secrets;
			// every other file of small blocks only, so that the windows'
			// edges cut block headers at every offset.
			sizes := []int{8, 1024, 40000}
			if i%4 >= 2 {
				sizes = []int{2, 8, 24}
			}
			epb := make([]byte, 20+4*rng.IntN(sizes[rng.IntN(3)]))
			file = append(file, ngBlock(o, 6, epb)...)
			if rng.IntN(3) == 0 {
				s := fmt.Sprintf("CLIENT_RANDOM %d %d\n", i, len(want))
				b := o.AppendUint32(nil, SecretsTLSKeyLog)
				b = o.AppendUint32(b, uint32(len(s)))
				file = append(file, ngBlock(o, ngBlockDSB, append(b, s...))...)
				want = append(want, s)
			}
		}
		p := filepath.Join(dir, fmt.Sprintf("%d.pcapng", i))
		if err := os.WriteFile(p, file, 0o600); err != nil {
			t.Fatal(err)
		}
		var got, streamed []string
		if ok, err := ScanSecrets(p, func(typ uint32, data []byte) { got = append(got, string(data)) }); !ok || err != nil {
			t.Fatalf("file %d: ok %v err %v", i, ok, err)
		}
		s := &dsbScanner{r: bytes.NewReader(file), found: func(typ uint32, data []byte) { streamed = append(streamed, string(data)) }}
		if _, err := io.ReadAll(s); err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, "") != strings.Join(want, "") || strings.Join(streamed, "") != strings.Join(want, "") {
			t.Fatalf("file %d (%d bytes): scanned %d secrets, streamed %d, want %d", i, len(file), len(got), len(streamed), len(want))
		}
		// Cut: only whole blocks count, so a prefix of the secrets.
		cut := rng.IntN(len(file))
		if err := os.WriteFile(p, file[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		ScanSecrets(p, func(typ uint32, data []byte) { got = append(got, string(data)) })
		if len(got) > len(want) || strings.Join(got, "") != strings.Join(want[:len(got)], "") {
			t.Fatalf("file %d cut at %d: %q is not a prefix of the secrets", i, cut, got)
		}
	}
}
