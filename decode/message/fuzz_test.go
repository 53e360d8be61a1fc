package message

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/mailtap/mailtap/decode"
)

// FuzzMessage: any input parses without panic, yields valid UTF-8 text,
// and the same summary whatever the chunking of Write.
func FuzzMessage(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.eml"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(3))
	}
	f.Fuzz(func(t *testing.T, b []byte, chunk uint8) {
		whole := parseAll(b, Options{MaxDepth: 6})
		p := New(Options{MaxDepth: 6})
		for c := range slicesChunk(b, int(chunk)+1) {
			p.Write(c)
		}
		pieces := p.Finish(false)
		if g, w := summary(t, pieces), summary(t, whole); !bytes.Equal(g, w) {
			t.Fatalf("chunk %d changes the summary:\n%s\nvs whole:\n%s", int(chunk)+1, g, w)
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
