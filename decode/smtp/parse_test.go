package smtp

import (
	"slices"
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		in         string
		verb, args string
		err        bool
	}{
		{in: "EHLO client.example.org", verb: "EHLO", args: "client.example.org"},
		{in: "ehlo client", verb: "EHLO", args: "client"},
		{in: "MAIL FROM:<a@b> SIZE=1", verb: "MAIL", args: "FROM:<a@b> SIZE=1"},
		{in: "mail from:<a@b>", verb: "MAIL", args: "from:<a@b>"},
		{in: "RCPT TO:<c@d>  ", verb: "RCPT", args: "TO:<c@d>"},
		{in: "DATA", verb: "DATA"},
		{in: "QUIT\r", verb: "QUIT"},
		{in: "  NOOP", verb: "NOOP"},
		{in: "BDAT 100 LAST", verb: "BDAT", args: "100 LAST"},
		{in: "AUTH\tPLAIN", verb: "AUTH", args: "PLAIN"},
		{in: "VRFY   root", verb: "VRFY", args: "root"},
		{in: "X-CUSTOM1 a", verb: "X-CUSTOM1", args: "a"},
		{in: "", err: true},
		{in: "   ", err: true},
		{in: ".", err: true},
		{in: "1234 abc", err: true},
		{in: "\x16\x03\x01\x02", err: true},
		{in: "Subject: hello", err: true},
		{in: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", err: true},
	}
	for _, tt := range tests {
		verb, args, err := ParseCommand([]byte(tt.in))
		if (err != nil) != tt.err {
			t.Errorf("ParseCommand(%q) err = %v, want error %v", tt.in, err, tt.err)
			continue
		}
		if verb != tt.verb || args != tt.args {
			t.Errorf("ParseCommand(%q) = %q, %q; want %q, %q", tt.in, verb, args, tt.verb, tt.args)
		}
	}
}

func TestParseReplyLine(t *testing.T) {
	tests := []struct {
		in   string
		code int
		sep  byte
		text string
		ok   bool
	}{
		{"250-mx.example.net", 250, '-', "mx.example.net", true},
		{"250 2.1.0 Ok", 250, ' ', "2.1.0 Ok", true},
		{"354 End data with <CR><LF>.<CR><LF>", 354, ' ', "End data with <CR><LF>.<CR><LF>", true},
		{"334 ", 334, ' ', "", true},
		{"334", 334, ' ', "", true},
		{"220 mx ESMTP\r", 220, ' ', "mx ESMTP", true},
		{"550-5.1.1 first", 550, '-', "5.1.1 first", true},
		{"25", 0, 0, "", false},
		{"2500 x", 0, 0, "", false},
		{"650 x", 0, 0, "", false},
		{"050 x", 0, 0, "", false},
		{"25a x", 0, 0, "", false},
		{"EHLO x", 0, 0, "", false},
		{"", 0, 0, "", false},
	}
	for _, tt := range tests {
		code, sep, text, ok := ParseReplyLine([]byte(tt.in))
		if code != tt.code || sep != tt.sep || text != tt.text || ok != tt.ok {
			t.Errorf("ParseReplyLine(%q) = %d, %q, %q, %v; want %d, %q, %q, %v",
				tt.in, code, sep, text, ok, tt.code, tt.sep, tt.text, tt.ok)
		}
	}
}

func TestParseEnhanced(t *testing.T) {
	tests := []struct {
		code      int
		in        string
		enh, rest string
	}{
		{250, "2.1.0 Ok", "2.1.0", "Ok"},
		{250, "2.0.0", "2.0.0", ""},
		{550, "5.7.1  Relaying denied", "5.7.1", "Relaying denied"},
		{451, "4.3.0 Try later", "4.3.0", "Try later"},
		{250, "5.1.0 class mismatch", "", "5.1.0 class mismatch"},
		{250, "2.100.0 three digits", "2.100.0", "three digits"},
		{250, "2.1000.0 too long", "", "2.1000.0 too long"},
		{250, "2.1 short", "", "2.1 short"},
		{250, "Ok", "", "Ok"},
		{250, "", "", ""},
		{250, "2.1.x Ok", "", "2.1.x Ok"},
	}
	for _, tt := range tests {
		enh, rest := ParseEnhanced(tt.code, tt.in)
		if enh != tt.enh || rest != tt.rest {
			t.Errorf("ParseEnhanced(%d, %q) = %q, %q; want %q, %q", tt.code, tt.in, enh, rest, tt.enh, tt.rest)
		}
	}
}

