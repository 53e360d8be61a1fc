package framing

import (
	"fmt"
	"strings"
	"testing"
)

// frame splits s at the given cut points and returns the lines as strings.
func frame(max int, s string, cuts []int) []string {
	l := Lines{Max: max}
	var out []string
	prev := 0
	pieces := []string{}
	for _, c := range cuts {
		if c > prev && c < len(s) {
			pieces = append(pieces, s[prev:c])
			prev = c
		}
	}
	pieces = append(pieces, s[prev:])
	for _, p := range pieces {
		b := []byte(p)
		for len(b) > 0 {
			line, n, ok := l.Next(b)
			b = b[n:]
			if ok {
				out = append(out, fmt.Sprintf("%q crlf=%v over=%v dropped=%d", line.Text, line.CRLF, line.Overflow, line.Dropped))
			}
		}
	}
	return out
}

func TestLinesTable(t *testing.T) {
	got := frame(8, "a\r\nbb\nexactly8\r\nnine12345\r\nlonger than eight\nx", nil)
	want := []string{
		`"a" crlf=true over=false dropped=0`,
		`"bb" crlf=false over=false dropped=0`,
		`"exactly8" crlf=true over=false dropped=0`,
		`"nine1234" crlf=true over=true dropped=1`,
		`"longer t" crlf=false over=true dropped=9`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestLinesSplitInvariance: every cut of the stream gives the same lines.
func TestLinesSplitInvariance(t *testing.T) {
	s := "exactly8\r\n12345678\r\n123456789\n123456789\r\n\r\n\n" + strings.Repeat("z", 30) + "\r\nend\r\n"
	want := frame(8, s, nil)
	for i := 0; i <= len(s); i++ {
		for j := i; j <= len(s); j += 3 {
			if got := frame(8, s, []int{i, j}); strings.Join(got, "|") != strings.Join(want, "|") {
				t.Fatalf("cut at %d,%d:\n%s\nwant\n%s", i, j, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		}
	}
	var every []int
	for i := 1; i < len(s); i++ {
		every = append(every, i)
	}
	if got := frame(8, s, every); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("byte by byte:\n%s", strings.Join(got, "\n"))
	}
}

func FuzzLines(f *testing.F) {
	f.Add("a\r\nb\n", 3, 1)
	f.Add("123456789\r\n", 8, 9)
	f.Fuzz(func(t *testing.T, s string, max, cut int) {
		if max < 1 || max > 64 {
			return
		}
		want := frame(max, s, nil)
		if got := frame(max, s, []int{cut}); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("cut %d: %q vs %q", cut, got, want)
		}
	})
}

func TestLinesOverflowing(t *testing.T) {
	tests := []struct {
		in   []string
		want bool
	}{
		{[]string{"abcd"}, false},
		{[]string{"abcde"}, true},
		{[]string{"abcd\r"}, false},
		{[]string{"abc", "d\r"}, false},
		{[]string{"abc", "de"}, true},
		{[]string{"ab", "cdefghij", "kl"}, true},
		{[]string{"abcdefgh\r\n"}, false}, // ended: reported by Next
		{[]string{"abcdefgh\r\nab"}, false},
		{[]string{"abcdefgh\r\nabcdefgh"}, true},
	}
	for _, tt := range tests {
		l := Lines{Max: 4}
		for _, p := range tt.in {
			b := []byte(p)
			for len(b) > 0 {
				_, n, _ := l.Next(b)
				b = b[n:]
			}
		}
		if got := l.Overflowing(); got != tt.want {
			t.Errorf("%q: Overflowing %v, want %v", tt.in, got, tt.want)
		}
	}
}
