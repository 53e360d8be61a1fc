package message

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"math/rand"
	"strings"
	"testing"
)

// refB64 is the plain reading of a base64 body: alphabet characters are
// kept, white space and other bytes skipped, and "=" ends a quantum (what
// follows starts a new encoding).
func refB64(body string) []byte {
	var out, q []byte
	dec := func(raw bool) {
		enc := base64.StdEncoding
		if raw {
			enc = base64.RawStdEncoding
		}
		n := len(q) / 4 * 4
		if raw {
			n = len(q)
		}
		if n == 1 {
			q = q[:0]
			return
		}
		b, _ := enc.DecodeString(string(q[:n]))
		out = append(out, b...)
		q = append(q[:0], q[n:]...)
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/':
			q = append(q, c)
		case c == '=':
			dec(false)
			dec(true)
		}
	}
	dec(false)
	dec(true)
	return out
}

// TestBase64MatchesReference: the streaming decoder (with its fast path)
// gives the reference bytes on clean and dirty bodies.
func TestBase64MatchesReference(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	for round := 0; round < 300; round++ {
		data := make([]byte, rnd.Intn(20000))
		rnd.Read(data)
		enc := base64.StdEncoding.EncodeToString(data)
		var body strings.Builder
		for len(enc) > 0 {
			n := min(len(enc), 1+rnd.Intn(100))
			line := enc[:n]
			enc = enc[n:]
			switch rnd.Intn(12) {
			case 0:
				line = line[:len(line)/2] + " " + line[len(line)/2:]
			case 1:
				line = line[:len(line)/2] + "!" + line[len(line)/2:]
			case 2:
				line += "\r"
			}
			body.WriteString(line + "\r\n")
		}
		msg := "Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=x.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n" + body.String() + "--B--\r\n"
		p := New(Options{})
		p.Write([]byte(msg))
		m := p.Finish(false)
		want := refB64(body.String())
		sum := sha256.Sum256(want)
		if len(m.Attachments) != 1 || m.Attachments[0].SHA256 != hex.EncodeToString(sum[:]) || m.Attachments[0].Size != int64(len(want)) {
			t.Fatalf("round %d: got %+v, want size %d sha %x", round, m.Attachments, len(want), sum)
		}
	}
}
