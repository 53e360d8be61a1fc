package tui

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseMessage: the message view's parser takes any bytes from the
// wire. It must not panic, must stay within its bounds, and every leaf's
// hash must be of the bytes it holds (the ones a save writes).
func FuzzParseMessage(f *testing.F) {
	f.Add([]byte("Subject: hi\r\n\r\nbody\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n\r\nK=F6ln=\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n" +
		"Content-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\n\r\nx\r\n--c--\r\n--b\r\n" +
		"Content-Disposition: attachment; filename*=utf-8''a%20b.txt\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8\r\n--b--\r\n"))
	if eml, err := filepath.Glob(filepath.Join("..", "..", "..", "decode", "message", "testdata", "*.eml")); err == nil {
		for _, p := range eml {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		p := ParseMessage(raw)
		if len(p.Parts) > maxParts+1 || p.Text >= len(p.Parts) {
			t.Fatalf("%d parts, text %d", len(p.Parts), p.Text)
		}
		for _, pt := range p.Parts {
			if pt.Depth > maxDepth+1 {
				t.Fatalf("depth %d", pt.Depth)
			}
			if pt.Multipart {
				continue
			}
			if sum := sha256.Sum256(pt.Data); hex.EncodeToString(sum[:]) != pt.SHA256 || pt.Size != int64(len(pt.Data)) {
				t.Fatalf("part %s: size %d sha256 %s for %d bytes", pt.Path, pt.Size, pt.SHA256, len(pt.Data))
			}
			_ = TextOf(&pt)
		}
	})
}
