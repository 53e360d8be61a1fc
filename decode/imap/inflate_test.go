package imap

import (
	"bytes"
	"compress/flate"
	"math/rand"
	"testing"
)

func deflate(t testing.TB, level int, chunks [][]byte) []byte {
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, level)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range chunks {
		w.Write(c)
		w.Flush()
	}
	return buf.Bytes()
}

func TestInflateMatchesFlate(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var chunks [][]byte
	for i := 0; i < 40; i++ {
		n := rng.Intn(3000)
		c := make([]byte, n)
		switch i % 3 {
		case 0: // text-like, compressible
			for j := range c {
				c[j] = "abcde fghij\r\n"[rng.Intn(13)]
			}
		case 1: // random: stored or literal-heavy blocks
			rng.Read(c)
		default: // long repeats
			for j := range c {
				c[j] = byte(j % 7)
			}
		}
		chunks = append(chunks, c)
	}
	want := bytes.Join(chunks, nil)
	for _, level := range []int{flate.NoCompression, flate.BestSpeed, flate.DefaultCompression, flate.BestCompression, flate.HuffmanOnly} {
		z := deflate(t, level, chunks)
		for _, step := range []int{1, 2, 7, 100, 1460, len(z)} {
			var got []byte
			f := newInflater(func(b []byte) { got = append(got, b...) })
			for i := 0; i < len(z); i += step {
				e := min(i+step, len(z))
				f.Write(z[i:e])
			}
			if f.Failed() {
				t.Fatalf("level %d step %d: failed", level, step)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("level %d step %d: got %d bytes, want %d", level, step, len(got), len(want))
			}
		}
	}
}

func TestInflateFlushBoundaries(t *testing.T) {
	// Each sync flush makes everything written so far decodable.
	chunks := [][]byte{[]byte("* OK hello\r\n"), []byte("a1 OK done\r\n"), bytes.Repeat([]byte("x"), 5000)}
	z := deflate(t, flate.DefaultCompression, chunks[:1])
	var got []byte
	f := newInflater(func(b []byte) { got = append(got, b...) })
	f.Write(z)
	if string(got) != "* OK hello\r\n" {
		t.Fatalf("got %q after first flush", got)
	}
}

func TestInflateCorrupt(t *testing.T) {
	f := newInflater(func([]byte) {})
	f.Write([]byte{0xff, 0xff, 0xff, 0xff})
	if !f.Failed() {
		t.Fatal("reserved block type not detected")
	}
}

func FuzzInflate(f *testing.F) {
	f.Add(deflate(f, 6, [][]byte{[]byte("hello hello hello")}), 3)
	f.Fuzz(func(t *testing.T, z []byte, step int) {
		if step <= 0 {
			step = 1
		}
		var a, b []byte
		fa := newInflater(func(p []byte) { a = append(a, p...) })
		fa.Write(z)
		fb := newInflater(func(p []byte) { b = append(b, p...) })
		for i := 0; i < len(z); i += step {
			fb.Write(z[i:min(i+step, len(z))])
		}
		if !bytes.Equal(a, b) || fa.Failed() != fb.Failed() {
			t.Fatalf("split changes output")
		}
		if !fa.Failed() {
			ref, err := readAllFlate(z)
			if err == nil && !bytes.Equal(ref, a) {
				t.Fatalf("differs from compress/flate")
			}
		}
	})
}

func readAllFlate(z []byte) ([]byte, error) {
	r := flate.NewReader(bytes.NewReader(z))
	var out bytes.Buffer
	_, err := out.ReadFrom(r)
	return out.Bytes(), err
}
