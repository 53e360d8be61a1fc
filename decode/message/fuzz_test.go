package message

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/mailtap/mailtap/decode"
)

// FuzzMessage: any input parses without panic, yields valid UTF-8 text,
// and the same summary whatever the chunking of Write: whole (runs of body
// lines are then decoded in one piece), in pieces of a fixed size, one
// byte at a time (line by line) and in pieces of random sizes; chunk also
// picks a MaxParse limit, cutting the input somewhere or not at all. The
// parsers are released, so the later ones reuse the earlier ones.
func FuzzMessage(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.eml"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(3))
		f.Add(b, uint8(12))
	}
	f.Fuzz(func(t *testing.T, b []byte, chunk uint8) {
		o := Options{MaxDepth: 6, MaxParse: int64(len(b)) * int64(chunk%8) / 8}
		whole := parseAll(b, o)
		r := rand.New(rand.NewPCG(uint64(chunk), uint64(len(b))))
		for _, c := range []struct {
			name string
			size func() int
		}{
			{fmt.Sprintf("chunk %d", int(chunk)+1), func() int { return int(chunk) + 1 }},
			{"1 byte", func() int { return 1 }},
			{"random chunks", func() int { return 1 + r.IntN(1+r.IntN(2*len(b)+1)) }},
		} {
			p := New(o)
			for rest := b; len(rest) > 0; {
				k := min(c.size(), len(rest))
				p.Write(rest[:k])
				rest = rest[k:]
			}
			m := p.Finish(false)
			g, w := summary(t, m), summary(t, whole)
			if !bytes.Equal(g, w) {
				t.Fatalf("%s changes the summary:\n%s\nvs whole:\n%s", c.name, g, w)
			}
			// The summary outlives the parser, which the next New
			// (the next case) may reuse.
			p.Release()
			if r := summary(t, m); !bytes.Equal(r, g) {
				t.Fatalf("Release changes the summary:\n%s\nwas:\n%s", r, g)
			}
		}
		checkUTF8(t, whole)
	})
}

func slicesChunk(b []byte, n int) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			k := min(n, len(b))
			if !yield(b[:k]) {
				return
			}
			b = b[k:]
		}
	}
}

func checkUTF8(t *testing.T, m *decode.Message) {
	t.Helper()
	s := []string{m.From, m.Subject, m.Date, m.MessageID, m.InReplyTo, m.UserAgent, m.ContentType, m.TextPreview}
	s = append(append(s, m.To...), m.Cc...)
	for _, a := range m.Attachments {
		s = append(s, a.Filename, a.ContentType)
	}
	for _, v := range s {
		if !utf8.ValidString(v) {
			t.Errorf("invalid UTF-8 in summary: %q", v)
		}
	}
	if utf8.RuneCountInString(m.TextPreview) > previewChars {
		t.Errorf("preview has %d characters", utf8.RuneCountInString(m.TextPreview))
	}
}
