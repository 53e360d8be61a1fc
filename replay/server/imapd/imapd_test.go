package imapd

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mailtap/mailtap/replay/server/internal/netsrv"
	"github.com/mailtap/mailtap/replay/server/internal/sasl"
	"github.com/mailtap/mailtap/replay/server/internal/srvtest"
	"github.com/mailtap/mailtap/replay/server/mailstore"
)

var fixed = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

const multipartMsg = "From: Ann <ann@example.org>\r\nTo: alice@example.com, Bob <bob@example.net>\r\n" +
	"Subject: parts\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\nMessage-ID: <p@x>\r\n" +
	"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n" +
	"preamble\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello body\r\n" +
	"--b1\r\nContent-Type: application/octet-stream; name=a.bin\r\nContent-Disposition: attachment; filename=a.bin\r\n" +
	"Content-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--b1--\r\n"

func testServer(t *testing.T, mod ...func(*Options)) (string, *mailstore.Store) {
	t.Helper()
	st, _ := mailstore.New(mailstore.Options{Deterministic: true, Clock: func() time.Time { return fixed }})
	st.AddUser("alice", "secret")
	st.Deliver("alice", []byte("Subject: first\r\nFrom: x@y.org\r\n\r\nplain text one\r\n"))
	st.Deliver("alice", []byte(multipartMsg))
	o := &Options{Store: st, Hostname: "imap.test", TLSConfig: srvtest.TLS(t, "imap.test"),
		Clock: func() time.Time { return fixed }, Throttle: &netsrv.AuthThrottle{Delay: time.Millisecond}}
	for _, m := range mod {
		m(o)
	}
	return srvtest.Serve(t, New(o)), st
}

type client struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	c, br := srvtest.Dial(t, addr)
	cl := &client{t: t, c: c, br: br}
	if g := cl.line(); !strings.HasPrefix(g, "* OK [CAPABILITY IMAP4rev1 IMAP4rev2 ") {
		t.Fatalf("greeting %q", g)
	}
	return cl
}

func (c *client) line() string {
	c.t.Helper()
	return srvtest.Line(c.t, c.br)
}

// do sends a tagged command and returns every line up to the tagged reply,
// which must start with "tag want".
func (c *client) do(tag, cmd, want string) string {
	c.t.Helper()
	fmt.Fprintf(c.c, "%s %s\r\n", tag, cmd)
	var lines []string
	for {
		l := c.line()
		lines = append(lines, l)
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l, tag+" "+want) {
				c.t.Fatalf("%s: want %q, got:\n%s", cmd, want, strings.Join(lines, "\n"))
			}
			return strings.Join(lines, "\n")
		}
	}
}

func has(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q in:\n%s", w, out)
		}
	}
}

func login(t *testing.T, addr string) *client {
	c := dial(t, addr)
	c.do("l", "LOGIN alice secret", "OK")
	return c
}

func TestNotAuthenticated(t *testing.T) {
	addr, _ := testServer(t)
	c := dial(t, addr)
	has(t, c.do("a", "CAPABILITY", "OK"), "STARTTLS", "AUTH=PLAIN", "AUTH=CRAM-MD5", "LITERAL+", "SASL-IR", "IDLE", "UIDPLUS", "MOVE", "SPECIAL-USE", "ID")
	c.do("b", "NOOP", "OK")
	has(t, c.do("c", `ID ("name" "test" "version" "1")`, "OK"), `* ID ("name" "mailtap"`)
	c.do("c2", "ID NIL", "OK")
	c.do("d", "SELECT INBOX", "BAD")
	c.do("e", "LOGIN alice wrong", "NO [AUTHENTICATIONFAILED]")
	c.do("f", "FROB", "BAD")
	c.do("g", "LOGIN alice", "BAD")
	c.do("h", "AUTHENTICATE PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret")), "OK [CAPABILITY")
	c.do("i", "LOGIN alice secret", "BAD")
	has(t, c.do("j", "LOGOUT", "OK"), "* BYE")
}

