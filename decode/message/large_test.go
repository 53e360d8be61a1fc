package message

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"math/rand/v2"
	"runtime"
	"testing"
)

// writeLarge streams a message with a base64 attachment of n raw bytes to
// w in Write calls of a few KiB, and returns the attachment's sha256.
func writeLarge(w func([]byte), n int, sample func()) string {
	w([]byte("From: big@example.com\r\nTo: r@example.net\r\nSubject: large\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"big\"\r\n\r\n" +
		"--big\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n" +
		"--big\r\nContent-Type: application/octet-stream; name=\"big.bin\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n"))
	h := sha256.New()
	r := rand.New(rand.NewPCG(7, 7))
	raw := make([]byte, 57*64)
	enc := make([]byte, 0, 78*64)
	for i := 0; n > 0; i++ {
		k := min(n, len(raw))
		for j := 0; j < k; j += 8 {
			v := r.Uint64()
			for b := 0; b < 8 && j+b < k; b++ {
				raw[j+b] = byte(v >> (8 * b))
			}
		}
		h.Write(raw[:k])
		enc = enc[:0]
		for j := 0; j < k; j += 57 {
			enc = base64.StdEncoding.AppendEncode(enc, raw[j:min(j+57, k)])
			enc = append(enc, '\r', '\n')
		}
		w(enc)
		n -= k
		if i%1024 == 0 {
			sample()
		}
	}
	w([]byte("--big--\r\n"))
	return hex.EncodeToString(h.Sum(nil))
}

// TestLargeMessage decodes a 200 MB message and checks that the heap stays
// small: nothing proportional to the message is kept.
func TestLargeMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("200 MB message: skipped with -short")
	}
	const raw = 150 << 20 // ~200 MB once base64-encoded
	runtime.GC()
	var ms runtime.MemStats
	var peak uint64
	sample := func() {
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
	}
	sample()
	base := peak
	p := New(Options{})
	sum := writeLarge(func(b []byte) { p.Write(b) }, raw, sample)
	m := p.Finish(false)
	sample()
	if m.Size < 200<<20 {
		t.Fatalf("message only %d bytes", m.Size)
	}
	if len(m.Attachments) != 1 || m.Attachments[0].Size != raw || m.Attachments[0].SHA256 != sum ||
		m.Attachments[0].Filename != "big.bin" || len(m.Anomalies) != 0 || m.TextPreview != "see attachment" {
		t.Fatalf("summary %+v", *m)
	}
	t.Logf("message %d bytes, heap in use: %d KiB before, peak %d KiB", m.Size, base>>10, peak>>10)
	if peak > base+16<<20 {
		t.Errorf("heap grew by %d KiB while decoding", (peak-base)>>10)
	}
}

func BenchmarkLargeMessage(b *testing.B) {
	var n int64
	for b.Loop() {
		p := New(Options{})
		writeLarge(func(c []byte) { p.Write(c) }, 16<<20, func() {})
		n = p.Finish(false).Size
	}
	b.SetBytes(n)
}

func BenchmarkNested(b *testing.B) {
	var buf bytes.Buffer
	writeLarge(func(c []byte) { buf.Write(c) }, 1<<20, func() {})
	b.SetBytes(int64(buf.Len()))
	for b.Loop() {
		p := New(Options{})
		for c := range bytes.Lines(buf.Bytes()) {
			p.Write(c)
		}
		p.Finish(false)
	}
}
