package synth

import (
	"strings"
	"testing"
)

func TestParseScript(t *testing.T) {
	src := `# A short session.
# Second description line.

@capture link=sll2 out=x.pcapng,x.pcap.gz
@conn client=192.0.2.10:49152 server=198.51.100.25:25 mss=100
S: 220 mail.example.net ESMTP Postfix
C: EHLO c.example.org
S: 250-mail.example.net
S: 250 PIPELINING
@step split=5 reorder=0
C: MAIL FROM:<a@example.org>
C: RCPT TO:<b@example.net>
C~ "DATA\r\n"
@step drop=1 segsize=10
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
@tls client hello sni=mail.example.com
@close client
`
	s, err := ParseScript("short", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if s.Desc != "A short session. Second description line." {
		t.Errorf("desc %q", s.Desc)
	}
	if s.Capture.Link != LinkSLL2 || strings.Join(s.Outputs, " ") != "x.pcapng x.pcap.gz" {
		t.Errorf("link %v outputs %v", s.Capture.Link, s.Outputs)
	}
	cn := s.Capture.Conns()[0]
	wantC := "EHLO c.example.org\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n" + string(ClientHello("mail.example.com"))
	if got := string(cn.Expected(ClientSide)); got != wantC {
		t.Errorf("client %q", got)
	}
	st := cn.Stream(ServerSide)
	head := "220 mail.example.net ESMTP Postfix\r\n250-mail.example.net\r\n250 PIPELINING\r\n"
	if want := head + "250 2.1.0 " + "1.5 Ok\r\n"; len(st.Gaps) != 1 || st.Gaps[0] != (Gap{len(head) + 10, len(head) + 10, 10}) ||
		string(st.Bytes) != want {
		t.Errorf("server %q gaps %+v", st.Bytes, st.Gaps)
	}
	pkts, err := s.Capture.Packets()
	if err != nil {
		t.Fatal(err)
	}
	segs := parseAll(t, s.Capture.Link, pkts)
	if got := reassemble(segs, cn.client.addr, cn.client.isn+1); string(got.Bytes) != wantC {
		t.Errorf("reassembled client %q", got.Bytes)
	}
}

func TestParseScriptErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"C: x\n", "line 1: data before @conn"},
		{"@conn client=192.0.2.1:1\n", "needs client= and server="},
		{"@conn client=192.0.2.1:1 server=192.0.2.2:25\n@step reorder=0\nC: x\n", "line 3: step 1 (client): reorder segment 0"},
		{"@conn client=192.0.2.1:1 server=192.0.2.2:25\nX: x\n", "line 2: want"},
		{"@conn client=192.0.2.1:1 server=192.0.2.2:25\n@bogus\n", "unknown directive"},
		{"@conn client=192.0.2.1:1 server=192.0.2.2:25\nC~ \"unterminated\n", "bad quoted string"},
		{"@capture link=token-ring\n", "unknown link type"},
		{"@conn client=192.0.2.1:1 server=192.0.2.2:25\n@step frag=0:8:fwd\nC: x\n", "want I:SIZE[:rev]"},
		{"@capture out=../x.pcap\n", "bad output name"},
	} {
		_, err := ParseScript("t", strings.NewReader(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.src, err, tc.want)
		}
	}
}
