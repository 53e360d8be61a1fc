package imap

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/mailtap/mailtap/decode"
)

const msg1 = "From: Alice <alice@example.com>\r\nTo: bob@example.com\r\nSubject: Hi\r\nMessage-ID: <1@example.com>\r\n\r\nHello Bob.\r\n"
const msg2 = "From: carol@example.com\r\nSubject: Second\r\n\r\nline one\r\nline two\r\n"

func lit(s string) string { return fmt.Sprintf("{%d}\r\n%s", len(s), s) }

// The arkime/imap.pcap exchange (Exchange 5.5), shortened.
var loginSelectFetch = []step{
	S("* OK Microsoft Exchange IMAP4rev1 server version 5.5.2650.23 (umr-mail02) ready\r\n"),
	C("a0000 CAPABILITY\r\n"),
	S("* CAPABILITY IMAP4 IMAP4rev1 IDLE LITERAL+ LOGIN-REFERRALS MAILBOX-REFERRALS NAMESPACE AUTH=NTLM\r\na0000 OK CAPABILITY completed.\r\n"),
	C("a0001 LOGIN \"neulingern\" \"XXXXXX\"\r\n"),
	S("a0001 OK LOGIN completed.\r\n"),
	C("a0002 LIST \"\" \"\"\r\n"),
	S("* LIST (\\Noselect) \"/\" \"\"\r\na0002 OK LIST completed.\r\n"),
	C("a0003 SELECT \"INBOX\"\r\n"),
	S("* 13 EXISTS\r\n* 13 RECENT\r\n* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)\r\n* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)]\r\n* OK [UIDVALIDITY 2097] UIDVALIDITY value.\r\na0003 OK [READ-WRITE] SELECT completed.\r\n"),
	C("a0004 FETCH 1:2 (FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)])\r\n"),
	S("* 1 FETCH (FLAGS (\\Seen \\Recent) INTERNALDATE \"11-Nov-1999 08:36:54 -0600\" RFC822.SIZE 2059 BODY[HEADER.FIELDS (FROM SUBJECT)] " +
		lit("From: \"Uetrecht, Daniel J.\" <uetrecht@umr.edu>\r\nSubject: RE: pipes\r\n\r\n") + ")\r\n" +
		"* 2 FETCH (FLAGS (\\Seen) INTERNALDATE \"11-Nov-1999 08:42:21 -0600\" RFC822.SIZE 3151 BODY[HEADER.FIELDS (FROM SUBJECT)] " +
		lit("From: x@umr.edu\r\nSubject: two\r\n\r\n") + ")\r\na0004 OK FETCH completed.\r\n"),
	C("a0005 UID FETCH 5 (UID BODY.PEEK[])\r\n"),
	S("* 3 FETCH (UID 5 BODY[] " + lit(msg1) + " FLAGS (\\Seen))\r\na0005 OK UID FETCH completed.\r\n"),
	C("a0006 LOGOUT\r\n"),
	S("* BYE bye\r\na0006 OK LOGOUT completed.\r\n"),
}

