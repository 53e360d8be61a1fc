package sink

import "testing"

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
