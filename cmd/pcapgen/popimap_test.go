package main

import (
	"bytes"
	"compress/flate"
	"crypto/hmac"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/mailtap/mailtap/capture/synth"
)

// The README facts of the generated POP3 and IMAP captures other than
// pop3-basic and imap-basic, recomputed from the transcripts.
func init() {
	for name, check := range popIMAPFacts {
		otherFacts[name] = check
	}
}

// script loads a transcript again, for the captures with several
// connections (otherFacts checks get the first one only).
func script(t *testing.T, name string) []*synth.Conn {
	t.Helper()
	s, err := synth.LoadScript(filepath.Join(pcaps, "gen", name+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	return s.Capture.Conns()
}

func wantSum(t *testing.T, what string, got []byte, size int, sha string) {
	t.Helper()
	if len(got) != size || sum(got) != sha {
		t.Errorf("%s: %d bytes sha256 %s, want %d %s", what, len(got), sum(got), size, sha)
	}
}

func wantIn(t *testing.T, what string, b []byte, s string) {
	t.Helper()
	if !bytes.Contains(b, []byte(s)) {
		t.Errorf("%s: no %q", what, s)
	}
}

// literalPlus returns the bytes of the first non-synchronizing literal {n+}.
func literalPlus(t *testing.T, b []byte, n int) []byte {
	t.Helper()
	mark := []byte("{" + strconv.Itoa(n) + "+}\r\n")
	i := bytes.Index(b, mark)
	if i < 0 || i+len(mark)+n > len(b) {
		t.Fatalf("no literal {%d+}", n)
	}
	return b[i+len(mark) : i+len(mark)+n]
}

// lineAfter returns the CRLF-terminated line that follows prefix.
func lineAfter(t *testing.T, b []byte, prefix string) string {
	t.Helper()
	i := bytes.Index(b, []byte(prefix))
	if i < 0 {
		t.Fatalf("no %q", prefix)
	}
	line, _, _ := bytes.Cut(b[i+len(prefix):], []byte("\r\n"))
	return string(line)
}

func unb64(t *testing.T, s string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("base64 %q: %v", s, err)
	}
	return string(b)
}

// inflate reads the raw DEFLATE stream that follows marker in b, up to
// the last sync flush.
func inflate(t *testing.T, b []byte, marker string) []byte {
	t.Helper()
	i := bytes.Index(b, []byte(marker))
	if i < 0 {
		t.Fatalf("no %q", marker)
	}
	out, err := io.ReadAll(flate.NewReader(bytes.NewReader(b[i+len(marker):])))
	if err != nil && err != io.ErrUnexpectedEOF {
		t.Fatalf("inflate: %v", err)
	}
	return out
}

// mutf7 decodes an IMAP mailbox name (RFC 3501 §5.1.3).
func mutf7(t *testing.T, s string) string {
	t.Helper()
	var out strings.Builder
	for s != "" {
		i := strings.IndexByte(s, '&')
		if i < 0 {
			out.WriteString(s)
			break
		}
		out.WriteString(s[:i])
		j := strings.IndexByte(s[i:], '-') + i
		enc := s[i+1 : j]
		if enc == "" {
			out.WriteByte('&')
		} else {
			b, err := base64.RawStdEncoding.DecodeString(strings.ReplaceAll(enc, ",", "/"))
			if err != nil || len(b)%2 != 0 {
				t.Fatalf("mutf7 %q: %v", s, err)
			}
			u := make([]uint16, len(b)/2)
			for k := range u {
				u[k] = binary.BigEndian.Uint16(b[2*k:])
			}
			out.WriteString(string(utf16.Decode(u)))
		}
		s = s[j+1:]
	}
	return out.String()
}

var popIMAPFacts = map[string]func(*testing.T, *synth.Conn){
	"pop3-auth": func(t *testing.T, _ *synth.Conn) {
		cs := script(t, "pop3-auth")
		if len(cs) != 5 {
			t.Fatalf("pop3-auth: %d connections, want 5", len(cs))
		}
		wantIn(t, "pop3-auth 1", cs[0].Expected(synth.ClientSide), "PASS wrong-password\r\nUSER alice\r\nPASS secret\r\n")
		wantIn(t, "pop3-auth 1", cs[0].Expected(synth.ServerSide), "-ERR [AUTH] Authentication failed.\r\n")

		chal := "<" + lineAfter(t, cs[1].Expected(synth.ServerSide), "ready. <")
		d := md5.Sum([]byte(chal + "tanstaaf"))
		if dig := hex.EncodeToString(d[:]); dig != "b9d87fc0af907a114f71b983e9fad62e" {
			t.Errorf("pop3-auth APOP digest %s", dig)
		}
		wantIn(t, "pop3-auth 2", cs[1].Expected(synth.ClientSide), "APOP bob b9d87fc0af907a114f71b983e9fad62e\r\n")

		if got := unb64(t, lineAfter(t, cs[2].Expected(synth.ClientSide), "AUTH PLAIN ")); got != "\x00carol\x00c4rol-PLAIN" {
			t.Errorf("pop3-auth PLAIN %q", got)
		}

		cli := cs[3].Expected(synth.ClientSide)
		lines := strings.Split(string(cli), "\r\n")
		if len(lines) < 3 || lines[0] != "AUTH LOGIN" || unb64(t, lines[1]) != "dave" || unb64(t, lines[2]) != "d4ve-LOGIN" {
			t.Errorf("pop3-auth LOGIN %q", lines)
		}

		cchal := unb64(t, lineAfter(t, cs[4].Expected(synth.ServerSide), "+ "))
		m := hmac.New(md5.New, []byte("tanstaaftanstaaf"))
		m.Write([]byte(cchal))
		resp := unb64(t, lineAfter(t, cs[4].Expected(synth.ClientSide), "AUTH CRAM-MD5\r\n"))
		if cchal != "<3204969621.1741014040@mail.example.net>" || resp != "erin "+hex.EncodeToString(m.Sum(nil)) || resp != "erin 8466c5160378089ccd84340f57b37757" {
			t.Errorf("pop3-auth CRAM-MD5 challenge %q response %q", cchal, resp)
		}
	},
	"pop3-capa-uidl": func(t *testing.T, c *synth.Conn) {
		srv := c.Expected(synth.ServerSide)
		for _, s := range []string{
			"+OK 3 2938\r\n",
			"+OK 3 messages:\r\n1 918\r\n2 1209\r\n3 811\r\n.\r\n",
			"+OK 2 1209\r\n-ERR There's no message 7.\r\n",
			"+OK\r\n1 0000000167c5f0b1\r\n2 0000000267c5f0b1\r\n3 0000000367c5f0b1\r\n.\r\n",
			"+OK 3 0000000367c5f0b1\r\n-ERR There's no message 9.\r\n",
		} {
			wantIn(t, "pop3-capa-uidl", srv, s)
		}
	},
	"pop3-pipelining": func(t *testing.T, c *synth.Conn) {
		wantIn(t, "pop3-pipelining", c.Expected(synth.ClientSide), "RETR 1\r\nRETR 2\r\nDELE 1\r\nDELE 2\r\nQUIT\r\n")
		srv := c.Expected(synth.ServerSide)
		wantSum(t, "pop3-pipelining RETR 1", multiline(t, srv, "Logged in.", "+OK 918 octets"), 918, "1d4a85eb52a512fcaa8e085985ddb4d2245e65326e833b5db4dba0d8ac031795")
		wantSum(t, "pop3-pipelining RETR 2", multiline(t, srv, "Logged in.", "+OK 1209 octets"), 1209, "e0eaceb872cbe5cc29b19a48a921f143b326ec1482268bfe17baf2b70a30d740")
	},
	"pop3-rset": func(t *testing.T, c *synth.Conn) {
		wantIn(t, "pop3-rset", c.Expected(synth.ClientSide), "DELE 1\r\nDELE 2\r\nRSET\r\nQUIT\r\n")
		wantSum(t, "pop3-rset RETR 1", multiline(t, c.Expected(synth.ServerSide), "", "+OK 918 octets"), 918, "1d4a85eb52a512fcaa8e085985ddb4d2245e65326e833b5db4dba0d8ac031795")
	},
	"pop3-drop": func(t *testing.T, c *synth.Conn) {
		if cli := c.Expected(synth.ClientSide); !bytes.HasSuffix(cli, []byte("RETR 3\r\nDELE 3\r\n")) {
			t.Errorf("pop3-drop: client ends %q", cli[max(0, len(cli)-30):])
		}
		wantSum(t, "pop3-drop RETR 3", multiline(t, c.Expected(synth.ServerSide), "", "+OK 811 octets"), 811, "e57c09bad22e9ff6cfe294e671998bfaf1c26776293b1039ecd85046a3d8d747")
	},
	"pop3-top": func(t *testing.T, c *synth.Conn) {
		srv := c.Expected(synth.ServerSide)
		wantSum(t, "pop3-top TOP 1 0", multiline(t, srv, "Logged in.", "+OK"), 738, "4333cf959c50b1f64a3d1a1831e3ad14e0814a5b967c22eba6934ef4cd739a26")
		wantSum(t, "pop3-top TOP 2 5", multiline(t, srv, "8bit\r\n\r\n.\r\n", "+OK"), 1018, "01f1832df2fc1cd87bd399f9ceae9c91dab2197a6c7e53801daaf16893e937c6")
	},
	"pop3-loss": func(t *testing.T, c *synth.Conn) {
		st := c.Stream(synth.ServerSide)
		if len(st.Gaps) != 1 || st.Gaps[0].Off != 20503 || st.Gaps[0].Len != 1460 || st.Sent != 42578 {
			t.Errorf("pop3-loss: server sent %d, gaps %+v", st.Sent, st.Gaps)
		}
		if g := c.Stream(synth.ClientSide).Gaps; len(g) != 0 {
			t.Errorf("pop3-loss: client gaps %+v", g)
		}
		// The message as sent: the same transcript without the loss.
		b, err := os.ReadFile(filepath.Join(pcaps, "gen", "pop3-loss.txt"))
		if err != nil {
			t.Fatal(err)
		}
		whole, err := synth.ParseScript("whole", strings.NewReader(strings.Replace(string(b), "@step drop=14\n", "", 1)))
		if err != nil {
			t.Fatal(err)
		}
		msg := multiline(t, whole.Capture.Conns()[0].Expected(synth.ServerSide), "", "+OK 41661 octets")
		wantSum(t, "pop3-loss RETR 1", msg, 41661, "41d5d665c6b356c3da6e2c22427d4789a519518b287b76a33cec2d6f5b1e4181")
		wantSum(t, "pop3-loss RETR 1 before the gap", msg[:20422], 20422, "a87194a05013390226f211ed1fe793b196db3bb86fd086ce750cf07d0c2b5317")
		wantSum(t, "pop3-loss RETR 2", multiline(t, st.Bytes, "", "+OK 751 octets"), 751, "65b402ba71a591914d46583de3e5e5a9339493faeda51d38ac322027f24629ec")
	},
	"pop3-stls": func(t *testing.T, c *synth.Conn) {
		cli := c.Expected(synth.ClientSide)
		i := bytes.Index(cli, []byte("STLS\r\n"))
		if i < 0 || cli[i+6] != 0x16 || !bytes.Contains(cli[i:], []byte("pop.example.test")) {
			t.Errorf("pop3-stls: no ClientHello with SNI pop.example.test after STLS")
		}
	},
	"pop3-midstream": func(t *testing.T, c *synth.Conn) {
		srv := c.Expected(synth.ServerSide)
		wantSum(t, "pop3-midstream tail", multiline(t, []byte("+OK\r\n"+string(srv)), "", "+OK"), 167, "527d781de2d546358f1556b89faa7254e11c8da5450116977039b87ecee7a83f")
		wantSum(t, "pop3-midstream RETR 3", multiline(t, srv, "", "+OK 811 octets"), 811, "e57c09bad22e9ff6cfe294e671998bfaf1c26776293b1039ecd85046a3d8d747")
	},

	"imap-literals": func(t *testing.T, c *synth.Conn) {
		wantIn(t, "imap-literals", c.Expected(synth.ClientSide), "a1 LOGIN bob {11}\r\n\"quoted\" pw\r\n")
		srv := c.Expected(synth.ServerSide)
		for _, f := range []struct {
			size int
			sha  string
		}{
			{776, "541d19c43d0983d37d2e2b300469bf6fd676e04815afb30f013290164b756ff2"},
			{747, "0dc1e9bee5074618313eaf3ac6f6f2c8f38f123cfdd8c1406fea25f8fa0214e6"},
			{1013, "19e8cab87add955a4576852e75298f71f1773bd6f8cf187d05d2e0dfcc1cfc6b"},
			{769, "ca5f247fb0f1c9001c0a670bcdd685c9e8fe8178744a6ec25a05124ace2b61f9"},
			{699, "b28f123883881cfa5609d3df76988cbf192c196fcfebe1d277f40ae770fb3c13"},
			{77, "194ef663e0f11dbf294e0ff161d69046d2372ae68e4e92a5670c86271f847ef1"},
			{691, "f2677c398e5634e9da7d953e9da475c1a0c00fc407ba9b0864826da2ad75008c"},
			{56, "04d062147bde8c9d273a5a7b17c0254e92ebf18562e7254b56b071b7e7c2992e"},
		} {
			wantSum(t, "imap-literals", literal(t, srv, f.size), f.size, f.sha)
		}
	},
	"imap-append-no": func(t *testing.T, c *synth.Conn) {
		cli := c.Expected(synth.ClientSide)
		wantIn(t, "imap-append-no", cli, "a2 APPEND Sent (\\Seen) {15728640}\r\na3 APPEND Sent (\\Seen) {375}\r\n")
		wantIn(t, "imap-append-no", c.Expected(synth.ServerSide), "a2 NO [TOOBIG] Mail size is too large\r\n+ OK\r\n")
		wantSum(t, "imap-append-no", literal(t, cli, 375), 375, "3984beb2125bf4271eaedd22ca6ebcd756fd7c8844a8e265363a2ef6a33adb31")
	},
	"imap-append-literalplus": func(t *testing.T, c *synth.Conn) {
		cli := c.Expected(synth.ClientSide)
		wantSum(t, "imap-append-literalplus Drafts", literalPlus(t, cli, 369), 369, "f58b1104414465b8213e7c1421f9558053cec0d600c60f7ece04534c3d7c5db5")
		wantSum(t, "imap-append-literalplus Sent 1", literalPlus(t, cli, 390), 390, "bffc2225b43ba0340eb7e955c5b59f6d8ca94846a6d4b593a09563beaa0775f8")
		wantSum(t, "imap-append-literalplus Sent 2", literalPlus(t, cli, 354), 354, "203570dff6e4dd65b6d5736cdf80d078671a78a27a86c241d2c98ec31b2f695a")
		if srv := c.Expected(synth.ServerSide); bytes.Contains(srv, []byte("\r\n+ ")) {
			t.Errorf("imap-append-literalplus: a continuation request")
		}
	},
	"imap-idle": func(t *testing.T, c *synth.Conn) {
		srv := c.Expected(synth.ServerSide)
		wantIn(t, "imap-idle", srv, "+ idling\r\n* 4 EXISTS\r\n* 1 RECENT\r\na3 OK Idle completed")
		wantIn(t, "imap-idle", c.Expected(synth.ClientSide), "a3 IDLE\r\nDONE\r\na4 UID FETCH 4")
		wantSum(t, "imap-idle", literal(t, srv, 772), 772, "7e6e7e9a9ec32779376f32b443f4dd01915161833d5a7ba5a91f5398f09319c1")
	},
	"imap-compress": func(t *testing.T, c *synth.Conn) {
		cli := inflate(t, c.Expected(synth.ClientSide), "a2 COMPRESS DEFLATE\r\n")
		if string(cli) != "a3 SELECT INBOX\r\na4 UID FETCH 2 (BODY.PEEK[])\r\na5 LOGOUT\r\n" {
			t.Errorf("imap-compress client: %q", cli)
		}
		srv := inflate(t, c.Expected(synth.ServerSide), "a2 OK Begin compression.\r\n")
		if len(srv) != 1223 || !bytes.HasSuffix(srv, []byte("a5 OK Logout completed (0.001 + 0.000 secs).\r\n")) {
			t.Errorf("imap-compress server: %d bytes", len(srv))
		}
		wantSum(t, "imap-compress", literal(t, srv, 747), 747, "0dc1e9bee5074618313eaf3ac6f6f2c8f38f123cfdd8c1406fea25f8fa0214e6")
	},
	"imap-mailboxes": func(t *testing.T, c *synth.Conn) {
		if got := mutf7(t, "&AMk-t&AOk-"); got != "Été" {
			t.Errorf("imap-mailboxes: &AMk-t&AOk- is %q", got)
		}
		cli := c.Expected(synth.ClientSide)
		for _, s := range []string{"a2 CREATE &AMk-t&AOk-\r\n", "a4 RENAME Projects Archive\r\n", "a10 UID COPY 1:2 &AMk-t&AOk-\r\n",
			"a16 UID MOVE 3 Archive\r\n", "a17 UID STORE 4 +FLAGS (\\Seen \\Flagged)\r\n", "a19 UID EXPUNGE 5\r\n", "a20 DELETE Archive\r\n"} {
			wantIn(t, "imap-mailboxes", cli, s)
		}
		srv := c.Expected(synth.ServerSide)
		for _, s := range []string{"a10 OK [COPYUID 1741020001 1:2 1:2]", "* 1 EXPUNGE\r\na12 OK", "* OK [COPYUID 1741020002 3 1] Moved UIDs.\r\n* VANISHED 3\r\na16 OK",
			"* 2 FETCH (UID 4 MODSEQ (16) FLAGS (\\Seen \\Flagged))\r\na17 OK", "* VANISHED 5\r\na19 OK"} {
			wantIn(t, "imap-mailboxes", srv, s)
		}
	},
	"imap-auth": func(t *testing.T, _ *synth.Conn) {
		cs := script(t, "imap-auth")
		if len(cs) != 3 {
			t.Fatalf("imap-auth: %d connections, want 3", len(cs))
		}
		if got := unb64(t, lineAfter(t, cs[0].Expected(synth.ClientSide), "a1 AUTHENTICATE PLAIN ")); got != "\x00bob\x00b0b-PLAIN" {
			t.Errorf("imap-auth PLAIN %q", got)
		}
		lines := strings.Split(string(cs[1].Expected(synth.ClientSide)), "\r\n")
		if len(lines) < 3 || lines[0] != "a1 AUTHENTICATE LOGIN" || unb64(t, lines[1]) != "carol" || unb64(t, lines[2]) != "c4rol-LOGIN" {
			t.Errorf("imap-auth LOGIN %q", lines)
		}
		wantIn(t, "imap-auth 3", cs[2].Expected(synth.ServerSide), "a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")
	},
	"imap-starttls": func(t *testing.T, c *synth.Conn) {
		cli := c.Expected(synth.ClientSide)
		i := bytes.Index(cli, []byte("a2 STARTTLS\r\n"))
		if i < 0 || cli[i+13] != 0x16 || !bytes.Contains(cli[i:], []byte("imap.example.test")) {
			t.Errorf("imap-starttls: no ClientHello with SNI imap.example.test after STARTTLS")
		}
	},
	"imap-partial": func(t *testing.T, c *synth.Conn) {
		srv := c.Expected(synth.ServerSide)
		wantSum(t, "imap-partial BODY[]<0>", literal(t, srv, 100), 100, "bb6cf57d2dcb9b3a8d5603644e3ef9fda6ed33a9b86f5ad3d58226190a525290")
		hf := literal(t, srv, 115)
		wantSum(t, "imap-partial HEADER.FIELDS", hf, 115, "79b5fc405e9ce5a117db2287d642bf54c678e7262580452752160888d91b0fd7")
		wantSum(t, "imap-partial BODY[2]", literal(t, srv, 1508), 1508, "f7762f26b9fc7367a4560de274ee9b8efdd604b1322cecbcf713a297d8d4db09")
		bin := literal(t, srv, 124)
		wantSum(t, "imap-partial BINARY[1]", bin, 124, "630099d6a63a8220f971483e12e827062f11a248c89aca62cbbbf0186528a045")
		if !bytes.Contains(bin, []byte("Zahlen für März mit.\r\n\r\nGrüße\r\nJürgen")) {
			t.Errorf("imap-partial BINARY[1] %q", bin)
		}
	},
	"imap-midstream": func(t *testing.T, c *synth.Conn) {
		srv := c.Expected(synth.ServerSide)
		if !bytes.HasPrefix(srv, []byte(" 4. Tag, build, sign, upload.\r\n")) {
			t.Errorf("imap-midstream starts %q", srv[:32])
		}
		wantSum(t, "imap-midstream", literal(t, srv, 769), 769, "ca5f247fb0f1c9001c0a670bcdd685c9e8fe8178744a6ec25a05124ace2b61f9")
	},
}