func TestLoginSelectFetch(t *testing.T) {
	recs := run(loginSelectFetch)
	wantPairs(t, recs, "a0000 CAPABILITY OK\na0001 LOGIN OK\na0002 LIST OK\na0003 SELECT OK\na0004 FETCH OK\na0005 UID FETCH OK\na0006 LOGOUT OK\n")
	cmds := commands(recs)
	if cmds[1].Args != `"neulingern" <redacted>` {
		t.Errorf("LOGIN args = %q", cmds[1].Args)
	}
	if !slices.Contains(cmds[3].Untagged, "13 EXISTS") {
		t.Errorf("SELECT untagged = %q", cmds[3].Untagged)
	}
	ms := messages(recs)
	if len(ms) != 3 {
		t.Fatalf("want 3 imap.message, got %d\n%s", len(ms), dump(recs))
	}
	if ms[0].Seq != 1 || ms[0].Section != "BODY[HEADER.FIELDS (FROM SUBJECT)]" || ms[0].Mailbox != "INBOX" || ms[0].Direction != "fetch" {
		t.Errorf("first message: %+v", ms[0])
	}
	if !slices.Equal(ms[0].Flags, []string{`\Seen`, `\Recent`}) {
		t.Errorf("flags = %q", ms[0].Flags)
	}
	if ms[1].Seq != 2 || ms[1].Message.SHA256 != sha("From: x@umr.edu\r\nSubject: two\r\n\r\n") {
		t.Errorf("second message: %+v %+v", ms[1], ms[1].Message)
	}
	// UID and FLAGS after the literal still reach the record.
	if ms[2].UID != 5 || ms[2].Seq != 3 || ms[2].Section != "BODY[]" || ms[2].Message.SHA256 != sha(msg1) || ms[2].Message.Size != int64(len(msg1)) {
		t.Errorf("BODY[] message: %+v %+v", ms[2], ms[2].Message)
	}
	if !slices.Equal(ms[2].Flags, []string{`\Seen`}) || ms[2].Message.Truncated {
		t.Errorf("BODY[] flags/truncated: %+v", ms[2])
	}
	s := session(t, recs)
	if s.Auth == nil || s.Auth.User != "neulingern" || s.Auth.Mechanism != "LOGIN" || s.Auth.Success == nil || !*s.Auth.Success || s.Auth.Password != "<redacted>" {
		t.Errorf("auth = %+v", s.Auth)
	}
	if !slices.Equal(s.Mailboxes, []string{"INBOX"}) || s.Commands != 7 || s.Transactions != 3 || s.State != decode.StateComplete {
		t.Errorf("session = %+v", s)
	}
	if !slices.Contains(s.Capabilities, "AUTH=NTLM") || !strings.HasPrefix(s.Greeting, "* OK Microsoft Exchange") {
		t.Errorf("caps/greeting = %q %q", s.Capabilities, s.Greeting)
	}
	if len(s.Anomalies) != 0 {
		t.Errorf("anomalies = %q", s.Anomalies)
	}
}

func TestShowSecrets(t *testing.T) {
	recs := runWith(loginSelectFetch, decode.Options{Level: decode.LevelCommands, ShowSecrets: true}, testConn(), nil)
	if a := session(t, recs).Auth; a.Password != "XXXXXX" {
		t.Errorf("password = %q", a.Password)
	}
	if c := commands(recs)[1]; c.Args != `"neulingern" XXXXXX` {
		t.Errorf("args = %q", c.Args)
	}
}

func TestTransactionsLevelHasNoCommands(t *testing.T) {
	recs := runWith(loginSelectFetch, decode.Options{}, testConn(), nil)
	if n := len(commands(recs)); n != 0 {
		t.Errorf("%d command records at transactions level", n)
	}
	if n := len(messages(recs)); n != 3 {
		t.Errorf("%d messages", n)
	}
}

func TestAuthenticatePlain(t *testing.T) {
	// bruteshark "IMAP - Authenticate Plain (Base64)": continuation, then
	// APPEND with LITERAL+ and APPENDUID.
	const body = "Message-ID: <521663E3.7090401@networksims.com>\r\nFrom: DI <digitalinvestigator@networksims.com>\r\nSubject: Testing\r\n\r\nHello ... how are you?\r\n"
	recs := run([]step{
		S("* OK IMAP server ready H mimap13 96217\r\n"),
		C("1 capability\r\n"),
		S("* CAPABILITY IMAP4rev1 CHILDREN ENABLE ID IDLE LITERAL+ MOVE NAMESPACE SASL-IR UIDPLUS AUTH=LOGIN AUTH=PLAIN\r\n1 OK CAPABILITY completed\r\n"),
		C("2 authenticate plain\r\n"),
		S("+ \r\n"),
		C("AGRpZ2l0YWxpbnZlc3RpZ2F0b3JAbmV0d29ya3NpbXMuY29tAG5hcGllcjEyMw==\r\n"),
		S("2 OK AUTHENTICATE completed\r\n"),
		C("3 ID (\"name\" \"Thunderbird\" \"version\" \"17.0.8\")\r\n"),
		S("3 OK ID completed\r\n"),
		C(fmt.Sprintf("4 append \"Sent\" (\\Seen) {%d+}\r\n", len(body))),
		C(body + "\r\n"),
		S("4 OK [APPENDUID 1377199071 1] APPEND completed\r\n"),
		C("5 logout\r\n"),
		S("* BYE Server logging out\r\n5 OK LOGOUT completed\r\n"),
	})
	wantPairs(t, recs, "1 CAPABILITY OK\n2 AUTHENTICATE OK\n3 ID OK\n4 APPEND OK\n5 LOGOUT OK\n")
	a := session(t, recs).Auth
	if a == nil || a.Mechanism != "PLAIN" || a.User != "digitalinvestigator@networksims.com" || a.Password != "<redacted>" || !*a.Success {
		t.Errorf("auth = %+v", a)
	}
	ms := messages(recs)
	if len(ms) != 1 || ms[0].Direction != "append" || ms[0].Mailbox != "Sent" || ms[0].Status != "OK" || ms[0].Message.SHA256 != sha(body) {
		t.Fatalf("append message: %s", dump(recs))
	}
	if !slices.Equal(ms[0].Flags, []string{`\Seen`}) {
		t.Errorf("flags %q", ms[0].Flags)
	}
	mb := mailboxes(recs)
	if len(mb) != 1 || mb[0].Action != "append" || mb[0].Mailbox != "Sent" || mb[0].UIDs != "1" || mb[0].Status != "OK" {
		t.Errorf("mailbox records: %s", dump(recs))
	}
}

