package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"mime"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/mailtap/mailtap/capture/synth"
)

const pcaps = "../../pcaps"

func runArgs(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

// TestCommittedCapturesUpToDate fails when a transcript changed without the
// capture being regenerated (or the other way round).
func TestCommittedCapturesUpToDate(t *testing.T) {
	code, out, errs := runArgs("--check", "-o", pcaps)
	if code != 0 {
		t.Fatalf("pcapgen --check: exit %d\n%s%s", code, out, errs)
	}
}

func TestWriteCheckAndStale(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(pcaps, "gen")
	if code, _, errs := runArgs("-o", dir, "--src", src); code != 0 {
		t.Fatalf("write: exit %d: %s", code, errs)
	}
	if code, out, errs := runArgs("--check", "-o", dir, "--src", src); code != 0 || !strings.Contains(out, "up to date") {
		t.Fatalf("check after write: exit %d: %s%s", code, out, errs)
	}
	for _, name := range []string{"smtp-basic.pcap", "gen-smtp-gz.pcap.gz"} {
		want, _ := os.ReadFile(filepath.Join(pcaps, name))
		got, _ := os.ReadFile(filepath.Join(dir, name))
		if len(want) == 0 || !bytes.Equal(got, want) && !strings.HasSuffix(name, ".gz") {
			t.Errorf("%s: written file differs from the committed one", name)
		}
	}

	// A changed capture and a stray generated file are both reported.
	p := filepath.Join(dir, "gen-smtp-frag.pcap")
	b, _ := os.ReadFile(p)
	b[len(b)-1] ^= 0xff
	os.WriteFile(p, b, 0o644)
	os.WriteFile(filepath.Join(dir, "gen-smtp-gone.pcap"), b, 0o644)
	code, _, errs := runArgs("--check", "-o", dir, "--src", src)
	if code != 1 || !strings.Contains(errs, "gen-smtp-frag.pcap differs") || !strings.Contains(errs, "gen-smtp-gone.pcap has no transcript") {
		t.Errorf("check after corruption: exit %d: %s", code, errs)
	}
	// Only the named capture is regenerated and checked.
	if code, out, errs := runArgs("-o", dir, "--src", src, "smtp-frag"); code != 0 || strings.Count(out, "wrote") != 1 {
		t.Errorf("regenerate one: exit %d: %s%s", code, out, errs)
	}
	if code, _, errs := runArgs("--check", "-o", dir, "--src", src, "gen-smtp-frag.pcap"); code != 0 {
		t.Errorf("check one after regenerating: exit %d: %s", code, errs)
	}
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"--bogus"}, 2, "unknown flag"},
		{[]string{"--list", "--check"}, 2, "exclude each other"},
		{[]string{"-o", pcaps, "no-such-capture"}, 1, `no transcript or output named "no-such-capture"`},
		{[]string{"-o", t.TempDir()}, 1, "no transcripts"},
		{[]string{"-h"}, 0, "usage: pcapgen"},
	} {
		code, _, errs := runArgs(tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.err) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errs, tc.code, tc.err)
		}
	}
	code, out, _ := runArgs("--list", "-o", pcaps)
	if code != 0 || !strings.Contains(out, "smtp-basic.pcap\n    A complete SMTP session") || !strings.Contains(out, "gen-smtp-pipelining.pcap, gen-smtp-gz.pcap.gz") {
		t.Errorf("--list: exit %d:\n%s", code, out)
	}
}

// message is one mail transaction's content found in a client stream.
type message struct {
	size    int
	sha     string
	subject string
}

var bdatRE = regexp.MustCompile(`^BDAT (\d+)( LAST)?$`)