func TestAuthenticate(t *testing.T) {
	addr, _ := testServer(t)
	c := dial(t, addr)
	fmt.Fprintf(c.c, "a AUTHENTICATE LOGIN\r\n")
	if l := c.line(); l != "+ VXNlcm5hbWU6" {
		t.Fatal(l)
	}
	fmt.Fprintf(c.c, "YWxpY2U=\r\n")
	c.line()
	fmt.Fprintf(c.c, "c2VjcmV0\r\n")
	if l := c.line(); !strings.HasPrefix(l, "a OK") {
		t.Fatal(l)
	}
	c = dial(t, addr)
	fmt.Fprintf(c.c, "b AUTHENTICATE CRAM-MD5\r\n")
	ch, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(c.line(), "+ "))
	fmt.Fprintf(c.c, "%s\r\n", base64.StdEncoding.EncodeToString([]byte("alice "+sasl.CRAMDigest("secret", string(ch)))))
	if l := c.line(); !strings.HasPrefix(l, "b OK") {
		t.Fatal(l)
	}
	c = dial(t, addr)
	fmt.Fprintf(c.c, "c AUTHENTICATE PLAIN\r\n")
	c.line()
	fmt.Fprintf(c.c, "*\r\n")
	if l := c.line(); !strings.HasPrefix(l, "c BAD") {
		t.Fatal(l)
	}
	c.do("d", "AUTHENTICATE GSSAPI", "NO")
}

func TestMailboxes(t *testing.T) {
	addr, st := testServer(t)
	c := login(t, addr)
	has(t, c.do("a", `LIST "" "*"`, "OK"), `* LIST (\HasNoChildren) "/" "INBOX"`, `* LIST (\HasNoChildren \Sent) "/" "Sent"`,
		`\Trash) "/" "Trash"`, `\Junk) "/" "Junk"`, `\Drafts) "/" "Drafts"`)
	has(t, c.do("b", `LIST "" ""`, "OK"), `* LIST (\Noselect) "/" ""`)
	c.do("c", "CREATE Work/2024", "OK")
	c.do("c2", "CREATE Work", "NO [ALREADYEXISTS]")
	c.do("c3", "CREATE INBOX", "NO")
	has(t, c.do("d", `LIST "" "%"`, "OK"), `* LIST (\HasChildren) "/" "Work"`)
	if strings.Contains(c.do("d2", `LIST "" "%"`, "OK"), "Work/2024") {
		t.Error("% matched across the delimiter")
	}
	has(t, c.do("d3", `LIST "Work/" "*"`, "OK"), `"Work/2024"`)
	c.do("e", "RENAME Work Job", "OK")
	has(t, c.do("f", `LIST "" "Job*"`, "OK"), `"Job/2024"`)
	c.do("g", "RENAME Nope X", "NO [NONEXISTENT]")
	c.do("h", "SUBSCRIBE Job", "OK")
	has(t, c.do("i", `LSUB "" "*"`, "OK"), `* LSUB () "/" "Job"`, `"INBOX"`)
	c.do("j", "UNSUBSCRIBE Job", "OK")
	if strings.Contains(c.do("k", `LSUB "" "*"`, "OK"), `"Job"`) {
		t.Error("unsubscribed mailbox listed by LSUB")
	}
	has(t, c.do("l", `LIST (SPECIAL-USE) "" "*"`, "OK"), `\Sent`)
	has(t, c.do("m", `LIST "" "INBOX" RETURN (SUBSCRIBED STATUS (MESSAGES UIDNEXT))`, "OK"),
		`* LIST (\HasNoChildren \Subscribed) "/" "INBOX"`, `* STATUS "INBOX" (MESSAGES 2 UIDNEXT 3)`)
	has(t, c.do("n", "STATUS INBOX (MESSAGES UNSEEN UIDVALIDITY UIDNEXT SIZE DELETED RECENT)", "OK"),
		`* STATUS "INBOX" (MESSAGES 2 UNSEEN 2 UIDVALIDITY 1 UIDNEXT 3 SIZE`)
	c.do("o", "STATUS INBOX (BOGUS)", "BAD")
	c.do("p", "DELETE Job/2024", "OK")
	c.do("q", "DELETE INBOX", "NO")
	c.do("r", "DELETE Nope", "NO [NONEXISTENT]")
	has(t, c.do("s", "NAMESPACE", "OK"), `* NAMESPACE (("" "/")) NIL NIL`)
	has(t, c.do("t", "ENABLE IMAP4rev2 CONDSTORE", "OK"), "* ENABLED IMAP4rev2")
	c.do("u", "CREATE Archive (USE (\\Archive))", "OK")
	has(t, c.do("v", `LIST "" Archive`, "OK"), `\Archive`)
	// APPEND with a synchronizing and a non-synchronizing literal.
	msg := "Subject: appended\r\n\r\nhi\r\n"
	fmt.Fprintf(c.c, "w APPEND Drafts (\\Draft $Label) \"05-Feb-2024 10:11:12 +0100\" {%d}\r\n", len(msg))
	if l := c.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatal(l)
	}
	fmt.Fprintf(c.c, "%s\r\n", msg)
	if l := c.line(); !strings.HasPrefix(l, "w OK [APPENDUID 2 1]") {
		t.Fatal(l)
	}
	has(t, c.do("x", fmt.Sprintf("APPEND Drafts {%d+}\r\n%s", len(msg), msg), "OK [APPENDUID 2 2]"))
	c.do("y", fmt.Sprintf("APPEND Missing {%d+}\r\n%s", len(msg), msg), "NO [TRYCREATE]")
	snap, _ := st.Snapshot("alice", "Drafts")
	if len(snap.Messages) != 2 || string(snap.Messages[0].Raw) != msg || strings.Join(snap.Messages[0].Flags, " ") != `$Label \Draft` ||
		snap.Messages[0].InternalDate.UTC().Format(time.RFC3339) != "2024-02-05T09:11:12Z" {
		t.Fatalf("appended: %+v", snap.Messages[0])
	}
}