func TestAuthenticateSASLIR(t *testing.T) {
	recs := runWith([]step{
		S("* OK ready\r\n"),
		C("a1 AUTHENTICATE PLAIN AHVzZXIAc2VjcmV0\r\n"),
		S("a1 OK done\r\n"),
		C("a2 NOOP\r\n"),
		S("a2 OK\r\n"),
	}, decode.Options{Level: decode.LevelCommands, ShowSecrets: true}, testConn(), nil)
	wantPairs(t, recs, "a1 AUTHENTICATE OK\na2 NOOP OK\n")
	a := session(t, recs).Auth
	if a.User != "user" || a.Password != "secret" {
		t.Errorf("auth = %+v", a)
	}
	recs = run([]step{C("a1 AUTHENTICATE PLAIN AHVzZXIAc2VjcmV0\r\n"), S("a1 NO bad\r\n")})
	if c := commands(recs)[0]; c.Args != "PLAIN <redacted>" {
		t.Errorf("args = %q", c.Args)
	}
	if a := session(t, recs).Auth; a.Password != "<redacted>" || *a.Success {
		t.Errorf("auth = %+v", a)
	}
}

func TestAuthenticateMechanisms(t *testing.T) {
	b64 := func(s string) string { return encodeStd(s) }
	tests := []struct {
		name  string
		steps []step
		user  string
		pass  string
	}{
		{"LOGIN", []step{C("a AUTHENTICATE LOGIN\r\n"), S("+ VXNlcm5hbWU6\r\n"), C(b64("joe") + "\r\n"), S("+ UGFzc3dvcmQ6\r\n"), C(b64("pw1") + "\r\n"), S("a OK\r\n")}, "joe", "pw1"},
		{"CRAM-MD5", []step{C("A00001 AUTHENTICATE CRAM-MD5\r\n"), S("+ PDY3ODgzMTMwNDUyNDg0MTEuMTEzOTI3NTYyMkBsaW51cy5pbnMuY29tPg==\r\n"), C("aGVtbWluZ3dheSAyOWYyMGI2NjkzNDdhYTA4MTc0OTA2NWQ5MDNhNDllNA==\r\n"), S("A00001 OK Logged in.\r\n")}, "hemmingway", ""},
		{"XOAUTH2", []step{C("a AUTHENTICATE XOAUTH2 " + b64("user=me@example.com\x01auth=Bearer tok123\x01\x01") + "\r\n"), S("a OK\r\n")}, "me@example.com", "tok123"},
		{"OAUTHBEARER", []step{C("a AUTHENTICATE OAUTHBEARER\r\n"), S("+ \r\n"), C(b64("n,a=you@example.com,\x01host=imap.example.com\x01port=143\x01auth=Bearer tok9\x01\x01") + "\r\n"), S("a OK\r\n")}, "you@example.com", "tok9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs := runWith(tt.steps, decode.Options{Level: decode.LevelCommands, ShowSecrets: true}, testConn(), nil)
			a := session(t, recs).Auth
			if a == nil || a.Mechanism != tt.name || a.User != tt.user || a.Password != tt.pass || a.Success == nil || !*a.Success {
				t.Errorf("auth = %+v", a)
			}
			if tt.name == "CRAM-MD5" && (a.Response != "29f20b669347aa081749065d903a49e4" || !strings.Contains(a.Challenge, "linus.ins.com")) {
				t.Errorf("cram = %+v", a)
			}
			if len(commands(recs)) != 1 {
				t.Errorf("continuation lines taken as commands: %s", dump(recs))
			}
		})
	}
}