// messages extracts DATA (strict CRLF.CRLF, dot-unstuffed) and BDAT
// contents from what a client sent: a reference reading, independent of
// decode/smtp, of the facts pcaps/README.md states.
func messages(t *testing.T, b []byte) []message {
	t.Helper()
	var out []message
	var chunks []byte
	add := func(m []byte) {
		sum := sha256.Sum256(m)
		msg, err := mail.ReadMessage(bytes.NewReader(m))
		subj := ""
		if err == nil {
			subj, _ = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		}
		out = append(out, message{len(m), hex.EncodeToString(sum[:]), subj})
	}
	for len(b) > 0 {
		line, rest, ok := bytes.Cut(b, []byte("\r\n"))
		if !ok {
			break
		}
		b = rest
		switch m := bdatRE.FindSubmatch(line); {
		case string(line) == "DATA":
			end := bytes.Index(b, []byte("\r\n.\r\n"))
			if end < 0 {
				t.Fatalf("DATA without end")
			}
			var msg []byte
			for _, l := range bytes.SplitAfter(b[:end+2], []byte("\r\n")) {
				msg = append(msg, bytes.TrimPrefix(l, []byte("."))...)
			}
			add(msg)
			b = b[end+5:]
		case m != nil:
			n, _ := strconv.Atoi(string(m[1]))
			chunks = append(chunks, b[:n]...)
			b = b[n:]
			if m[2] != nil {
				add(chunks)
				chunks = nil
			}
		}
	}
	return out
}