func TestParsePath(t *testing.T) {
	tests := []struct {
		in           string
		addr, params string
		err          bool
	}{
		{in: "FROM:<a@b> SIZE=1", addr: "a@b", params: "SIZE=1"},
		{in: "FROM:<a@b>", addr: "a@b"},
		{in: "from:<a@b> BODY=8BITMIME SMTPUTF8", addr: "a@b", params: "BODY=8BITMIME SMTPUTF8"},
		{in: "TO:<c@d> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c@d", addr: "c@d", params: "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c@d"},
		{in: "FROM:<>", addr: ""},
		{in: "FROM:<> SIZE=10", addr: "", params: "SIZE=10"},
		{in: "FROM: <a@b>", addr: "a@b"},
		{in: "FROM : <a@b>", addr: "a@b"},
		{in: "FROM:a@b SIZE=1", addr: "a@b", params: "SIZE=1"},
		{in: "TO: c@d", addr: "c@d"},
		{in: "TO:<@relay.example,@r2.example:c@d>", addr: "c@d"},
		{in: `TO:<"odd> name"@d> X=1`, addr: `"odd> name"@d`, params: "X=1"},
		{in: "TO:<Postmaster>", addr: "Postmaster"},
		{in: "TO:<用户@例子.广告>", addr: "用户@例子.广告"},
		{in: "FROM:<a@b", addr: "a@b", err: true},
		{in: "<a@b>", err: true},
		{in: "FROMAGE:<a@b>", err: true},
		{in: "", err: true},
		{in: "TO:<@relay-without-colon>", addr: "@relay-without-colon", err: true},
	}
	for _, tt := range tests {
		addr, params, err := ParsePath(tt.in)
		if (err != nil) != tt.err {
			t.Errorf("ParsePath(%q) err = %v, want error %v", tt.in, err, tt.err)
		}
		if addr != tt.addr || params != tt.params {
			t.Errorf("ParsePath(%q) = %q, %q; want %q, %q", tt.in, addr, params, tt.addr, tt.params)
		}
	}
}

func TestParseBDAT(t *testing.T) {
	tests := []struct {
		in       string
		n        int64
		last, ok bool
	}{
		{"100", 100, false, true},
		{"0 LAST", 0, true, true},
		{"64 last", 64, true, true},
		{"", 0, false, false},
		{"-1", 0, false, false},
		{"18446744073709551616 LAST", 0, false, false},
		{"10 LAST extra", 0, false, false},
		{"10 FIRST", 0, false, false},
		{"1x", 0, false, false},
	}
	for _, tt := range tests {
		n, last, ok := parseBDAT(tt.in)
		if n != tt.n || last != tt.last || ok != tt.ok {
			t.Errorf("parseBDAT(%q) = %d, %v, %v; want %d, %v, %v", tt.in, n, last, ok, tt.n, tt.last, tt.ok)
		}
	}
}

// TestParseAllocs pins the parsing the session does on every line to no
// allocation: verbs are looked up on the bytes (a known one is a
// constant), reply text and arguments stay slices of the line.
func TestParseAllocs(t *testing.T) {
	cmds := [][]byte{[]byte("mail FROM:<a@b> SIZE=10"), []byte("Hello world"), []byte("Subject: x"), []byte("")}
	replies := [][]byte{[]byte("250-mx.example.net"), []byte("354 go ahead\r"), []byte("x")}
	n := testing.AllocsPerRun(100, func() {
		for _, l := range cmds {
			isKnownCommand(l)
		}
		if _, _, known, err := parseCommand(cmds[0]); !known || err != nil {
			t.Fatal("MAIL not known")
		}
		for _, l := range replies {
			parseReplyLine(l)
		}
		if _, _, ok := parseBDAT("100 LAST"); !ok {
			t.Fatal("BDAT 100 LAST")
		}
		if f, _ := nextField(" a.example\tb"); f != "a.example" {
			t.Fatalf("nextField: %q", f)
		}
	})
	if n != 0 {
		t.Errorf("%v allocations per run, want 0", n)
	}
}

// TestNextField: nextField splits as strings.Fields does.
func TestNextField(t *testing.T) {
	for _, in := range []string{"", "  ", "a", " a b  c ", "a\tb\r\nc", "x\u00a0y\u2003z", "\xffa b", "\u0085a"} {
		var got []string
		for f, rest := nextField(in); f != ""; f, rest = nextField(rest) {
			got = append(got, f)
		}
		if want := strings.Fields(in); !slices.Equal(got, want) {
			t.Errorf("nextField over %q = %q, strings.Fields = %q", in, got, want)
		}
	}
}