func TestAppendSyncAccepted(t *testing.T) {
	recs := run([]step{
		C(fmt.Sprintf("a1 APPEND Drafts (\\Draft) {%d}\r\n", len(msg2))),
		S("+ Ready for literal data\r\n"),
		C(msg2 + "\r\n"),
		S("a1 OK [APPENDUID 38505 3955] APPEND completed\r\n"),
	})
	wantPairs(t, recs, "a1 APPEND OK\n")
	ms := messages(recs)
	if len(ms) != 1 || ms[0].Message.SHA256 != sha(msg2) || ms[0].Mailbox != "Drafts" || ms[0].Status != "OK" {
		t.Fatalf("%s", dump(recs))
	}
	if c := commands(recs)[0]; c.Args != fmt.Sprintf(`Drafts (\Draft) {%d}`, len(msg2)) {
		t.Errorf("args = %q", c.Args)
	}
	if mb := mailboxes(recs); len(mb) != 1 || mb[0].UIDs != "3955" {
		t.Errorf("%s", dump(recs))
	}
}

func TestAppendRefused(t *testing.T) {
	// The server answers NO instead of "+": the literal never comes and
	// the client's next bytes are a new command.
	recs := run([]step{
		C("a1 APPEND Nope {310}\r\n"),
		S("a1 NO [TRYCREATE] Mailbox doesn't exist: Nope\r\n"),
		C("a2 CREATE Nope\r\n"),
		S("a2 OK CREATE completed\r\n"),
		C("a3 NOOP\r\n"),
		S("a3 OK NOOP\r\n"),
	})
	wantPairs(t, recs, "a1 APPEND NO\na2 CREATE OK\na3 NOOP OK\n")
	if n := len(messages(recs)); n != 0 {
		t.Errorf("%d messages for a refused APPEND", n)
	}
	mb := mailboxes(recs)
	if len(mb) != 2 || mb[0].Action != "append" || mb[0].Status != "NO" || mb[1].Action != "create" || mb[1].Mailbox != "Nope" {
		t.Errorf("%s", dump(recs))
	}
	// The client's next command may even come in the same capture burst
	// before the server's NO is seen: it is held, then decoded.
	recs = run([]step{
		C("a1 APPEND Nope {310}\r\n"),
		C("a2 NOOP\r\n"),
		S("a1 NO no\r\na2 OK\r\n"),
	})
	wantPairs(t, recs, "a1 APPEND NO\na2 NOOP OK\n")
}

func TestMultiAppend(t *testing.T) {
	recs := run([]step{
		C(fmt.Sprintf("a1 APPEND Archive (\\Seen) {%d+}\r\n%s (\\Flagged) {%d+}\r\n%s\r\n", len(msg1), msg1, len(msg2), msg2)),
		S("a1 OK [APPENDUID 1 10:11] done\r\n"),
	})
	ms := messages(recs)
	if len(ms) != 2 || ms[0].Message.SHA256 != sha(msg1) || ms[1].Message.SHA256 != sha(msg2) {
		t.Fatalf("%s", dump(recs))
	}
	if mb := mailboxes(recs); len(mb) != 1 || mb[0].UIDs != "10:11" {
		t.Errorf("%s", dump(recs))
	}
}

func TestLoginLiterals(t *testing.T) {
	recs := runWith([]step{
		C("a1 LOGIN {4}\r\n"),
		S("+ go\r\n"),
		C("fred {6}\r\n"),
		S("+ go\r\n"),
		C("s3cr t\r\n"),
		S("a1 OK\r\n"),
	}, decode.Options{Level: decode.LevelCommands, ShowSecrets: true}, testConn(), nil)
	wantPairs(t, recs, "a1 LOGIN OK\n")
	if a := session(t, recs).Auth; a.User != "fred" || a.Password != "s3cr t" {
		t.Errorf("auth = %+v", a)
	}
}

func TestIdle(t *testing.T) {
	recs := run([]step{
		C("25 IDLE\r\n"),
		S("+ idling\r\n"),
		S("* 2 EXISTS\r\n* 2 RECENT\r\n"),
		C("DONE\r\n"),
		S("25 OK IDLE completed\r\n"),
	})
	wantPairs(t, recs, "25 IDLE OK\n")
	if c := commands(recs)[0]; !slices.Equal(c.Untagged, []string{"2 EXISTS", "2 RECENT"}) {
		t.Errorf("untagged = %q", c.Untagged)
	}
	if a := session(t, recs).Anomalies; len(a) != 0 {
		t.Errorf("anomalies %q", a)
	}
}

