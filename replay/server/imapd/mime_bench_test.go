package imapd

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/mailtap/mailtap/decode/message"
)

// bigMultipart is a 1 MB message with 50 base64 attachments in a
// multipart/mixed with a nested multipart/alternative.
func bigMultipart() []byte {
	var b bytes.Buffer
	b.WriteString("From: a@b\r\nTo: c@d\r\nSubject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n")
	b.WriteString("--outer\r\nContent-Type: multipart/alternative; boundary=alt\r\n\r\n--alt\r\nContent-Type: text/plain\r\n\r\nhello\r\n--alt\r\nContent-Type: text/html\r\n\r\n<p>hello</p>\r\n--alt--\r\n")
	line := strings.Repeat("QUJD", 19) + "\r\n"
	for i := range 50 {
		fmt.Fprintf(&b, "--outer\r\nContent-Type: application/octet-stream; name=f%d.bin\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=f%d.bin\r\n\r\n", i, i)
		for range 260 {
			b.WriteString(line)
		}
	}
	b.WriteString("--outer--\r\n")
	return b.Bytes()
}

// BenchmarkMIMEParsers compares what BODYSTRUCTURE needs (imapd's
// parsePart: a tree of parts as byte ranges) with the decoder's message
// parser (decode/message: a summary, streaming, hashing and decoding the
// leaves). See docs/design.md for the numbers and the choice.
func BenchmarkMIMEParsers(b *testing.B) {
	for _, m := range []struct {
		name string
		raw  []byte
	}{{"small", []byte(multipartMsg)}, {"1MB-50parts", bigMultipart()}} {
		b.Run("imapd/"+m.name, func(b *testing.B) {
			b.SetBytes(int64(len(m.raw)))
			for b.Loop() {
				parsePart(m.raw, 0, "text/plain").bodyStructure(true)
			}
		})
		b.Run("decode-message/"+m.name, func(b *testing.B) {
			b.SetBytes(int64(len(m.raw)))
			for b.Loop() {
				p := message.New(message.Options{})
				p.Write(m.raw)
				p.Finish(false)
			}
		})
	}
}

// TestDecodeMessageLacksStructure pins why imapd keeps its own MIME
// parser for BODYSTRUCTURE: the decoder's summary of a message has no
// parts tree, no byte ranges for BODY[section], and no per-part header
// fields (the text/plain and text/html alternatives are not there at all).
func TestDecodeMessageLacksStructure(t *testing.T) {
	raw := bigMultipart()
	p := message.New(message.Options{})
	p.Write(raw)
	m := p.Finish(false)
	root := parsePart(raw, 0, "text/plain")
	var leaves func(*part) int
	leaves = func(p *part) int {
		if len(p.children) == 0 {
			return 1
		}
		n := 0
		for _, c := range p.children {
			n += leaves(c)
		}
		return n
	}
	if got := leaves(root); got != 52 {
		t.Fatalf("imapd sees %d leaf parts, want 52", got)
	}
	if len(m.Attachments) != 50 {
		t.Fatalf("decode/message lists %d attachments, want 50", len(m.Attachments))
	}
	// 52 leaves for BODYSTRUCTURE, 50 attachment summaries from the decoder.
}