func TestSelectedCommands(t *testing.T) {
	addr, st := testServer(t)
	c := login(t, addr)
	c.do("a", "FETCH 1 FLAGS", "BAD")
	has(t, c.do("b", "EXAMINE INBOX", "OK [READ-ONLY]"), "* 2 EXISTS", "* 2 RECENT", "[UIDVALIDITY 1]", "[UIDNEXT 3]", "[PERMANENTFLAGS ()]")
	c.do("b2", "STORE 1 +FLAGS (\\Seen)", "NO [READ-ONLY]")
	has(t, c.do("c", "SELECT INBOX", "OK [READ-WRITE]"), "* FLAGS (", "[UNSEEN 1]", "* 2 RECENT") // EXAMINE left them recent
	has(t, c.do("d", "FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)", "OK"),
		`* 1 FETCH (UID 1 FLAGS (\Recent) RFC822.SIZE 49 INTERNALDATE "02-Jan-2024 03:04:05 +0000")`)
	has(t, c.do("e", "FETCH 2 (ENVELOPE BODYSTRUCTURE)", "OK"),
		`ENVELOPE ("Mon, 01 Jan 2024 10:00:00 +0000" "parts" (("Ann" NIL "ann" "example.org"))`,
		`(NIL NIL "alice" "example.com")("Bob" NIL "bob" "example.net")`,
		`BODYSTRUCTURE (("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 10 1 NIL NIL NIL NIL)`,
		`("APPLICATION" "OCTET-STREAM" ("NAME" "a.bin") NIL NIL "BASE64" 4 NIL ("ATTACHMENT" ("FILENAME" "a.bin")) NIL NIL) "MIXED" ("BOUNDARY" "b1") NIL NIL NIL)`)
	has(t, c.do("f", "FETCH 2 (BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[TEXT]<0.8>)", "OK"),
		"BODY[1] {10}\nhello body", "BODY[HEADER.FIELDS (SUBJECT)] {18}\nSubject: parts\n", "BODY[TEXT]<0> {8}", "BODY[2.MIME] {")
	if got := c.do("g", "FETCH 2 FLAGS", "OK"); strings.Contains(got, `\Seen`) {
		t.Fatal("PEEK set \\Seen")
	}
	has(t, c.do("h", "FETCH 1 BODY[]", "OK"), `FLAGS (\Seen \Recent)`, "BODY[] {49}")
	has(t, c.do("i", "UID FETCH 2 (RFC822.HEADER)", "OK"), "* 2 FETCH (UID 2 RFC822.HEADER {")
	c.do("j", "FETCH 9 FLAGS", "BAD")
	c.do("k", "FETCH 1 (BOGUS)", "BAD")
	has(t, c.do("l", "STORE 2 +FLAGS (\\Flagged $Custom)", "OK"), `* 2 FETCH (FLAGS ($Custom \Flagged \Recent))`)
	if strings.Contains(c.do("m", "STORE 2 -FLAGS.SILENT ($Custom)", "OK"), "FETCH") {
		t.Error("SILENT store answered FETCH")
	}
	if strings.Contains(c.do("n", "UID STORE 2 FLAGS.SILENT (\\Answered)", "OK"), "FETCH") {
		t.Error("SILENT UID STORE answered FETCH")
	}
	has(t, c.do("n2", "UID FETCH 2 FLAGS", "OK"), `* 2 FETCH (UID 2 FLAGS (\Answered \Recent))`)
	has(t, c.do("n3", "SEARCH RECENT", "OK"), "* SEARCH 1 2")
	has(t, c.do("n4", "SEARCH NEW", "OK"), "* SEARCH 2")
	// \Recent belongs to the first session that selected: another sees
	// none (RFC 3501 2.3.2).
	c2 := login(t, addr)
	has(t, c2.do("a", "SELECT INBOX", "OK"), "* 0 RECENT")
	if got := c2.do("b", "FETCH 1:* FLAGS", "OK"); strings.Contains(got, `\Recent`) {
		t.Errorf(`second session sees \Recent: %s`, got)
	}
	has(t, c2.do("c", "SEARCH OLD", "OK"), "* SEARCH 1 2")
	has(t, c2.do("d", "EXAMINE INBOX", "OK"), "* OK [CLOSED] Previous mailbox closed")
	has(t, c.do("o", "SEARCH ANSWERED", "OK"), "* SEARCH 2")
	has(t, c.do("p", `SEARCH OR SUBJECT first FROM ann`, "OK"), "* SEARCH 1 2")
	has(t, c.do("q", `UID SEARCH NOT SEEN`, "OK"), "* SEARCH 2")
	has(t, c.do("r", `SEARCH CHARSET UTF-8 BODY "hello body" SINCE 1-Jan-2024 LARGER 10`, "OK"), "* SEARCH 2")
	has(t, c.do("s", `SEARCH RETURN (MIN MAX COUNT) ALL`, "OK"), `* ESEARCH (TAG "s") MIN 1 MAX 2 COUNT 2`)
	has(t, c.do("t", `SEARCH HEADER Message-ID "<p@x>" UID 1:* 2`, "OK"), "* SEARCH 2")
	c.do("u", "SEARCH BOGUS", "BAD")
	c.do("u2", "SEARCH CHARSET KOI8-R ALL", "NO [BADCHARSET")
	has(t, c.do("v", "COPY 1:2 Trash", "OK [COPYUID 5 1:2 1:2]"))
	c.do("w", "COPY 1 Nowhere", "NO [TRYCREATE]")
	has(t, c.do("x", "UID MOVE 1 Junk", "OK"), "* OK [COPYUID 4 1 1]", "* 1 EXPUNGE")
	c.do("y", "STORE 1 +FLAGS (\\Deleted)", "OK")
	has(t, c.do("z", "EXPUNGE", "OK"), "* 1 EXPUNGE")
	c.do("z1", "SELECT Trash", "OK")
	c.do("z2", "STORE 1:2 +FLAGS.SILENT (\\Deleted)", "OK")
	has(t, c.do("z3", "UID EXPUNGE 2", "OK"), "* 2 EXPUNGE")
	c.do("z4", "CHECK", "OK")
	c.do("z5", "CLOSE", "OK")
	if snap, _ := st.Snapshot("alice", "Trash"); len(snap.Messages) != 0 {
		t.Fatal("CLOSE did not expunge")
	}
	c.do("z6", "FETCH 1 FLAGS", "BAD")
	c.do("z7", "EXAMINE Junk", "OK")
	c.do("z8", "UNSELECT", "OK")
	c.do("z9", "UNSELECT", "BAD")
	if snap, _ := st.Snapshot("alice", "INBOX"); len(snap.Messages) != 0 {
		t.Fatalf("INBOX: %+v", snap.Messages)
	}
}