func TestCopyMoveStoreExpunge(t *testing.T) {
	recs := run([]step{
		C("s SELECT INBOX\r\n"),
		S("* 4 EXISTS\r\ns OK [READ-WRITE] done\r\n"),
		C("a UID MOVE 42:43 Archive\r\n"),
		S("* OK [COPYUID 432432 42:43 2:3] Moved\r\n* 2 EXPUNGE\r\n* 2 EXPUNGE\r\na OK Done\r\n"),
		C("b COPY 1 \"Saved &AMk-t&AOk-\"\r\n"),
		S("b OK [COPYUID 432432 7 12] Done\r\n"),
		C("c STORE 1:2 +FLAGS.SILENT (\\Seen \\Deleted)\r\n"),
		S("c OK STORE completed.\r\n"),
		C("d EXPUNGE\r\n"),
		S("* 1 EXPUNGE\r\n* 1 EXPUNGE\r\nd OK EXPUNGE completed.\r\n"),
		C("e UID EXPUNGE 5:6\r\n"),
		S("* VANISHED 5:6\r\ne OK done\r\n"),
	})
	wantPairs(t, recs, "s SELECT OK\na UID MOVE OK\nb COPY OK\nc STORE OK\nd EXPUNGE OK\ne UID EXPUNGE OK\n")
	mb := mailboxes(recs)
	if len(mb) != 5 {
		t.Fatalf("%s", dump(recs))
	}
	if m := mb[0]; m.Action != "move" || m.Mailbox != "INBOX" || m.Target != "Archive" || m.UIDs != "42:43" || m.TargetUIDs != "2:3" {
		t.Errorf("move: %+v", m)
	}
	if m := mb[1]; m.Action != "copy" || m.Target != "Saved Été" || m.Seqs != "1" || m.UIDs != "7" || m.TargetUIDs != "12" {
		t.Errorf("copy: %+v", m)
	}
	if m := mb[2]; m.Action != "store" || m.Op != "+FLAGS.SILENT" || !slices.Equal(m.Flags, []string{`\Seen`, `\Deleted`}) || m.Seqs != "1:2" {
		t.Errorf("store: %+v", m)
	}
	if m := mb[3]; m.Action != "expunge" || m.Seqs != "1,1" || m.Mailbox != "INBOX" {
		t.Errorf("expunge: %+v", m)
	}
	if m := mb[4]; m.Action != "expunge" || m.UIDs != "5:6" {
		t.Errorf("uid expunge: %+v", m)
	}
}

func TestMailboxActionsUTF7(t *testing.T) {
	recs := run([]step{
		C("a CREATE \"&AMk-t&AOk-\"\r\n"),
		S("a OK done\r\n"),
		C("b RENAME \"&AMk-t&AOk-\" Summer\r\n"),
		S("b OK done\r\n"),
		C("c SUBSCRIBE Summer\r\n"),
		S("c OK\r\n"),
		C("d DELETE Summer\r\n"),
		S("d NO [INUSE] busy\r\n"),
		C("e SELECT \"&AMk-t&AOk-\"\r\n"),
		S("e OK [READ-ONLY] done\r\n"),
	})
	mb := mailboxes(recs)
	want := []string{"create Été  OK", "rename Été Summer OK", "subscribe Summer  OK", "delete Summer  NO"}
	var got []string
	for _, m := range mb {
		got = append(got, m.Action+" "+m.Mailbox+" "+m.Target+" "+m.Status)
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q want %q", got, want)
	}
	if s := session(t, recs); !slices.Equal(s.Mailboxes, []string{"Été"}) {
		t.Errorf("mailboxes %q", s.Mailboxes)
	}
}

