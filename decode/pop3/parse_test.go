package pop3

import "testing"

func TestParseCommand(t *testing.T) {
	tests := []struct {
		in         string
		verb, args string
		ok         bool
	}{
		{"USER moises.nunez@ingenierianumar.com", "USER", "moises.nunez@ingenierianumar.com", true},
		{"user cicciopernacchio@mail.com", "USER", "cicciopernacchio@mail.com", true},
		{"PASS pass word ", "PASS", "pass word ", true}, // the rest of the line, spaces kept
		{"STAT", "STAT", "", true},
		{"retr 2", "RETR", "2", true},
		{"TOP 6 0", "TOP", "6 0", true},
		{"AUTH PLAIN AGEAYg==", "AUTH", "PLAIN AGEAYg==", true},
		{"UTF8", "UTF8", "", true},
		{"X-FOO bar", "X-FOO", "bar", true},
		{"LIST ", "LIST", "", true},
		{"", "", "", false},
		{" STAT", "", "", false},
		{"1 120", "", "", false},
		{"*2", "", "", false},
		{"$4", "", "", false},
		{"\x16\x03\x01", "", "", false},
		{"ABCDEFGHIJKLMNOPQ", "", "", false}, // 17 characters
		{"ABCDEFGHIJKLMNOP", "ABCDEFGHIJKLMNOP", "", true},
		{"STAT\tx", "", "", false},
	}
	for _, tt := range tests {
		verb, args, ok := ParseCommand([]byte(tt.in))
		if verb != tt.verb || args != tt.args || ok != tt.ok {
			t.Errorf("ParseCommand(%q) = %q, %q, %v; want %q, %q, %v", tt.in, verb, args, ok, tt.verb, tt.args, tt.ok)
		}
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		in    string
		ok    bool
		text  string
		valid bool
	}{
		{"+OK POP server ready H mieueus020 1Mw7UO-1j88qA02mS-00sOH0", true, "POP server ready H mieueus020 1Mw7UO-1j88qA02mS-00sOH0", true},
		{"+OK", true, "", true},
		{"+OK ", true, "", true},
		{"+OK 2108 665631557", true, "2108 665631557", true},
		{"-ERR the password incorrect", false, "the password incorrect", true},
		{"-ERR", false, "", true},
		{"+ok fine", true, "fine", true},
		{"-err no", false, "no", true},
		{"+OK\tx", true, "x", true},
		{"+OKAY", false, "", false},
		{"-ERROR", false, "", false},
		{"+ ", false, "", false},
		{"+", false, "", false},
		{"+ VXNlcm5hbWU6", false, "", false},
		{"GARBAGE (and LIST response missing .)", false, "", false},
		{"+\r\r..\r\r..x\r\r", false, "", false},
		{"", false, "", false},
		{"1 120", false, "", false},
	}
	for _, tt := range tests {
		ok, text, valid := ParseStatus([]byte(tt.in))
		if ok != tt.ok || text != tt.text || valid != tt.valid {
			t.Errorf("ParseStatus(%q) = %v, %q, %v; want %v, %q, %v", tt.in, ok, text, valid, tt.ok, tt.text, tt.valid)
		}
	}
}

func TestIsContinuation(t *testing.T) {
	for in, want := range map[string]bool{"+": true, "+ ": true, "+ VXNlcm5hbWU6": true, "+OK": false, "-ERR": false, "": false, "+x": false} {
		if got := isContinuation([]byte(in)); got != want {
			t.Errorf("isContinuation(%q) = %v", in, got)
		}
	}
}

func TestListings(t *testing.T) {
	if n, size, ok := parseScanListing("2 21639 extra"); !ok || n != 2 || size != 21639 {
		t.Errorf("parseScanListing = %d %d %v", n, size, ok)
	}
	for _, bad := range []string{"", "1", "x 2", "1 -2", "1 y", "99999999999 1"} {
		if _, _, ok := parseScanListing(bad); ok {
			t.Errorf("parseScanListing(%q) ok", bad)
		}
	}
	if n, uid, ok := parseUIDListing("3 0MLPgA-1VC2Ru34ja-000jOl"); !ok || n != 3 || uid != "0MLPgA-1VC2Ru34ja-000jOl" {
		t.Errorf("parseUIDListing = %d %q %v", n, uid, ok)
	}
	for _, bad := range []string{"", "1", "a b", "1 \x01"} {
		if _, _, ok := parseUIDListing(bad); ok {
			t.Errorf("parseUIDListing(%q) ok", bad)
		}
	}
}

func TestAPOPTimestamp(t *testing.T) {
	for in, want := range map[string]string{
		"ladymacbeth.local Cyrus POP3 v2.3.16 server ready <15125655727712503824.1400173552@ladymacbeth.local>": "<15125655727712503824.1400173552@ladymacbeth.local>",
		"POP3 server ready <1896.697170952@dbc.mtview.ca.us> now":                                               "<1896.697170952@dbc.mtview.ca.us>",
		"POP server ready H mimap4 0MHoUr-1VDxRD3Ui5-003eq2":                                                    "",
		"<no at sign>":      "",
		"unterminated <a@b": "",
	} {
		if got := apopTimestamp(in); got != want {
			t.Errorf("apopTimestamp(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMaildropText(t *testing.T) {
	tests := []struct {
		in     string
		n      int
		octets int64
		ok     bool
	}{
		{`mailbox "digitalinvestigator@networksims.com" has 3 messages (19191 octets) H mimap13`, 3, 19191, true},
		{"maildrop has 2108 messages (665631557 octets)", 2108, 665631557, true},
		{"maildrop has 1 message (120 octets)", 1, 120, true},
		{"Welcome.", 0, 0, false},
		{"has 3 messages", 0, 0, false},
		{"has x messages (1 octets)", 0, 0, false},
	}
	for _, tt := range tests {
		n, octets, ok := maildropText(tt.in)
		if n != tt.n || octets != tt.octets || ok != tt.ok {
			t.Errorf("maildropText(%q) = %d %d %v", tt.in, n, octets, ok)
		}
	}
}

func TestMultiLine(t *testing.T) {
	tests := []struct {
		line string
		want bool
	}{
		{"RETR 1", true}, {"retr 1", true}, {"TOP 1 0", true}, {"CAPA", true},
		{"LIST", true}, {"LIST ", true}, {"LIST 1", false},
		{"UIDL", true}, {"UIDL 2", false},
		{"AUTH", true}, {"AUTH PLAIN", false}, {"AUTH PLAIN AGFsAGI=", false},
		{"LANG", true}, {"LANG de", false},
		{"STAT", false}, {"USER bob", false}, {"PASS x", false}, {"DELE 1", false},
		{"NOOP", false}, {"RSET", false}, {"QUIT", false}, {"STLS", false},
		{"UTF8", false}, {"APOP bob 0123", false}, {"XTND XMIT", false},
	}
	for _, tt := range tests {
		verb, args, ok := ParseCommand([]byte(tt.line))
		if !ok {
			t.Fatalf("%q: not a command", tt.line)
		}
		if got := MultiLine(verb, args); got != tt.want {
			t.Errorf("MultiLine(%q, %q) = %v, want %v", verb, args, got, tt.want)
		}
	}
}