func TestIdleAndUpdates(t *testing.T) {
	addr, st := testServer(t)
	c := login(t, addr)
	c.do("a", "SELECT INBOX", "OK")
	fmt.Fprintf(c.c, "b IDLE\r\n")
	if l := c.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatal(l)
	}
	st.Deliver("alice", []byte("Subject: new\r\n\r\nx\r\n"))
	if l := c.line(); l != "* 3 EXISTS" {
		t.Fatalf("IDLE: %q", l)
	}
	if l := c.line(); l != "* 3 RECENT" { // claimed by this session
		t.Fatalf("IDLE: %q", l)
	}
	st.StoreFlags("alice", "INBOX", []uint32{1}, mailstore.FlagsAdd, []string{`\Seen`})
	if l := c.line(); l != `* 1 FETCH (UID 1 FLAGS (\Seen \Recent))` {
		t.Fatalf("IDLE: %q", l)
	}
	st.Remove("alice", "INBOX", []uint32{2})
	if l := c.line(); l != "* 2 EXPUNGE" {
		t.Fatalf("IDLE: %q", l)
	}
	if l := c.line(); l != "* 2 RECENT" {
		t.Fatalf("IDLE: %q", l)
	}
	fmt.Fprintf(c.c, "DONE\r\n")
	if l := c.line(); !strings.HasPrefix(l, "b OK") {
		t.Fatal(l)
	}
	// Expunges are held back during FETCH, announced at NOOP.
	st.Remove("alice", "INBOX", []uint32{1})
	if strings.Contains(c.do("c", "FETCH 1:* UID", "OK"), "EXPUNGE") {
		t.Fatal("EXPUNGE sent during FETCH")
	}
	has(t, c.do("d", "NOOP", "OK"), "* 1 EXPUNGE")
}

