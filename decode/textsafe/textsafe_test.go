package textsafe

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text", "plain text"},
		{"Été 日本 ✓ \\Seen", "Été 日本 ✓ \\Seen"},
		{"CLEAR\x1b[2J\x1b[3J\x1b[HSCREEN \x1b]0;TITLE\x07", `CLEAR\x1b[2J\x1b[3J\x1b[HSCREEN \x1b]0;TITLE\x07`},
		{"a\x00b\x08c\rd\ne\tf\x7f", `a\x00b\x08c\rd\ne\tf\x7f`},
		{"csi\u009b31m nel\u0085", `csi\u009b31m nel\u0085`},
		{"gnp.exe\u202ereverse", `gnp.exe\u202ereverse`},
		{"\u2066iso\u2069 \u202a\u202b\u202c\u202d", `\u2066iso\u2069 \u202a\u202b\u202c\u202d`},
		{"zero\u200bwidth\u200c\u200d\u200e\u200f\u2060\ufeff", `zero\u200bwidth\u200c\u200d\u200e\u200f\u2060\ufeff`},
		{"line\u2028para\u2029", `line\u2028para\u2029`},
		{"tag\U000e0041", `tag\U000e0041`},
		{"bad\xff\xfeutf8\xc3", `bad\xff\xfeutf8\xc3`},
		{"\xe2\x80\xae raw bytes of U+202E", `\u202e raw bytes of U+202E`},
	} {
		if got := String(tc.in); got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"bob", `"bob"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"x\x1b[31m", `"x\x1b[31m"`},
		{"", `""`},
	} {
		if got := Quote(tc.in); got != tc.want {
			t.Errorf("Quote(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestNoUnsafeSurvives: whatever goes in, nothing String or Quote returns
// holds a control, format or separator character or invalid UTF-8.
func TestNoUnsafeSurvives(t *testing.T) {
	var all strings.Builder
	for r := rune(0); r < 0x3000; r++ {
		all.WriteRune(r)
	}
	for c := 0x80; c < 0x100; c++ {
		all.WriteByte(byte(c))
	}
	all.WriteString("\U000e0001\U000e007f\ufff9\ufffb")
	for _, out := range []string{String(all.String()), Quote(all.String())} {
		if bad := Check(out); bad != "" {
			t.Fatalf("output holds %s", bad)
		}
	}
}

func FuzzString(f *testing.F) {
	f.Add("CLEAR\x1b[2J\x07\u202e\xff")
	f.Add("plain")
	f.Fuzz(func(t *testing.T, s string) {
		out := String(s)
		if bad := Check(out); bad != "" {
			t.Fatalf("String(%q) holds %s", s, bad)
		}
		if firstUnsafe(s) < 0 && out != s {
			t.Fatalf("String(%q) changed a safe string", s)
		}
		if !utf8.ValidString(Quote(s)) {
			t.Fatalf("Quote(%q) is not UTF-8", s)
		}
	})
}
