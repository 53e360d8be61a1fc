package textsafe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log"
	"strings"
	"testing"
	"unicode/utf16"
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

func TestAppendJSON(t *testing.T) {
	in := map[string]string{"s": "del\x7f csi\u009b bidi\u202e zw\u200b\ufeff tag\U000e0041 ok Été \x1b"}
	enc, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out := AppendJSON(nil, enc)
	if bad := Check(string(out)); bad != "" {
		t.Fatalf("%s holds %s", out, bad)
	}
	want := `{"s":"del\u007f csi\u009b bidi\u202e zw\u200b\ufeff tag\udb40\udc41 ok Été \u001b"}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
	var back map[string]string
	if err := json.Unmarshal(out, &back); err != nil || back["s"] != in["s"] {
		t.Errorf("round trip: %q, %v", back["s"], err)
	}
}

func TestWriter(t *testing.T) {
	var b strings.Builder
	w := NewWriter(&b)
	log.New(w, "", 0).Printf("smtp[1] helo=%s", "x\x1b[2J\u202e")
	fmt.Fprintf(w, "plain\nlines\n")
	want := "smtp[1] helo=x\\x1b[2J\\u202e\nplain\nlines\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

func TestJSONWriter(t *testing.T) {
	var b strings.Builder
	if err := json.NewEncoder(NewJSONWriter(&b)).Encode(map[string]string{"got_text": "ok\u202e\x7f"}); err != nil {
		t.Fatal(err)
	}
	if want := `{"got_text":"ok\u202e\u007f"}` + "\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

// appendJSONByByte is AppendJSON as first written, one byte at a time:
// the reference FuzzAppendJSON holds the run-copying one to.
func appendJSONByByte(dst, src []byte) []byte {
	for i := 0; i < len(src); {
		c := src[i]
		if c < utf8.RuneSelf && c != 0x7f {
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(src[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			dst = append(dst, `\ufffd`...)
		case !Unsafe(r):
			dst = append(dst, src[i:i+n]...)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			dst = appendU(appendU(dst, r1), r2)
		default:
			dst = appendU(dst, r)
		}
		i += n
	}
	return dst
}

func FuzzAppendJSON(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, "x\x7fy", "\u202e\u200b\xff\xfe", "é\U0001F600\U000E0001", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := AppendJSON(nil, b), appendJSONByByte(nil, b); !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON(%q) = %q, want %q", b, got, want)
		}
	})
}