func TestLimitsAndTLS(t *testing.T) {
	addr, _ := testServer(t, func(o *Options) {
		o.MaxLiteralBytes, o.MaxLineLength, o.MaxBadCommands, o.RequireTLSForAuth = 100, 200, 2, true
	})
	c := dial(t, addr)
	has(t, c.do("a", "CAPABILITY", "OK"), "LOGINDISABLED")
	c.do("b", "LOGIN alice secret", "NO [PRIVACYREQUIRED]")
	c.do("c", "STARTTLS", "OK")
	c.c, c.br = srvtest.StartTLS(t, c.c)
	if out := c.do("d", "CAPABILITY", "OK"); strings.Contains(out, "LOGINDISABLED") || strings.Contains(out, "STARTTLS") {
		t.Fatal(out)
	}
	c.do("e", "LOGIN alice secret", "OK")
	c.do("f", "APPEND INBOX {500}", "NO [TOOBIG]")
	fmt.Fprintf(c.c, "g %s\r\n", strings.Repeat("x", 300))
	if l := c.line(); !strings.HasPrefix(l, "* BAD") { // line too long: the tag is not read
		t.Fatal(l)
	}
	fmt.Fprintf(c.c, "h BOGUS\r\n")
	if l := c.line(); !strings.HasPrefix(l, "h BAD") {
		t.Fatal(l)
	}
	if l := c.line(); !strings.HasPrefix(l, "* BYE") {
		t.Fatalf("want BYE after too many bad commands, got %q", l)
	}
}

