package sink

import (
	"strconv"
	"strings"
	"testing"
)

// TestZeekEscape: values never break a row or a set, and a value equal to
// a marker is not taken for it.
func TestZeekEscape(t *testing.T) {
	for _, tc := range []struct {
		in    string
		inSet bool
		want  string
	}{
		{"plain text", false, "plain text"},
		{"", false, "(empty)"},
		{"-", false, `\x2d`},
		{"(empty)", false, `\x28empty)`},
		{"a\tb\nc", false, `a\x09b\x0ac`},
		{`back\slash`, false, `back\\slash`},
		{"a,b", false, "a,b"},
		{"a,b", true, `a\x2cb`},
		{"bad\xffutf8", false, `bad\xffutf8`},
		{"Grüße", false, "Grüße"},
		{"rtl\u202eover", false, `rtl\xe2\x80\xaeover`},
	} {
		if got := zeekEscape(tc.in, tc.inSet); got != tc.want {
			t.Errorf("zeekEscape(%q, %v) = %q, want %q", tc.in, tc.inSet, got, tc.want)
		}
	}
	if got := zeekSet([]string{"x,y", "-"}); got != `x\x2cy,\x2d` {
		t.Errorf("zeekSet = %q", got)
	}
	if got := zeekSet(nil); got != "-" {
		t.Errorf("zeekSet(nil) = %q", got)
	}
}

// FuzzZeekEscape: no value can break a Zeek row (tab, newline), a set
// (comma), or pass for a marker, and escaping is undone by Zeek's rule.
func FuzzZeekEscape(f *testing.F) {
	for _, s := range []string{"", "-", "(empty)", "a\tb", "x,y", "\\x41", "\xff\xfe", "rtl\u202e", "\r\n.\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, inSet := range []bool{false, true} {
			e := zeekEscape(s, inSet)
			if strings.ContainsAny(e, "\t\n\r") || inSet && strings.Contains(e, ",") {
				t.Fatalf("zeekEscape(%q, %v) = %q", s, inSet, e)
			}
			if s != "" && (e == "-" || e == "(empty)") {
				t.Fatalf("zeekEscape(%q) = marker %q", s, e)
			}
			if got := zeekUnescape(e); s != "" && got != s {
				t.Fatalf("zeekEscape(%q) = %q, which reads back as %q", s, e, got)
			}
		}
	})
}

// zeekUnescape reads a value back as Zeek's reader does: \\ and \xNN.
func zeekUnescape(e string) string {
	var b strings.Builder
	for i := 0; i < len(e); i++ {
		if e[i] == '\\' && i+1 < len(e) {
			if e[i+1] == '\\' {
				b.WriteByte('\\')
				i++
				continue
			}
			if e[i+1] == 'x' && i+3 < len(e) {
				if v, err := strconv.ParseUint(e[i+2:i+4], 16, 8); err == nil {
					b.WriteByte(byte(v))
					i += 3
					continue
				}
			}
		}
		b.WriteByte(e[i])
	}
	return b.String()
}
