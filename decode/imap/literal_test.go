package imap

import (
	"bytes"
	"strconv"
	"testing"
)

func TestParseLiteralSuffix(t *testing.T) {
	tests := []struct {
		in   string
		ok   bool
		want LiteralMarker
	}{
		{"a {5}", true, LiteralMarker{Start: 2, Size: 5}},
		{"a {5}\r\n", true, LiteralMarker{Start: 2, Size: 5}},
		{"a {5}\n", true, LiteralMarker{Start: 2, Size: 5}},
		{"{0}", true, LiteralMarker{Start: 0, Size: 0}},
		{"a {5+}", true, LiteralMarker{Start: 2, Size: 5, NonSync: true}},
		{"a {5-}\r\n", true, LiteralMarker{Start: 2, Size: 5, NonSync: true, Minus: true}},
		{"a ~{5}", true, LiteralMarker{Start: 2, Size: 5, Binary: true}},
		{"a ~{7+}", true, LiteralMarker{Start: 2, Size: 7, NonSync: true, Binary: true}},
		{"* 1 FETCH (BODY[] {12}", true, LiteralMarker{Start: 18, Size: 12}},
		{"a APPEND x ({3}", true, LiteralMarker{Start: 12, Size: 3}},
		{"a {4294967295}", true, LiteralMarker{Start: 2, Size: 4294967295}},
		{"a {4294967296}", true, LiteralMarker{Start: 2, Invalid: true}},
		{"a {99999999999}", true, LiteralMarker{Start: 2, Invalid: true}},
		{"a {18446744073709551615}", true, LiteralMarker{Start: 2, Invalid: true}},
		{`a "x" {5}`, true, LiteralMarker{Start: 6, Size: 5}},
		{`a "x\" {5}" {6}`, true, LiteralMarker{Start: 12, Size: 6}},
		// Not markers.
		{"a {}", false, LiteralMarker{}},
		{"a {+}", false, LiteralMarker{}},
		{"a {5", false, LiteralMarker{}},
		{"a{5}", false, LiteralMarker{}},
		{"a x~{5}", false, LiteralMarker{}},
		{"a {5}x", false, LiteralMarker{}},
		{"a {5}\r", false, LiteralMarker{}},
		{"a {5}\r\n\r\n", false, LiteralMarker{}},
		{"a {5++}", false, LiteralMarker{}},
		{"a {5+-}", false, LiteralMarker{}},
		{"a {-5}", false, LiteralMarker{}},
		{"a { 5}", false, LiteralMarker{}},
		{`a "x {5}`, false, LiteralMarker{}},
		{"", false, LiteralMarker{}},
		{"}", false, LiteralMarker{}},
		{"\r\n", false, LiteralMarker{}},
	}
	for _, tt := range tests {
		got, ok := ParseLiteralSuffix([]byte(tt.in))
		if ok != tt.ok || got != tt.want {
			t.Errorf("ParseLiteralSuffix(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzLiteralSuffix checks ParseLiteralSuffix against its contract on any
// line: no panic; a marker found is really at the end of the line, starts
// after a separator, spells its size in decimal, and does not depend on a
// line end being present.
func FuzzLiteralSuffix(f *testing.F) {
	for _, s := range []string{"a {5}", "a {5+}\r\n", "a {5-}", "a ~{5}", `a "{5}`, "a {99999999999}", "{0}\n", "x (~{3-}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		m, ok := ParseLiteralSuffix(line)
		body := line
		if bytes.HasSuffix(body, []byte("\n")) {
			body = bytes.TrimSuffix(body[:len(body)-1], []byte("\r"))
		}
		m2, ok2 := ParseLiteralSuffix(body)
		if !bytes.HasSuffix(body, []byte("\n")) && (ok != ok2 || m != m2) {
			t.Fatalf("%q: %+v %v with line end, %+v %v without", line, m, ok, m2, ok2)
		}
		if !ok {
			if m != (LiteralMarker{}) {
				t.Fatalf("%q: no marker but %+v", line, m)
			}
			return
		}
		if m.Start < 0 || m.Start >= len(body) {
			t.Fatalf("%q: start %d", line, m.Start)
		}
		if m.Start > 0 && !bytes.ContainsRune([]byte(" ()]"), rune(body[m.Start-1])) {
			t.Fatalf("%q: marker after %q", line, body[m.Start-1])
		}
		mk := body[m.Start:]
		if m.Binary != (mk[0] == '~') {
			t.Fatalf("%q: binary %v", line, m.Binary)
		}
		digits := bytes.Trim(mk, "~{}+-")
		if m.Invalid {
			if m.Size != 0 {
				t.Fatalf("%q: invalid with size %d", line, m.Size)
			}
			if n, err := strconv.ParseUint(string(digits), 10, 64); err == nil && n <= maxLiteralSize {
				t.Fatalf("%q: %d called invalid", line, n)
			}
			return
		}
		n, err := strconv.ParseUint(string(digits), 10, 64)
		if err != nil || int64(n) != m.Size {
			t.Fatalf("%q: digits %q parsed as %+v", line, digits, m)
		}
		want := "{" + string(digits)
		if m.Binary {
			want = "~" + want
		}
		switch {
		case m.Minus:
			want += "-"
		case m.NonSync:
			want += "+"
		}
		if want += "}"; string(mk) != want {
			t.Fatalf("%q: marker %q parsed as %+v", line, mk, m)
		}
	})
}
