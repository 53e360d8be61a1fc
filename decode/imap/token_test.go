package imap

import (
	"fmt"
	"strings"
	"testing"
)

// render prints tokens compactly: atoms bare, quoted in "", literals as
// {n:data}, lists in (), NIL as NIL.
func render(ts []Token) string {
	var sb strings.Builder
	for i, t := range ts {
		if i > 0 {
			sb.WriteByte(' ')
		}
		switch t.Kind {
		case KindAtom:
			sb.WriteString(t.Value)
		case KindNil:
			sb.WriteString("NIL")
		case KindQuoted:
			sb.WriteString(`"` + t.Value + `"`)
		case KindLiteral:
			fmt.Fprintf(&sb, "{%d:%s}", t.Lit.Size, t.Value)
		case KindList:
			sb.WriteString("(" + render(t.List))
			if !t.Open {
				sb.WriteByte(')')
			}
		}
	}
	return sb.String()
}

// lines feeds s to a tokenizer in the given pieces and renders each
// logical line; client sync literals are accepted at once.
func lines(server bool, pieces []string) []string {
	tk := NewTokenizer(server, 1024)
	var out []string
	for _, p := range pieces {
		b := []byte(p)
		for len(b) > 0 {
			ev, n := tk.Next(b)
			b = b[n:]
			switch ev {
			case EvLine:
				out = append(out, render(tk.Line().Tokens))
			case EvLiteral:
				if tk.Awaiting() {
					tk.Accept()
				}
			}
			if ev == EvMore && n == 0 {
				break
			}
		}
	}
	return out
}

func TestTokenKinds(t *testing.T) {
	tests := []struct {
		server bool
		in     string
		want   string
	}{
		{false, "a1 LOGIN joe \"p w\\\"x\\\\\"\r\n", `a1 LOGIN joe "p w"x\"`},
		{true, "* LIST (\\HasNoChildren) \"/\" NIL\r\n", `* LIST (\HasNoChildren) "/" NIL`},
		{true, "* 1 FETCH (BODY[HEADER.FIELDS (FROM SUBJECT)]<0> {3}\r\nabc UID 7)\r\n", `* 1 FETCH (BODY[HEADER.FIELDS (FROM SUBJECT)]<0> {3:abc} UID 7)`},
		{false, "a APPEND x {2+}\r\nhi {3-}\r\nyou ~{1}\r\nz\r\n", `a APPEND x {2:hi} {3:you} {1:z}`},
		{false, "a SEARCH ((((x))))\r\n", `a SEARCH ((((x))))`},
		{false, "a SEARCH (unclosed\r\n", `a SEARCH (unclosed`},
		{true, "* OK [ALERT] send {5}\r\n", `* OK [ALERT] send {5}`}, // resp-text: no literal
		{true, "+ go {5}\r\n", `+ go {5}`},
		{false, "a LOGIN \"{5}\"\r\n", `a LOGIN "{5}"`}, // inside quotes: no literal
		{false, "a X {0}\r\n\r\n", `a X {0:}`},
		{false, "bare lf\n", `bare lf`},
	}
	for _, tt := range tests {
		got := lines(tt.server, []string{tt.in})
		if len(got) != 1 || got[0] != tt.want {
			t.Errorf("%q:\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestTokenLiteralSplits(t *testing.T) {
	in := "* 1 FETCH (BODY[] {5}\r\nabcde FLAGS ())\r\n* 2 EXISTS\r\n"
	want := []string{"* 1 FETCH (BODY[] {5:abcde} FLAGS ())", "* 2 EXISTS"}
	check := func(pieces []string) {
		t.Helper()
		got := lines(true, pieces)
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("pieces %q: got %q", pieces, got)
		}
	}
	check([]string{"* 1 FETCH (BODY[] {5}\r", "\nab", "cde FLAGS ())\r\n* 2 EXISTS\r\n"})
	for i := 0; i <= len(in); i++ {
		for j := i; j <= len(in); j++ {
			check([]string{in[:i], in[i:j], in[j:]})
		}
	}
	var bytewise []string
	for i := 0; i < len(in); i++ {
		bytewise = append(bytewise, in[i:i+1])
	}
	check(bytewise)
}

func TestTokenAwaitReject(t *testing.T) {
	tk := NewTokenizer(false, 0)
	in := []byte("a1 APPEND box {10}\r\na2 NOOP\r\n")
	ev, n := tk.Next(in)
	if ev != EvLiteral || !tk.Awaiting() {
		t.Fatalf("ev %v awaiting %v", ev, tk.Awaiting())
	}
	if ev2, n2 := tk.Next(in[n:]); ev2 != EvMore || n2 != 0 {
		t.Fatalf("consumed while awaiting")
	}
	l := tk.Reject()
	if got := render(l.Tokens); got != "a1 APPEND box {10:}" || !l.Literals[0].Absent {
		t.Errorf("rejected line %q", got)
	}
	ev, _ = tk.Next(in[n:])
	if ev != EvLine || render(tk.Line().Tokens) != "a2 NOOP" {
		t.Errorf("next line %q", render(tk.Line().Tokens))
	}
}

func TestTokenStreamLarge(t *testing.T) {
	big := strings.Repeat("x", 10000)
	tk := NewTokenizer(true, 0)
	var sb strings.Builder
	in := []byte(fmt.Sprintf("* 1 FETCH (BODY[] {%d}\r\n%s)\r\n", len(big), big))
	var lit *Literal
	for len(in) > 0 {
		ev, n := tk.Next(in[:min(len(in), 777)])
		in = in[n:]
		if ev == EvLiteral {
			pre := render(tk.Pending().Tokens)
			if pre != "* 1 FETCH (BODY[]" {
				t.Errorf("pending %q", pre)
			}
			lit = tk.Literal()
			tk.StreamTo(&sb)
		}
		if ev == EvLine && render(tk.Line().Tokens) != "* 1 FETCH (BODY[] {10000:})" {
			t.Errorf("line %q", render(tk.Line().Tokens))
		}
	}
	if sb.String() != big || !lit.Streamed || lit.Received != 10000 || len(lit.Data) != 0 {
		t.Errorf("streamed %d bytes", sb.Len())
	}
	// Not streamed and too big to inline: counted, not kept.
	tk = NewTokenizer(true, 0)
	in = []byte(fmt.Sprintf("* X {%d}\r\n%s\r\n", len(big), big))
	ev, n := tk.Next(in)
	_ = ev
	ev, _ = tk.Next(in[n:])
	if ev != EvLine || len(tk.Line().Literals[0].Data) != 0 || tk.Line().Literals[0].Received != 10000 {
		t.Errorf("big literal kept")
	}
}

func TestDecodeMailboxName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"&AMk-t&AOk-", "Été"},
		{"INBOX", "INBOX"},
		{"Tom &- Jerry", "Tom & Jerry"},
		{"~peter/mail/&U,BTFw-/&ZeVnLIqe-", "~peter/mail/台北/日本語"},
		{"&Jjo-!", "☺!"},
		{"Été", "Été"},             // already UTF-8: unchanged
		{"&AGE-", "&AGE-"},         // encoded ASCII is invalid
		{"&ZeVnLIqe", "&ZeVnLIqe"}, // unterminated
	}
	for _, tt := range tests {
		if got := DecodeMailboxName(tt.in); got != tt.want {
			t.Errorf("%q: got %q want %q", tt.in, got, tt.want)
		}
	}
}
