package message

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"math/rand"
	"strings"
	"testing"

	simd64 "github.com/segmentio/asm/base64"
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

// sameAsStdlib fails t unless segmentio/asm's decoder (flush's) agrees with
// encoding/base64 on src: both succeed with the same bytes, or both fail.
// dst is given exactly DecodedLen bytes with spare capacity behind them,
// which must stay untouched (the vector loop stores 32 bytes a step).
func sameAsStdlib(t *testing.T, src []byte) {
	t.Helper()
	n := base64.StdEncoding.DecodedLen(len(src))
	want := make([]byte, n)
	wn, werr := base64.StdEncoding.Decode(want, src)
	got := make([]byte, n, n+64)
	spare := got[n : n+64]
	for i := range spare {
		spare[i] = 0xA5
	}
	gn, gerr := simd64.StdEncoding.Decode(got, src)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%q: encoding/base64 err %v, simd err %v", src, werr, gerr)
	}
	if werr == nil && (wn != gn || !bytes.Equal(want[:wn], got[:gn])) {
		t.Fatalf("%q: encoding/base64 %x, simd %x", src, want[:wn], got[:gn])
	}
	if bytes.Count(spare, []byte{0xA5}) != len(spare) {
		t.Fatalf("%q: simd wrote past its %d bytes: %x", src, n, spare)
	}
}

// TestSIMDBase64: flush's decoder agrees with encoding/base64 on clean
// blocks of every length around the vector loop's 32-byte steps and its
// 45-byte threshold, and on blocks with one bad byte (outside the
// alphabet, padding, white space, 8-bit) anywhere in them.
func TestSIMDBase64(t *testing.T) {
	rnd := rand.New(rand.NewSource(2))
	for size := 0; size <= 400; size++ {
		raw := make([]byte, size)
		rnd.Read(raw)
		enc := []byte(base64.RawStdEncoding.EncodeToString(raw))
		enc = enc[:len(enc)/4*4]
		sameAsStdlib(t, enc)
		if len(enc) == 0 {
			continue
		}
		for _, c := range []byte("=!\r\n \t-_,.:\x00\x80\xff") {
			bad := bytes.Clone(enc)
			bad[rnd.Intn(len(bad))] = c
			sameAsStdlib(t, bad)
		}
	}
	block := make([]byte, 3072)
	rnd.Read(block)
	enc := []byte(base64.StdEncoding.EncodeToString(block)) // flush's full buffer
	sameAsStdlib(t, enc)
	for i := 0; i < len(enc); i += 97 {
		bad := bytes.Clone(enc)
		bad[i] = '*'
		sameAsStdlib(t, bad)
	}
}

// FuzzSIMDBase64 holds flush's decoder to encoding/base64 on any input.
func FuzzSIMDBase64(f *testing.F) {
	f.Add([]byte("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODk="))
	f.Add([]byte("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xt\r\nbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODkrLw"))
	f.Add([]byte("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODk-_"))
	f.Fuzz(func(t *testing.T, src []byte) {
		sameAsStdlib(t, src)
	})
}

// TestBase64LineLengths: the fast path that takes a line as long as the
// one before without scanning for its end decodes as the reference does,
// also when it is fooled: a short line and the next together as long as
// the line before, so that a line break lands inside what it takes.
func TestBase64LineLengths(t *testing.T) {
	rnd := rand.New(rand.NewSource(2))
	data := make([]byte, 6000)
	rnd.Read(data)
	enc := base64.StdEncoding.EncodeToString(data)
	cases := map[string][]int{
		"fixed 76":             {76},
		"short then the rest":  {76, 76, 76, 10, 64, 76},
		"fooled twice":         {76, 76, 10, 64, 20, 54, 76},
		"growing":              {60, 60, 76, 76, 4, 72, 76},
		"one-character lines":  {76, 76, 1, 1, 1, 1, 74, 76},
		"lines of length zero": {76, 76, 0, 0, 74, 76},
	}
	for name, lens := range cases {
		for _, eol := range []string{"\r\n", "\n", "\r\r\n", " \r\n"} {
			var body strings.Builder
			rest := enc
			for i := 0; len(rest) > 0; i++ {
				n := min(len(rest), lens[min(i, len(lens)-1)])
				body.WriteString(rest[:n] + eol)
				rest = rest[n:]
			}
			msg := "Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=x.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n" + body.String() + "--B--\r\n"
			for _, chunk := range []int{len(msg), 77, 5} {
				p := New(Options{})
				for b := []byte(msg); len(b) > 0; {
					k := min(chunk, len(b))
					p.Write(b[:k])
					b = b[k:]
				}
				m := p.Finish(false)
				sum := sha256.Sum256(data)
				if len(m.Attachments) != 1 || m.Attachments[0].SHA256 != hex.EncodeToString(sum[:]) || m.Attachments[0].Size != int64(len(data)) {
					t.Errorf("%s, break %q, chunks of %d: got %+v, want size %d", name, eol, chunk, m.Attachments, len(data))
				}
				if len(m.Anomalies) != 0 {
					t.Errorf("%s, break %q, chunks of %d: anomalies %v", name, eol, chunk, m.Anomalies)
				}
			}
		}
	}
}