func TestFetchSections(t *testing.T) {
	const part = "PNG-bytes-here"
	const hdr = "From: a@b\r\nSubject: s\r\n\r\n"
	recs := run([]step{
		C("s SELECT INBOX\r\n"),
		S("s OK done\r\n"),
		C("f UID FETCH 9 (BODYSTRUCTURE)\r\n"),
		S("* 1 FETCH (UID 9 BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 3 1 NIL NIL NIL)(\"image\" \"png\" (\"name\" \"a.png\") NIL NIL \"base64\" 14 NIL NIL NIL) \"mixed\" (\"boundary\" \"x\") NIL NIL))\r\nf OK\r\n"),
		C("g UID FETCH 9 (BODY.PEEK[2] BODY.PEEK[HEADER] BODY.PEEK[]<0.10>)\r\n"),
		S("* 1 FETCH (UID 9 BODY[2] " + lit(part) + " BODY[HEADER] " + lit(hdr) + " BODY[]<0> {10}\r\nFrom: a@b\r)\r\ng OK\r\n"),
		C("h FETCH 1 (RFC822)\r\n"),
		S("* 1 FETCH (RFC822 \"Subject: tiny\")\r\nh OK\r\n"),
	})
	ms := messages(recs)
	if len(ms) != 4 {
		t.Fatalf("want 4 messages:\n%s", dump(recs))
	}
	if m := ms[0]; m.Section != "BODY[2]" || m.UID != 9 || m.Message.ContentType != "image/png" || m.Message.SHA256 != sha(part) || m.Message.Size != int64(len(part)) {
		t.Errorf("part: %+v %+v", m, m.Message)
	}
	if m := ms[1]; m.Section != "BODY[HEADER]" || m.Message.SHA256 != sha(hdr) || m.Message.Truncated {
		t.Errorf("header: %+v %+v", m, m.Message)
	}
	if m := ms[2]; m.Section != "BODY[]<0>" || m.Message.Size != 10 || !m.Message.Truncated {
		t.Errorf("partial: %+v %+v", m, m.Message)
	}
	if m := ms[3]; m.Section != "RFC822" || m.Message.SHA256 != sha("Subject: tiny") {
		t.Errorf("quoted: %+v %+v", m, m.Message)
	}
	wantPairs(t, recs, "s SELECT OK\nf UID FETCH OK\ng UID FETCH OK\nh FETCH OK\n")
}

func TestCompressDeflate(t *testing.T) {
	pre := []step{
		S("* OK [CAPABILITY IMAP4rev1 COMPRESS=DEFLATE] ready\r\n"),
		C("a LOGIN joe pw\r\n"),
		S("a OK\r\n"),
		C("b COMPRESS DEFLATE\r\n"),
	}
	// The server's OK and what follows in the same segment: the OK is
	// plain, the rest compressed.
	srv := deflate(t, 6, [][]byte{[]byte("* 1 EXISTS\r\nc OK selected\r\n"), []byte("* 1 FETCH (UID 3 BODY[] " + lit(msg1) + ")\r\nd OK\r\n")})
	cli := deflate(t, 6, [][]byte{[]byte("c SELECT INBOX\r\n"), []byte("d UID FETCH 3 BODY[]\r\n")})
	// Split the compressed streams at awkward places.
	steps := append(pre, S("b OK DEFLATE active\r\n"+string(srv[:3])), C(string(cli[:5])), C(string(cli[5:])), S(string(srv[3:20])), S(string(srv[20:])))
	recs := run(steps)
	wantPairs(t, recs, "a LOGIN OK\nb COMPRESS OK\nc SELECT OK\nd UID FETCH OK\n")
	ms := messages(recs)
	if len(ms) != 1 || ms[0].Message.SHA256 != sha(msg1) || ms[0].UID != 3 || ms[0].Mailbox != "INBOX" {
		t.Fatalf("%s", dump(recs))
	}
}

func TestStartTLS(t *testing.T) {
	hello := clientHelloBytes("imap.example.org")
	recs := run([]step{
		S("* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n"),
		C(". STARTTLS\r\n"),
		S(". OK Begin TLS negotiation now\r\n"),
		C(string(hello)),
		S("\x16\x03\x03\x00\x10garbage-garbage-"),
		C("a LOGIN hidden\r\n"),
	})
	s := session(t, recs)
	if s.State != decode.StateEncrypted || s.TLS == nil || !s.TLS.StartTLS || s.TLS.SNI != "imap.example.org" {
		t.Errorf("session %+v tls %+v", s, s.TLS)
	}
	wantPairs(t, recs, ". STARTTLS OK\n")
	// Not TLS after the OK: keep decoding, flag it.
	recs = run([]step{
		C(". STARTTLS\r\n"),
		S(". OK Begin TLS negotiation now\r\n"),
		C("a LOGIN joe pw\r\n"),
		S("a OK\r\n"),
	})
	wantPairs(t, recs, ". STARTTLS OK\na LOGIN OK\n")
	if s := session(t, recs); !slices.Contains(s.Anomalies, "starttls_plaintext") || s.State == decode.StateEncrypted {
		t.Errorf("session %+v", s)
	}
}

