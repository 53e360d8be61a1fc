package framing

import (
	"strings"
	"testing"
)

func unstuff(in string, cuts ...int) (body string, rest string, done, bare bool) {
	return unstuffWith(Dot{}, in, cuts...)
}

func unstuffWith(d Dot, in string, cuts ...int) (body string, rest string, done, bare bool) {
	var sb strings.Builder
	prev := 0
	pieces := []string{}
	for _, c := range cuts {
		if c > prev && c < len(in) {
			pieces = append(pieces, in[prev:c])
			prev = c
		}
	}
	pieces = append(pieces, in[prev:])
	for i, p := range pieces {
		n, ok := d.Feed([]byte(p), func(b []byte) { sb.Write(b) })
		if ok {
			rest = p[n:] + strings.Join(pieces[i+1:], "")
			return sb.String(), rest, true, d.BareLFDot
		}
	}
	return sb.String(), "", false, d.BareLFDot
}

func TestDot(t *testing.T) {
	cases := []struct {
		in, body, rest string
		done, bare     bool
	}{
		{".\r\n", "", "", true, false},
		{"a\r\n.\r\nQUIT\r\n", "a\r\n", "QUIT\r\n", true, false},
		{"..a\r\n..\r\n.\r\n", ".a\r\n.\r\n", "", true, false},
		{"a\r\n.\n.\r\nb\r\n.\r\n", "a\r\n.\n.\r\nb\r\n", "", true, true}, // "." LF is content, and so is the "." after it
		{"a\n.\r\nb\r\n.\r\n", "a\n.\r\nb\r\n", "", true, true},           // LF "." CRLF is not an end
		{"a\r\n\n.\r\nMAIL FROM:<x>\r\n.\r\n", "a\r\n\n.\r\nMAIL FROM:<x>\r\n", "", true, true},
		{"a\r\n.x\r\n.\r\n", "a\r\nx\r\n", "", true, false},
		{"a\r\n", "a\r\n", "", false, false},
	}
	for _, c := range cases {
		for cut := 0; cut <= len(c.in); cut++ {
			for _, d := range []Dot{{}, {bytewise: true}} {
				body, rest, done, bare := unstuffWith(d, c.in, cut)
				if body != c.body || rest != c.rest || done != c.done || bare != c.bare {
					t.Errorf("%q cut %d bytewise %v: body %q rest %q done %v bare %v; want %q %q %v %v", c.in, cut, d.bytewise, body, rest, done, bare, c.body, c.rest, c.done, c.bare)
				}
			}
		}
	}
}

func BenchmarkDot(b *testing.B) {
	for _, c := range []struct{ name, line string }{
		{"base64", "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n"},
		{"text", "Lorem ipsum dolor sit amet. Consectetur adipiscing elit, sed do eiusmod.\r\n"},
	} {
		body := []byte(strings.Repeat(c.line, 1<<14))
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				var d Dot
				d.Feed(body, func([]byte) {})
			}
		})
	}
}

// FuzzDot: the result does not depend on how the block is cut.
func FuzzDot(f *testing.F) {
	f.Add("a\r\n.\r\nrest", 2)
	f.Add("a\r\n\n.\r\n..b\r\n.\r\n", 5)
	f.Add(".\n.\r\nx\r\r\n.\r\n", 1)
	f.Fuzz(func(t *testing.T, s string, cut int) {
		b1, r1, d1, x1 := unstuff(s)
		b2, r2, d2, x2 := unstuff(s, cut)
		var every []int
		for i := 1; i < len(s) && i < 200; i++ {
			every = append(every, i)
		}
		b3, r3, d3, x3 := unstuff(s, every...)
		if b1 != b2 || r1 != r2 || d1 != d2 || x1 != x2 || b1 != b3 || r1 != r3 || d1 != d3 || x1 != x3 {
			t.Fatalf("%q: whole %q %q %v %v; cut %d: %q %q %v %v; bytes: %q %q %v %v", s, b1, r1, d1, x1, cut, b2, r2, d2, x2, b3, r3, d3, x3)
		}
		// The fast path (search for "." inside lines) against every
		// byte through the state machine.
		b4, r4, d4, x4 := unstuffWith(Dot{bytewise: true}, s, cut)
		if b1 != b4 || r1 != r4 || d1 != d4 || x1 != x4 {
			t.Fatalf("%q: fast %q %q %v %v; bytewise %q %q %v %v", s, b1, r1, d1, x1, b4, r4, d4, x4)
		}
	})
}