// TestReadmeFacts checks the numbers pcaps/README.md gives for each
// generated capture against the transcripts.
func TestReadmeFacts(t *testing.T) {
	type conn = []message
	facts := map[string][]conn{
		"smtp-basic":      {{{933, "15ad0bb6956e14e256ff036fdd92af949b5ab8a5436ee8d6f20109f6648069b8", "Quarterly report"}}},
		"smtp-pipelining": {{{358, "a45a271955903b0363149362250cf07473ba47798400652349253234c4c80a97", "Lunch on Friday?"}}},
		"smtp-multi": {{
			{326, "ccd441f5138bf4811cbd7d9ee76cf48b382897e3a3f6a184dec0a39fdd4536e7", "Build 1043 passed"},
			{377, "beef85398377947ffb24d6c8b6aade747812dac39d517cd5e6960d77519a1172", "Café meeting ☕"},
		}},
		"smtp-bdat": {{
			{3105, "fc391fccdf18d8dd5f47a820458781b6f1da58f304b816eec40a04ddad24018f", "Chunked delivery"},
			{176, "e367aa206b32733329ed8767184465764f56eb788e85d49787b8ee3dc893f7cc", "Second, one chunk"},
			{165, "e29cb5c8e499e1f0c7919318d13e1f841eae26eeaf5bd95b8c31dc0e8634b2d7", "Third"},
		}},
		"smtp-auth": {
			{{259, "89c230742bbcdfd82ce61307eac3c95dcf9ce372a0ba6f4ec387c22ad861d828", "Submitted 1"}}, nil, nil,
		},
		"smtp-starttls":    {nil},
		"smtp-midstream":   {{{327, "537a7cba9b11375c6bd3bebe24bf052c9de34c280d48c2d5e30c4b33307db2ae", "After the cut"}}},
		"smtp-ipv6-vlan":   {{{333, "954469fa439d46eeb750286209fd4783583e8d7f41a257a25b174862b0d7475b", "IPv6 and VLAN"}}},
		"smtp-sll":         {{{322, "a510948ea5d504a4c599b110c7f48abc225c9db21006a42732bf50eae6c9d22f", "Cooked capture"}}},
		"smtp-sll2":        {{{327, "528aea6952a14533820738f78cdc5891f38e921008a6e2270426b2f20fb9af56", "Cooked capture v2"}}},
		"smtp-null":        {{{318, "979c338503eafb0e19f538d3eeac666258021a4272670f7a16068cb4cb21299e", "Loopback"}}},
		"smtp-frag":        {{{1269, "e39ff138da244204233c10b1da6361ba0391f5550defe3704519ca7eceef581a", "Fragmented"}}},
		"smtp-smuggle":     {{{392, "4f3e4aa4e8b3dcf7530acd29e7abd5aecdc6dde0e9d744eeeb7a9aea861af8b7", "Smuggling probe"}}},
		"smtp-nonstd-port": {{{332, "7ff8119fd7ddfd2eca3484f623cbf0b3078ec6e0685b7a06e1879f4325437013", "Odd port"}}},
		"smtp-oneside":     {{{329, "d50f3d85f356c6431ec44227b425dd7fd75aeddc4e7da2f5021ab01db53865e6", "One side only"}}},
		"hostile-strings": {{
			{587, "9b2690586cb9fa1020f0bed5918810d80ca5fe1cd6d47debcc1b71975e512f3b", "CLEAR\x1b[2J\x1b[3J\x1b[HSCREEN \x1b]0;TITLE\x07 nul\x00 bs\x08 cr\r del\x7f csi\u009b zw\u200b\ufeff bidi\u202eabc\u202c"},
			{46, "58118b9a0d2e589c1b0c04a8fffe85591acb9cae7b5f8f46cefce83b07a2af15", "\x1b[2JCLEARED"},
		}, nil, nil},
		"smtp-portreuse": {
			{{304, "3bad864633d7b040b4dc1354a8b3219a1ba2c92879f782af987dd34e5fba1a58", "Reuse 1"}},
			{{304, "85d596932e22920277398bccf6f57848130af83aaed5e9ccfd820f9eeca9b91a", "Reuse 2"}},
		},
		"smtp-midstream-greeting": {{{352, "56134f0c25eb649542ef6421f9f8763ac3b1f7a157bf8494c5e9892fb21b3b4e", "Greeting first"}}},
	}
	scripts, err := load(filepath.Join(pcaps, "gen"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scripts {
		conns := s.Capture.Conns()
		if s.Name == "smtp-faults" {
			st := conns[0].Stream(synth.ClientSide)
			if st.Sent != 2731 || len(st.Gaps) != 1 || st.Gaps[0].Off != 1697 || st.Gaps[0].Len != 536 {
				t.Errorf("faults: client sent %d, gaps %+v", st.Sent, st.Gaps)
			}
			if g := conns[0].Stream(synth.ServerSide).Gaps; len(g) != 0 {
				t.Errorf("faults: server gaps %+v", g)
			}
			continue
		}
		if check, ok := otherFacts[s.Name]; ok {
			check(t, conns[0])
			continue
		}
		want, ok := facts[s.Name]
		if !ok {
			t.Errorf("%s: no facts in this test (add them with the README line)", s.Name)
			continue
		}
		if len(conns) != len(want) {
			t.Errorf("%s: %d connections, want %d", s.Name, len(conns), len(want))
			continue
		}
		for i, c := range conns {
			if st := c.Stream(synth.ClientSide); len(st.Gaps) != 0 {
				t.Errorf("%s conn %d: unexpected client gaps %+v", s.Name, i, st.Gaps)
			}
			got := messages(t, c.Expected(synth.ClientSide))
			if len(got) != len(want[i]) {
				t.Errorf("%s conn %d: %d messages, want %d", s.Name, i, len(got), len(want[i]))
				continue
			}
			for j := range got {
				if got[j] != want[i][j] {
					t.Errorf("%s conn %d message %d: %+v, want %+v", s.Name, i, j, got[j], want[i][j])
				}
			}
		}
	}
}

// TestCaptureFiles reads every committed capture with pcapgo and checks its
// link type, packet count and size limit.
func TestCaptureFiles(t *testing.T) {
	link := map[string]layers.LinkType{
		"gen-smtp-sll.pcap":    layers.LinkTypeLinuxSLL,
		"gen-smtp-sll2.pcapng": layers.LinkType(276 & 0xff), // pcapgo keeps the low byte
		"gen-smtp-null.pcap":   layers.LinkTypeNull,
	}
	count := map[string]int{"smtp-basic.pcap": 21, "gen-smtp-oneside.pcap": 9}
	scripts, err := load(filepath.Join(pcaps, "gen"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scripts {
		for _, name := range s.Outputs {
			b, err := os.ReadFile(filepath.Join(pcaps, name))
			if err != nil {
				t.Fatal(err)
			}
			if len(b) > maxSize {
				t.Errorf("%s: %d bytes", name, len(b))
			}
			var r interface {
				ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
			}
			var lt layers.LinkType
			f, gz := synth.FormatOf(name)
			in := io.Reader(bytes.NewReader(b))
			if gz {
				plain, err := gunzip(b)
				if err != nil {
					t.Fatal(err)
				}
				in = bytes.NewReader(plain)
			}
			if f == synth.FormatPcapng {
				nr, err := pcapgo.NewNgReader(in, pcapgo.DefaultNgReaderOptions)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				r, lt = nr, nr.LinkType()
			} else {
				pr, err := pcapgo.NewReader(in)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				r, lt = pr, pr.LinkType()
			}
			want, ok := link[name]
			if !ok {
				want = layers.LinkTypeEthernet
			}
			if lt != want {
				t.Errorf("%s: link type %d, want %d", name, lt, want)
			}
			n := 0
			for {
				_, _, err := r.ReadPacketData()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("%s: packet %d: %v", name, n, err)
				}
				n++
			}
			if c, ok := count[name]; ok && n != c {
				t.Errorf("%s: %d packets, want %d", name, n, c)
			}
		}
	}
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// literal returns the n bytes after the first IMAP literal marker {n}.
func literal(t *testing.T, b []byte, n int) []byte {
	t.Helper()
	mark := []byte("{" + strconv.Itoa(n) + "}\r\n")
	i := bytes.Index(b, mark)
	if i < 0 || i+len(mark)+n > len(b) {
		t.Fatalf("no literal {%d}", n)
	}
	return b[i+len(mark) : i+len(mark)+n]
}

// multiline returns the dot-unstuffed body of the first POP3 multi-line
// response starting with the line first that follows the text after.
func multiline(t *testing.T, b []byte, after, first string) []byte {
	t.Helper()
	b = b[bytes.Index(b, []byte(after))+len(after):]
	i := bytes.Index(b, []byte(first+"\r\n"))
	if i < 0 {
		t.Fatalf("no %q", first)
	}
	b = b[i+len(first)+2:]
	end := bytes.Index(b, []byte("\r\n.\r\n"))
	var out []byte
	for _, l := range bytes.SplitAfter(b[:end+2], []byte("\r\n")) {
		out = append(out, bytes.TrimPrefix(l, []byte("."))...)
	}
	return out
}

// otherFacts holds the README facts of the POP3 and IMAP captures.
var otherFacts = map[string]func(*testing.T, *synth.Conn){
	"pop3-basic": func(t *testing.T, c *synth.Conn) {
		srv := c.Expected(synth.ServerSide)
		for _, f := range []struct {
			got  []byte
			size int
			sha  string
		}{
			{multiline(t, srv, "", "+OK 377 octets"), 377, "29e5ab5e6e1a9d0567c2a8aea7934a96b61cb397e6390dd46cdaf79130b2dd7c"},
			{multiline(t, srv, "+OK 377 octets", "+OK"), 334, "6418da5c87cd574e938e6b2924ee728c989a2246ce0779a0c2f33facdcd18442"},
		} {
			if len(f.got) != f.size || sum(f.got) != f.sha {
				t.Errorf("pop3: %d bytes %s, want %d %s", len(f.got), sum(f.got), f.size, f.sha)
			}
		}
	},
	"imap-basic": func(t *testing.T, c *synth.Conn) {
		if got := literal(t, c.Expected(synth.ServerSide), 348); sum(got) != "de5771db6e68cc2c9ddde53becd46e798b12e3ef4fab988b5a9c2ef56a0ac2f8" {
			t.Errorf("imap fetch literal %s", sum(got))
		}
		if got := literal(t, c.Expected(synth.ClientSide), 289); sum(got) != "d9c6861e2c6ed5610530c0bca67b41517bcbe4f175f00f492dbdfeff73d1a811" {
			t.Errorf("imap append literal %s", sum(got))
		}
	},
}