func TestParsePart(t *testing.T) {
	root := parsePart([]byte(multipartMsg), 0, "text/plain")
	if len(root.children) != 2 || root.mtype != "multipart/mixed" {
		t.Fatalf("parts: %+v", root)
	}
	for _, tc := range []struct {
		sec  section
		want string
	}{
		{section{path: []int{1}}, "hello body"},
		{section{path: []int{2}}, "AAEC"},
		{section{path: []int{2}, spec: "MIME"}, "Content-Type: application/octet-stream; name=a.bin\r\nContent-Disposition: attachment; filename=a.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n"},
		{section{spec: "HEADER.FIELDS", fields: []string{"TO"}}, "To: alice@example.com, Bob <bob@example.net>\r\n\r\n"},
		{section{path: []int{3}}, ""},
	} {
		if got := string(tc.sec.extract(root)); got != tc.want {
			t.Errorf("BODY[%s] = %q, want %q", tc.sec, got, tc.want)
		}
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pat, name string
		want      bool
	}{
		{"*", "a/b", true}, {"%", "a/b", false}, {"a/%", "a/b", true}, {"inbox", "INBOX", true},
		{"a*c", "abc", true}, {"a%c", "a/c", false}, {"", "x", false},
	} {
		if got := matchName(tc.pat, tc.name); got != tc.want {
			t.Errorf("match(%q, %q) = %v", tc.pat, tc.name, got)
		}
	}
	set, err := parseSeqSet("1:3,7,9:*")
	if err != nil || !set.contains(2, 10) || set.contains(5, 10) || !set.contains(10, 10) {
		t.Fatalf("seqset: %v %v", set, err)
	}
	if _, err := parseSeqSet("0:3"); err == nil {
		t.Fatal("0 accepted in a sequence set")
	}
}

// TestLiteralStreamed: announcing a large literal and sending only a few
// bytes of it must not make the server allocate the announced size.
func TestLiteralStreamed(t *testing.T) {
	st, _ := mailstore.New(mailstore.Options{Deterministic: true})
	st.AddUser("alice", "secret")
	s := New(&Options{Store: st})
	in := []byte("a LOGIN alice secret\r\nb APPEND INBOX {30000000+}\r\nSubject: x\r\n\r\nonly this")
	srvtest.Session(s.handle, in) // warm up
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	srvtest.Session(s.handle, in)
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Fatalf("a session announcing a 30 MB literal and sending 22 bytes allocated %d bytes", d)
	}
	if in, _ := st.Snapshot("alice", "INBOX"); len(in.Messages) != 0 {
		t.Fatal("a cut-off literal was stored")
	}
}

// TestAuthenticateTrailingSpace: "AUTHENTICATE CRAM-MD5 " (mutt 2.2 with
// Cyrus SASL) means no initial response.
func TestAuthenticateTrailingSpace(t *testing.T) {
	addr, _ := testServer(t)
	c := dial(t, addr)
	fmt.Fprintf(c.c, "a0000 AUTHENTICATE CRAM-MD5 \r\n")
	l := c.line()
	if !strings.HasPrefix(l, "+ ") {
		t.Fatalf("want a challenge, got %q", l)
	}
	ch, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(l, "+ "))
	fmt.Fprintf(c.c, "%s\r\n", base64.StdEncoding.EncodeToString([]byte("alice "+sasl.CRAMDigest("secret", string(ch)))))
	if l := c.line(); !strings.HasPrefix(l, "a0000 OK") {
		t.Fatal(l)
	}
}

// TestLiteralGrammar: commands are framed by the decoder's literal rule
// (decode/imap.ParseLiteralSuffix): "{n-}" (LITERAL-) is a literal, a
// "{5}" inside a quoted string is not, and a size beyond 32 bits is too
// large.
func TestLiteralGrammar(t *testing.T) {
	addr, st := testServer(t)
	st.AddUser("bob", "pass {5}")
	c := dial(t, addr)
	fmt.Fprintf(c.c, "a LOGIN {5-}\r\nalice {6-}\r\nsecret\r\n")
	if l := c.line(); !strings.HasPrefix(l, "a OK") {
		t.Fatalf("LOGIN with {n-} literals: %q", l)
	}
	c.do("b", "APPEND INBOX {99999999999}", "NO [TOOBIG]")
	c = dial(t, addr)
	c.do("c", `LOGIN bob "pass {5}"`, "OK")
}