func TestHostileLiteral(t *testing.T) {
	for _, size := range []string{"18446744073709551615", "99999999999", "4294967296"} {
		recs := run([]step{
			C("a1 SELECT INBOX\r\n"),
			S("* 1 FETCH (BODY[] {" + size + "}\r\n"),
			S("a1 OK done\r\n"),
			C("a2 NOOP\r\n"),
			S("a2 OK\r\n"),
		})
		if !slices.Contains(session(t, recs).Anomalies, "literal_size_invalid") {
			t.Errorf("%s: no anomaly: %s", size, dump(recs))
		}
		wantPairs(t, recs, "a1 SELECT OK\na2 NOOP OK\n")
	}
}

func TestEndlessLine(t *testing.T) {
	big := strings.Repeat("x", 300<<10)
	recs := runWith([]step{
		C("a1 NOOP " + big),
		C(big + "\r\n"),
		S("a1 OK\r\n"),
		C("a2 NOOP\r\n"),
		S("a2 OK\r\n"),
	}, decode.Options{Level: decode.LevelCommands, MaxLine: 1024}, testConn(), nil)
	if !slices.Contains(session(t, recs).Anomalies, "line_too_long") {
		t.Errorf("no anomaly")
	}
	if !strings.Contains(pairs(recs), "a2 NOOP OK") {
		t.Errorf("no resync: %s", pairs(recs))
	}
}

func TestDeepNesting(t *testing.T) {
	deep := strings.Repeat("(", 5000) + strings.Repeat(")", 5000)
	recs := run([]step{C("a1 SEARCH " + deep + "\r\n"), S("a1 BAD too deep\r\n"), C("a2 NOOP\r\n"), S("a2 OK\r\n")})
	if !slices.Contains(session(t, recs).Anomalies, "list_too_deep") {
		t.Errorf("no anomaly")
	}
	wantPairs(t, recs, "a1 SEARCH BAD\na2 NOOP OK\n")
}

func TestGapInLiteral(t *testing.T) {
	body := msg1 + strings.Repeat("filler line\r\n", 20)
	var recs []decode.Record
	x := New(testConn(), decode.Options{Level: decode.LevelCommands}, decode.SinkFunc(func(r decode.Record) { recs = append(recs, r) }))
	x.Data(decode.ClientToServer, []byte("a1 FETCH 1 BODY[]\r\n"), t0)
	resp := "* 1 FETCH (BODY[] " + lit(body) + ")\r\na1 OK done\r\n"
	cut := strings.Index(resp, "filler")
	x.Data(decode.ServerToClient, []byte(resp[:cut]), t0)
	x.Gap(decode.ServerToClient, 13, t0)
	x.Data(decode.ServerToClient, []byte(resp[cut+13:]), t0)
	x.Data(decode.ClientToServer, []byte("a2 NOOP\r\n"), t0)
	x.Data(decode.ServerToClient, []byte("a2 OK\r\n"), t0)
	x.Close(decode.CloseFIN, t0)
	wantPairs(t, recs, "a1 FETCH OK\na2 NOOP OK\n")
	ms := messages(recs)
	if len(ms) != 1 || !ms[0].Message.Truncated || ms[0].Message.Size != int64(len(body)-13) {
		t.Errorf("%s", dump(recs))
	}
	if s := session(t, recs); s.State != decode.StatePartial {
		t.Errorf("state %q", s.State)
	}
}

func TestMidstream(t *testing.T) {
	// The capture starts inside a FETCH literal (bruteshark stream 1
	// starts with the client's DONE).
	conn := testConn()
	conn.Midstream = true
	recs := runWith([]step{
		S("rest of a body\r\n* 3 looks like a reply\r\nmore body)\r\n"),
		C("DONE\r\n"),
		S("16 OK IDLE completed\r\n"),
		C("17 list \"\" \"Sent\"\r\n"),
		S("* LIST (\\HasNoChildren) \"/\" Sent\r\n17 OK LIST completed\r\n"),
		C("18 create \"Sent\"\r\n"),
		S("18 OK CREATE completed\r\n"),
	}, decode.Options{Level: decode.LevelCommands}, conn, nil)
	wantPairs(t, recs, "17 LIST OK\n18 CREATE OK\n")
	if s := session(t, recs); s.State != decode.StateMidstream {
		t.Errorf("state %q", s.State)
	}
	if c := commands(recs)[0]; !slices.Equal(c.Untagged, []string{"LIST Sent"}) {
		t.Errorf("untagged %q", c.Untagged)
	}
}

