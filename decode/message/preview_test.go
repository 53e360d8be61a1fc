package message

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// refPreview is the preview as it was defined before it was computed in one
// pass from a bounded prefix: everything kept (up to previewKeep bytes)
// converted, split with strings.Fields, joined and clipped.
func refPreview(p *impl, charset string, data []byte) string {
	data = data[:min(len(data), previewKeep)]
	s := strings.Join(strings.Fields(p.convert(charset, data)), " ")
	if utf8.RuneCountInString(s) <= previewChars {
		return s
	}
	i := 0
	for n := previewChars; n > 0; n-- {
		_, w := utf8.DecodeRuneInString(s[i:])
		i += w
	}
	return s[:i]
}

// newPreview feeds data to a preview in pieces of size chunk, as a leaf
// does, and returns the preview Finish would give.
func newPreview(charset string, data []byte, chunk int) (string, *preview) {
	p := &impl{}
	k := &preview{charset: charset}
	for len(data) > 0 {
		n := min(chunk, len(data))
		k.add(data[:n])
		data = data[n:]
	}
	p.plain = k
	return p.previewText(), k
}

func checkPreview(t *testing.T, charset string, data []byte, chunk int) *preview {
	t.Helper()
	want := refPreview(&impl{}, charset, data)
	got, k := newPreview(charset, data, chunk)
	if got != want {
		t.Fatalf("charset %q, %d bytes in pieces of %d:\ngot  %q\nwant %q", charset, len(data), chunk, got, want)
	}
	return k
}

func TestPreviewSameAsFieldsJoin(t *testing.T) {
	words := []string{"a", "word", "Grüße", "naïve", " ", "  ", "\t", "\r\n", "\n\n", "\u00a0", "\u2003",
		"\u0085", "\xff", "\xc3", "\xe2\x82", ".", "x\x00y", "\v\f"}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 3000; i++ {
		var b bytes.Buffer
		n := rng.IntN(400)
		if i%10 == 0 {
			n = rng.IntN(20000) // longer than what settles a preview early
		}
		for j := 0; j < n; j++ {
			w := words[rng.IntN(len(words))]
			if rng.IntN(4) > 0 {
				w = words[rng.IntN(4)] // mostly plain words
			}
			b.WriteString(w)
		}
		for _, cs := range []string{"", "utf-8", "us-ascii", "iso-8859-1", "utf-16le"} {
			checkPreview(t, cs, b.Bytes(), 1+rng.IntN(5000))
		}
	}
}

func TestPreviewBoundedPrefix(t *testing.T) {
	long := bytes.Repeat([]byte("Plain words of a long message body.\r\n"), 2000) // 74 KB
	for _, cs := range []string{"", "us-ascii", "utf-8"} {
		k := checkPreview(t, cs, long, 1000)
		if !k.done || k.data != nil {
			t.Errorf("charset %q: a 74 KB ASCII body is still kept (%d bytes) after its preview was settled", cs, len(k.data))
		}
	}
	// UTF-8 declared: settled on valid UTF-8 too.
	k := checkPreview(t, "utf-8", bytes.Repeat([]byte("Grüße aus Köln, übermorgen. "), 3000), 777)
	if !k.done {
		t.Error("utf-8 body with umlauts: preview not settled early")
	}
	// Undeclared: one invalid byte at 50 KB turns the whole part to
	// Windows-1252, so a non-ASCII start must stay undecided.
	mixed := append(bytes.Repeat([]byte("Grüße aus Köln. "), 3000), 0xff)
	if k := checkPreview(t, "", mixed, 4096); k.done {
		t.Error("undeclared charset, non-ASCII text: preview settled before the charset is known")
	}
	// Leading white space longer than any early look: still the same.
	checkPreview(t, "", append(bytes.Repeat([]byte(" \r\n"), 30000), "late text"...), 1500)
	// The 200th character is the folded space.
	checkPreview(t, "", []byte(strings.Repeat("x", previewChars-1)+"   y"), 64)
}

func FuzzPreview(f *testing.F) {
	f.Add([]byte("Hello  world\r\n\r\nsecond line"), "", uint16(3))
	f.Add([]byte(strings.Repeat("ab \u00a0", 200)), "utf-8", uint16(100))
	f.Add([]byte("caf\xe9 cr\xe8me"), "iso-8859-1", uint16(1))
	f.Fuzz(func(t *testing.T, data []byte, charset string, chunk uint16) {
		checkPreview(t, charset, data, int(chunk)+1)
		got, _ := newPreview(charset, data, len(data)+1)
		if utf8.RuneCountInString(got) > previewChars {
			t.Fatalf("preview has %d characters", utf8.RuneCountInString(got))
		}
	})
}

func BenchmarkPreview(b *testing.B) {
	body := bytes.Repeat([]byte("Plain words of a long message body, folded.  \r\n"), 1400) // 64 KB
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		newPreview("utf-8", body, 4096)
	}
}

func BenchmarkFoldClip(b *testing.B) {
	text := []byte(strings.Repeat("1XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\r\n", 8))
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		foldClip(text, previewChars, utf8.DecodeRune, nil)
	}
}