func TestPipelinedAndUnanswered(t *testing.T) {
	recs := run([]step{
		C("a NOOP\r\nb CHECK\r\nc XFOO bar\r\n"),
		S("a OK\r\nb OK\r\nc BAD unknown\r\n"),
		C("d NOOP\r\n"),
	})
	wantPairs(t, recs, "a NOOP OK\nb CHECK OK\nc XFOO BAD\nd NOOP -\n")
	cmds := commands(recs)
	if cmds[0].Pipelined || !cmds[1].Pipelined || !cmds[2].Pipelined || cmds[3].LatencyMS != nil {
		t.Errorf("%s", dump(recs))
	}
	if *cmds[0].LatencyMS != 1 {
		t.Errorf("latency %v", *cmds[0].LatencyMS)
	}
}

func TestServerOnly(t *testing.T) {
	// suricata-verify tcp-async-01: only the server side was captured.
	recs := run([]step{
		S("* OK Coremail System IMap Server Ready\r\n"),
		S("C3 OK LOGIN completed\r\n"),
		S("* 21 FETCH (UID 1320886124 BODY[] " + lit(msg1) + ")\r\nC8 OK FETCH completed\r\n"),
	})
	ms := messages(recs)
	if len(ms) != 1 || ms[0].UID != 1320886124 || ms[0].Message.SHA256 != sha(msg1) {
		t.Errorf("%s", dump(recs))
	}
}

func encodeStd(s string) string { return b64std.EncodeToString([]byte(s)) }

func TestExpandUIDs(t *testing.T) {
	for _, c := range []struct {
		set  string
		n    int
		want []uint32
	}{
		{"4", 1, []uint32{4}},
		{"4:6", 3, []uint32{4, 5, 6}},
		{"4:6,9", 5, []uint32{4, 5, 6, 9}},
		{"6:4", 3, []uint32{4, 5, 6}},
		{"1:4294967295", 2, []uint32{1, 2}},
		{"x", 1, nil},
		{"", 1, nil},
	} {
		if got := expandUIDs(c.set, c.n); !slices.Equal(got, c.want) {
			t.Errorf("expandUIDs(%q, %d) = %v, want %v", c.set, c.n, got, c.want)
		}
	}
}

// A line past --max-line that the connection ends without a line end is
// reported like one ended by CRLF (issue 14 item 4), in either direction.
func TestLongLineAtClose(t *testing.T) {
	long := strings.Repeat("x", 300)
	for _, last := range []step{C("a2 LOGIN " + long), S("* OK " + long)} {
		recs := runWith([]step{S("* OK ready\r\n"), C("a1 NOOP\r\n"), S("a1 OK done\r\n"), last},
			decode.Options{Level: decode.LevelCommands, MaxLine: 100}, testConn(), nil)
		if a := session(t, recs).Anomalies; !slices.Contains(a, "line_too_long") {
			t.Errorf("%v: anomalies %v", last.dir, a)
		}
	}
}

// Message data that arrives while a SELECT is in flight and no mailbox is
// selected belongs to the mailbox being selected: a server sends FETCH
// only in the selected state (RFC 9051 §6.3.2, §7.5.2). Arkime's
// arkime_synthetic capture has this shape: the SELECT's completion is
// missing, its FETCH is not.
func TestFetchDuringSelect(t *testing.T) {
	hdr := "From: alice@example.com\r\nSubject: Test\r\n\r\n"
	recs := run([]step{
		S("* OK IMAP4rev1 Service Ready\r\n"),
		C("A001 SELECT \"INBOX\"\r\n"),
		S(fmt.Sprintf("* 1 FETCH (BODY[HEADER] {%d}\r\n%s)\r\n", len(hdr), hdr)),
	})
	msgs := byType[*decode.IMAPMessage](recs)
	if len(msgs) != 1 || msgs[0].Mailbox != "INBOX" || msgs[0].Message == nil || msgs[0].Message.Subject != "Test" {
		t.Fatalf("messages %+v", msgs)
	}
	if s := session(t, recs); !slices.Equal(s.Mailboxes, []string{"INBOX"}) {
		t.Errorf("session mailboxes %v", s.Mailboxes)
	}
}
