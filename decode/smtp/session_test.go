package smtp

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailtap/mailtap/decode"
)

// decoded splits a run's records by type.
type decoded struct {
	txs  []*decode.SMTPMail
	cmds []*decode.CommandRecord
	sess *decode.SessionRecord
	all  []decode.Record
}

func split(t *testing.T, recs []decode.Record) decoded {
	t.Helper()
	var d decoded
	d.all = recs
	for i, r := range recs {
		switch r := r.(type) {
		case *decode.SMTPMail:
			d.txs = append(d.txs, r)
		case *decode.CommandRecord:
			d.cmds = append(d.cmds, r)
		case *decode.SessionRecord:
			if i != len(recs)-1 {
				t.Fatalf("session record is not last")
			}
			d.sess = r
		default:
			t.Fatalf("unexpected record %T", r)
		}
	}
	if d.sess == nil {
		t.Fatal("no session record")
	}
	return d
}

func decodeFile(t *testing.T, name string) decoded {
	t.Helper()
	return split(t, loadTranscript(t, filepath.Join("testdata", name+".txt")).run(nil))
}

// decodeSteps runs an inline transcript.
func decodeSteps(t *testing.T, src string) decoded {
	t.Helper()
	tr, err := parseTranscript("inline", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return split(t, tr.run(nil))
}

func (d decoded) cmd(t *testing.T, verb string, n int) *decode.CommandRecord {
	t.Helper()
	for _, c := range d.cmds {
		if c.Verb == verb {
			if n == 0 {
				return c
			}
			n--
		}
	}
	t.Fatalf("no command %s", verb)
	return nil
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func wantTxs(t *testing.T, d decoded, n int) {
	t.Helper()
	if len(d.txs) != n {
		t.Fatalf("%d transactions, want %d: %s", len(d.txs), n, jsonLines(t, d.all))
	}
	if d.sess.Transactions != n {
		t.Errorf("session transactions = %d, want %d", d.sess.Transactions, n)
	}
	for i, tx := range d.txs {
		eq(t, "seq", tx.Seq, i+1)
	}
}

func hasAnomaly(r *decode.SessionRecord, a string) bool { return slices.Contains(r.Anomalies, a) }

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestBasic(t *testing.T) {
	d := decodeFile(t, "basic")
	wantTxs(t, d, 1)
	s := d.sess
	eq(t, "greeting", s.Greeting, "mx.example.net ESMTP Postfix")
	eq(t, "helo", s.Helo, "client.example.org")
	eq(t, "capabilities", strings.Join(s.Capabilities, "|"),
		"PIPELINING|SIZE 10240000|8BITMIME|CHUNKING|STARTTLS|AUTH PLAIN LOGIN")
	eq(t, "state", s.State, decode.StateComplete)
	eq(t, "commands", s.Commands, 5)
	if len(s.Anomalies) != 0 {
		t.Errorf("anomalies %v", s.Anomalies)
	}
	tx := d.txs[0]
	eq(t, "mail_from", tx.MailFrom, "alice@example.org")
	eq(t, "mail_params", tx.MailParams, "SIZE=321 BODY=8BITMIME")
	eq(t, "rcpt", fmt.Sprint(tx.RcptTo), "[{bob@example.net NOTIFY=NEVER 250 true}]")
	eq(t, "status", tx.Status, decode.TxAccepted)
	eq(t, "reply", *tx.Reply, decode.Reply{Code: 250, Enhanced: "2.0.0", Text: "Ok: queued as 4ABC"})
	body := "From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: hello\r\n" +
		"Message-ID: <1@example.org>\r\n\r\nHi Bob,\r\n.a line that starts with a dot\r\n"
	eq(t, "size", tx.Message.Size, int64(len(body)))
	eq(t, "sha256", tx.Message.SHA256, sha(body))
	eq(t, "subject", tx.Message.Subject, "hello")
	eq(t, "truncated", tx.Message.Truncated, false)
	data := d.cmd(t, "DATA", 0)
	eq(t, "DATA status", data.Status, any(250))
	eq(t, "DATA intermediate", fmt.Sprint(data.Intermediate), "[354]")
	eq(t, "DATA latency", *data.LatencyMS, 6.0)
	eq(t, "DATA text", data.Text, "2.0.0 Ok: queued as 4ABC")
}

func TestPipelining(t *testing.T) {
	d := decodeFile(t, "pipelining")
	wantTxs(t, d, 2)
	var flags []string
	for _, c := range d.cmds {
		flags = append(flags, fmt.Sprintf("%s:%v", c.Verb, c.Pipelined))
	}
	eq(t, "pipelined", strings.Join(flags, " "),
		"EHLO:false MAIL:false RCPT:true RCPT:true DATA:true MAIL:true RCPT:true RSET:true QUIT:false")
	tx := d.txs[0]
	eq(t, "status", tx.Status, decode.TxAccepted)
	eq(t, "rcpt 2", fmt.Sprint(tx.RcptTo[1]), "{nobody@example.net  550 false}")
	eq(t, "latency", *d.cmd(t, "MAIL", 0).LatencyMS, 4.0)
	eq(t, "tx2 from", d.txs[1].MailFrom, "")
	eq(t, "tx2 status", d.txs[1].Status, decode.TxAborted)
}

func TestMultipleTransactions(t *testing.T) {
	d := decodeFile(t, "multi")
	wantTxs(t, d, 4)
	var got []string
	for _, tx := range d.txs {
		subj := ""
		if tx.Message != nil {
			subj = tx.Message.Subject
		}
		got = append(got, fmt.Sprintf("%s>%v:%s:%s", tx.MailFrom, tx.RcptTo, tx.Status, subj))
	}
	eq(t, "txs", strings.Join(got, " "),
		"a@example.org>[{b@example.net  250 true}]:accepted:one a@example.org>[]:aborted: "+
			"c@example.org>[{d@example.net  250 true}]:accepted:two >[{bounce@example.net  250 true}]:accepted:three")
	eq(t, "helo", d.txs[0].Helo, "client")
	eq(t, "HELP text", d.cmd(t, "HELP", 0).Text, "Commands:")
	eq(t, "VRFY status", d.cmd(t, "VRFY", 0).Status, any(252))
	eq(t, "EXPN status", d.cmd(t, "EXPN", 0).Status, any(502))
}

func TestRejected(t *testing.T) {
	d := decodeFile(t, "rejected")
	wantTxs(t, d, 2)
	eq(t, "tx1 status", d.txs[0].Status, decode.TxRejected)
	eq(t, "tx1 reply", *d.txs[0].Reply, decode.Reply{Code: 550, Enhanced: "5.7.1", Text: "Sender rejected"})
	eq(t, "tx2 status", d.txs[1].Status, decode.TxRejected)
	eq(t, "tx2 reply", d.txs[1].Reply.Code, 554)
	eq(t, "tx2 rcpt accepted", d.txs[1].RcptTo[0].Accepted, false)
	if d.txs[1].Message != nil {
		t.Errorf("rejected DATA has a message: %+v", d.txs[1].Message)
	}
	// The line sent after the refused DATA was a command, answered 500.
	c := d.cmd(t, "", 0)
	eq(t, "junk args", c.Args, "Subject: no")
	eq(t, "junk status", c.Status, any(500))
	eq(t, "RSET status", d.cmd(t, "RSET", 0).Status, any(250))
}

func TestBDAT(t *testing.T) {
	d := decodeFile(t, "bdat")
	wantTxs(t, d, 2)
	first := "From: alice@example.com\r\nTo: bob@example.com\r\nSubject: pipelined BDAT\r\n" +
		"MIME-Version: 1.0\r\n\r\nFirst one.\r\n"
	tx := d.txs[0]
	eq(t, "bdat", tx.BDAT, true)
	eq(t, "status", tx.Status, decode.TxAccepted)
	eq(t, "sha", tx.Message.SHA256, sha(first))
	eq(t, "subject", tx.Message.Subject, "pipelined BDAT")
	second := "Subject: second\r\n\r\nhello\r\n.\r\n"
	tx = d.txs[1]
	eq(t, "from 2", tx.MailFrom, "bob@example.com")
	eq(t, "rcpt 2", tx.RcptTo[0].Addr, "alice@example.com")
	eq(t, "sha 2", tx.Message.SHA256, sha(second))
	eq(t, "reply 2", tx.Reply.Text, "Ok: 29 bytes queued as 103")
	eq(t, "BDAT 0 LAST", d.cmd(t, "BDAT", 3).Args, "0 LAST")
	eq(t, "BDAT 0 LAST text", d.cmd(t, "BDAT", 3).Text, "2.0.0 0 byte chunk, total 29")
	eq(t, "commands", d.sess.Commands, 10)
	if len(d.sess.Anomalies) != 0 {
		t.Errorf("anomalies %v", d.sess.Anomalies)
	}
}

func TestBDATRejected(t *testing.T) {
	d := decodeFile(t, "bdat-rejected")
	wantTxs(t, d, 2)
	eq(t, "tx1", d.txs[0].Status, decode.TxRejected)
	eq(t, "tx1 reply", d.txs[0].Reply.Code, 552)
	eq(t, "tx1 truncated", d.txs[0].Message.Truncated, true)
	eq(t, "tx1 size", d.txs[0].Message.Size, int64(15))
	eq(t, "tx2", d.txs[1].Status, decode.TxRejected)
	eq(t, "tx2 reply", d.txs[1].Reply.Code, 521)
	eq(t, "bdat_invalid", hasAnomaly(d.sess, "bdat_invalid"), true)
	eq(t, "state", d.sess.State, decode.StateAborted)
}

func TestAuth(t *testing.T) {
	tests := []struct {
		name  string
		auths string // mechanism/user/password/success per attempt
		args  string // AUTH command args
	}{
		{"auth-plain", "PLAIN/alice/<redacted>/true", "PLAIN <redacted>"},
		{"auth-plain-secrets", "PLAIN/alice/s3cret/true", "PLAIN AGFsaWNlAHMzY3JldA=="},
		{"auth-login", "PLAIN/alice/<redacted>/false LOGIN/alice/<redacted>/true", "PLAIN"},
		{"auth-login-secrets", "PLAIN/alice/wrong/false LOGIN/alice/pa55word/true", "PLAIN"},
		{"auth-cram", "LOGIN///false CRAM-MD5/tim//true", "LOGIN"},
		{"auth-ntlm", "NTLM/jack//true", "NTLM"},
		{"auth-xoauth2", "XOAUTH2/someuser@example.com/<redacted>/false XOAUTH2/someuser@example.com/<redacted>/true",
			"XOAUTH2 <redacted>"},
		{"auth-xoauth2-secrets", "XOAUTH2/someuser@example.com/ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg/false " +
			"XOAUTH2/someuser@example.com/ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg/true",
			"XOAUTH2 dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decodeFile(t, tt.name)
			var got []string
			for _, a := range d.sess.Auths {
				got = append(got, fmt.Sprintf("%s/%s/%s/%v", a.Mechanism, a.User, a.Password, *a.Success))
			}
			eq(t, "auths", strings.Join(got, " "), tt.auths)
			eq(t, "auth is last", *d.sess.Auth, d.sess.Auths[len(d.sess.Auths)-1])
			eq(t, "AUTH args", d.cmd(t, "AUTH", 0).Args, tt.args)
			// Continuation lines never become commands.
			for _, c := range d.cmds {
				if c.Verb != "AUTH" && c.Verb != "EHLO" && c.Verb != "QUIT" {
					t.Errorf("unexpected command %q %q", c.Verb, c.Args)
				}
			}
			if len(d.sess.Anomalies) != 0 {
				t.Errorf("anomalies %v", d.sess.Anomalies)
			}
		})
	}
	d := decodeFile(t, "auth-cram")
	a := d.sess.Auth
	eq(t, "challenge", a.Challenge, "<1896.697170952@postoffice.example.net>")
	eq(t, "response", a.Response, "b913a602c7eda7a495b4e6e7334d3890")
}

func TestStartTLS(t *testing.T) {
	d := decodeFile(t, "starttls")
	eq(t, "state", d.sess.State, decode.StateEncrypted)
	eq(t, "tls", fmt.Sprintf("%+v", *d.sess.TLS), fmt.Sprintf("%+v", decode.TLS{StartTLS: true, SNI: "mx.example.net", Version: "TLSv1.3"}))
	eq(t, "commands", len(d.cmds), 2)
	eq(t, "STARTTLS status", d.cmd(t, "STARTTLS", 0).Status, any(220))
	if len(d.sess.Anomalies) != 0 {
		t.Errorf("anomalies %v", d.sess.Anomalies)
	}

	d = decodeFile(t, "starttls-rejected")
	eq(t, "state", d.sess.State, decode.StateEncrypted)
	eq(t, "tls", fmt.Sprintf("%+v", *d.sess.TLS), fmt.Sprintf("%+v", decode.TLS{StartTLS: true, SNI: "mx.example.net", Version: "TLSv1.3"}))
	eq(t, "first STARTTLS", d.cmd(t, "STARTTLS", 0).Status, any(454))
	eq(t, "second STARTTLS", d.cmd(t, "STARTTLS", 1).Status, any(220))
	if len(d.sess.Anomalies) != 0 {
		t.Errorf("anomalies %v", d.sess.Anomalies)
	}

	d = decodeFile(t, "starttls-plaintext")
	wantTxs(t, d, 1)
	eq(t, "state", d.sess.State, decode.StateComplete)
	eq(t, "starttls_plaintext", hasAnomaly(d.sess, "starttls_plaintext"), true)
	eq(t, "tls.starttls", d.sess.TLS.StartTLS, true)
	eq(t, "subject", d.txs[0].Message.Subject, "after starttls")
	eq(t, "caps after STARTTLS", strings.Join(d.sess.Capabilities, "|"), "AUTH LOGIN")

	d = decodeFile(t, "implicit-tls")
	eq(t, "state", d.sess.State, decode.StateEncrypted)
	eq(t, "tls", fmt.Sprintf("%+v", *d.sess.TLS), fmt.Sprintf("%+v", decode.TLS{Implicit: true, SNI: "mx.example.net", Version: "TLSv1.3"}))
	eq(t, "commands", d.sess.Commands, 0)
}

func TestSmuggling(t *testing.T) {
	d := decodeFile(t, "smuggling")
	wantTxs(t, d, 1)
	body := "Subject: outer\r\n\r\nouter body\n.\nMAIL FROM:<admin@example.net>\r\nRCPT TO:<victim@example.net>\r\n" +
		"DATA\r\nSubject: smuggled\r\n\r\n.\n\r\n"
	tx := d.txs[0]
	eq(t, "sha", tx.Message.SHA256, sha(body))
	eq(t, "message anomaly", slices.Contains(tx.Message.Anomalies, "bare_lf_dot"), true)
	eq(t, "session anomaly", hasAnomaly(d.sess, "bare_lf_dot"), true)
	eq(t, "reply", tx.Reply.Text, "Ok: queued as 9")
	eq(t, "commands", d.sess.Commands, 5) // EHLO MAIL RCPT DATA QUIT

	// The server took the bare-LF dot as the end: follow it.
	d = decodeFile(t, "smuggling-accepted")
	wantTxs(t, d, 2)
	eq(t, "outer", d.txs[0].Message.Subject+" "+d.txs[0].Status, "outer accepted")
	eq(t, "outer flagged", slices.Contains(d.txs[0].Message.Anomalies, "bare_lf_dot"), true)
	eq(t, "smuggled", d.txs[1].MailFrom+" "+d.txs[1].RcptTo[0].Addr+" "+d.txs[1].Status, "admin@example.net victim@example.net accepted")
	eq(t, "session flagged", hasAnomaly(d.sess, "bare_lf_dot"), true)
}

func TestGaps(t *testing.T) {
	d := decodeFile(t, "gap-data")
	wantTxs(t, d, 2)
	eq(t, "state", d.sess.State, decode.StatePartial)
	eq(t, "gap", hasAnomaly(d.sess, "gap"), true)
	eq(t, "tx1 status", d.txs[0].Status, decode.TxAccepted)
	eq(t, "tx1 truncated", d.txs[0].Message.Truncated, true)
	eq(t, "tx2 truncated", d.txs[1].Message.Truncated, false)
	eq(t, "tx2 subject", d.txs[1].Message.Subject, "fine")

	d = decodeFile(t, "gap-data-end")
	wantTxs(t, d, 1)
	eq(t, "tx status", d.txs[0].Status, decode.TxAccepted)
	eq(t, "truncated", d.txs[0].Message.Truncated, true)
	eq(t, "QUIT", d.cmd(t, "QUIT", 0).Status, any(221))
	eq(t, "commands", d.sess.Commands, 5)

	d = decodeFile(t, "gap-bdat")
	wantTxs(t, d, 1)
	eq(t, "status", d.txs[0].Status, decode.TxAccepted)
	eq(t, "truncated", d.txs[0].Message.Truncated, true)
	eq(t, "size", d.txs[0].Message.Size, int64(22))
	eq(t, "NOOP after server gap", d.cmd(t, "NOOP", 0).Text, "after gap")
	eq(t, "QUIT", d.cmd(t, "QUIT", 0).Status, any(221))
	eq(t, "unknown_command", hasAnomaly(d.sess, "unknown_command"), false)
}

func TestMidstream(t *testing.T) {
	d := decodeFile(t, "midstream")
	wantTxs(t, d, 1)
	eq(t, "state", d.sess.State, decode.StateMidstream)
	eq(t, "greeting", d.sess.Greeting, "")
	eq(t, "subject", d.txs[0].Message.Subject, "after midstream")
	eq(t, "status", d.txs[0].Status, decode.TxAccepted)
	eq(t, "first command", d.cmds[0].Verb, "HELP")
}

func TestOneSided(t *testing.T) {
	d := decodeFile(t, "one-sided")
	wantTxs(t, d, 2)
	for i, want := range []string{"robin@icir.org>robin@icir.org:Hello1!", "robin@icir.org>rsommer@lbl.gov:Hello2!"} {
		tx := d.txs[i]
		eq(t, "tx", tx.MailFrom+">"+tx.RcptTo[0].Addr+":"+tx.Message.Subject, want)
		eq(t, "status", tx.Status, decode.TxIncomplete)
		eq(t, "helo", tx.Helo, "enzo.icir.org")
		eq(t, "truncated", tx.Message.Truncated, false)
	}
	for _, c := range d.cmds {
		if c.Status != nil || c.Pipelined || c.LatencyMS != nil {
			t.Errorf("one-sided command %s has status %v pipelined %v", c.Verb, c.Status, c.Pipelined)
		}
	}
	eq(t, "commands", d.sess.Commands, 8)
}

func TestLongLine(t *testing.T) {
	d := decodeFile(t, "long-line")
	eq(t, "line_too_long", hasAnomaly(d.sess, "line_too_long"), true)
	c := d.cmd(t, "NOOP", 0)
	eq(t, "status", c.Status, any(500))
	eq(t, "QUIT", d.cmd(t, "QUIT", 0).Status, any(221))
}

func TestInvalidOrder(t *testing.T) {
	d := decodeFile(t, "invalid-order")
	// The fourth MAIL is refused ("503 sender already given"): its record
	// (seq 4) is the attempt alone, and the RCPT and DATA after it go on
	// with the envelope Exim still holds, the third MAIL's (seq 3), whose
	// refused DATA the later accepted one overrides. Records stay in seq
	// order.
	wantTxs(t, d, 4)
	var got []string
	for _, tx := range d.txs {
		got = append(got, fmt.Sprintf("%d:%s/%d/%s/%d", tx.Seq, tx.MailFrom, len(tx.RcptTo), tx.Status, tx.Reply.Code))
	}
	eq(t, "txs", strings.Join(got, " "),
		"1:bob@example.org/1/accepted/250 2:/1/rejected/503 3:bob@example.org/1/accepted/250 4:bob@example.org/0/rejected/503")
	eq(t, "tx2 reply", d.txs[1].Reply.Text, "valid RCPT command must precede DATA")
	eq(t, "continued reply", d.txs[2].Reply.Text, "OK id=1pgobM-001mwq-Vc")
	eq(t, "refused MAIL reply", d.txs[3].Reply.Text, "sender already given")
	eq(t, "invalid", hasAnomaly(d.sess, "smtp_transaction_invalid"), true)
	eq(t, "greeting", d.sess.Greeting, "tinkyx390 ESMTP Exim 4.94.2")
	eq(t, "EHLO", d.cmd(t, "EHLO", 0).Status, any(250))
}

func TestEarlyBody(t *testing.T) {
	d := decodeFile(t, "early-body")
	wantTxs(t, d, 1)
	tx := d.txs[0]
	eq(t, "status", tx.Status, decode.TxIncomplete)
	eq(t, "subject", tx.Message.Subject, "early")
	eq(t, "truncated", tx.Message.Truncated, false)
	c := d.cmd(t, "DATA", 0)
	eq(t, "DATA status", c.Status, nil)
	eq(t, "DATA intermediate", fmt.Sprint(c.Intermediate), "[354]")
	eq(t, "commands", d.sess.Commands, 4)
}

func TestLevelTransactions(t *testing.T) {
	d := decodeSteps(t, "@ transactions\n"+`s: 220 x
c: HELO y
s: 250 x
c: MAIL FROM:<a@b>
s: 250 ok
c: QUIT
s: 221 bye
`)
	eq(t, "commands emitted", len(d.cmds), 0)
	eq(t, "commands counted", d.sess.Commands, 3)
	wantTxs(t, d, 1)
	eq(t, "status", d.txs[0].Status, decode.TxAborted)
}

func TestCloseIncomplete(t *testing.T) {
	d := decodeSteps(t, `s: 220 x
c: HELO y
s: 250 x
c: MAIL FROM:<a@b>
s: 250 ok
c: RCPT TO:<c@d>
s: 250 ok
c: DATA
s: 354 go
c: Subject: cut
close eof
`)
	wantTxs(t, d, 1)
	tx := d.txs[0]
	eq(t, "status", tx.Status, decode.TxIncomplete)
	eq(t, "truncated", tx.Message.Truncated, true)
	eq(t, "size", tx.Message.Size, int64(len("Subject: cut\r\n")))
	eq(t, "close reason", d.sess.CloseReason, "eof")
}

func TestHoldLimit(t *testing.T) {
	// The server has spoken, DATA's reply never comes: past the hold
	// limit the held bytes are taken as content.
	body := strings.Repeat("x", 100) + "\r\n"
	var b strings.Builder
	b.WriteString("s: 220 x\nc: HELO y\ns: 250 x\nc: MAIL FROM:<a@b>\ns: 250 ok\nc: RCPT TO:<c@d>\ns: 250 ok\nc: DATA\n")
	n := 0
	for n <= maxHold {
		fmt.Fprintf(&b, "c= %q\n", body)
		n += len(body)
	}
	b.WriteString("c: .\ns: 354 go\ns: 250 queued\n")
	d := decodeSteps(t, b.String())
	wantTxs(t, d, 1)
	eq(t, "data_reply_missing", hasAnomaly(d.sess, "data_reply_missing"), true)
	tx := d.txs[0]
	eq(t, "status", tx.Status, decode.TxAccepted)
	eq(t, "size", tx.Message.Size, int64(n))
	eq(t, "DATA intermediate", fmt.Sprint(d.cmd(t, "DATA", 0).Intermediate), "[354]")
}

func TestBounds(t *testing.T) {
	t.Run("pending", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("s: 220 x\n")
		for range maxPending + 5 {
			b.WriteString("c: NOOP\n")
		}
		d := decodeSteps(t, b.String())
		eq(t, "too_many_pending", hasAnomaly(d.sess, "too_many_pending"), true)
		eq(t, "commands", d.sess.Commands, maxPending+5)
		eq(t, "command records", len(d.cmds), maxPending+5)
	})
	t.Run("rcpt", func(t *testing.T) {
		var b bytes.Buffer
		b.WriteString("s: 220 x\nc: HELO y\ns: 250 x\nc: MAIL FROM:<a@b>\ns: 250 ok\n")
		for i := range maxRcpt + 3 {
			fmt.Fprintf(&b, "c: RCPT TO:<r%d@x>\ns: 250 ok\n", i)
		}
		b.WriteString("c: RSET\ns: 250 ok\n")
		d := decodeSteps(t, "@ transactions\n"+b.String())
		eq(t, "too_many_rcpt", hasAnomaly(d.sess, "too_many_rcpt"), true)
		wantTxs(t, d, 1)
		eq(t, "rcpts", len(d.txs[0].RcptTo), maxRcpt)
		eq(t, "last kept", d.txs[0].RcptTo[maxRcpt-1].Code, 250)
	})
	t.Run("reply lines", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("s: 220 x\nc: EHLO y\n")
		for i := range maxReplyLines + 10 {
			fmt.Fprintf(&b, "s: 250-CAP%d\n", i)
		}
		b.WriteString("s: 250 LAST\nc: QUIT\ns: 221 bye\n")
		d := decodeSteps(t, b.String())
		eq(t, "reply_too_long", hasAnomaly(d.sess, "reply_too_long"), true)
		eq(t, "caps", len(d.sess.Capabilities), maxReplyLines-1)
		eq(t, "QUIT", d.cmd(t, "QUIT", 0).Status, any(221))
	})
	t.Run("path", func(t *testing.T) {
		d := decodeSteps(t, "s: 220 x\nc: MAIL FROM:<"+strings.Repeat("a", 5000)+"@b>\ns: 250 ok\nc: RSET\ns: 250 ok\n")
		eq(t, "path_too_long", hasAnomaly(d.sess, "path_too_long"), true)
		eq(t, "from", len(d.txs[0].MailFrom), maxPath)
	})
}

func TestUnexpectedReply(t *testing.T) {
	d := decodeSteps(t, "s: 220 x\ns: 250 nobody asked\ns: garbage\nc: QUIT\ns: 221 bye\n")
	eq(t, "unexpected_reply", hasAnomaly(d.sess, "unexpected_reply"), true)
	eq(t, "malformed_reply", hasAnomaly(d.sess, "malformed_reply"), true)
	eq(t, "QUIT", d.cmd(t, "QUIT", 0).Status, any(221))
}

// memStore records what a MessageStore receives.
type memStore struct{ msgs map[int]*bytes.Buffer }

type memWriter struct {
	*bytes.Buffer
	n int
}

func (m *memStore) Create(c decode.ConnInfo, p decode.Proto, n int) decode.MessageWriter {
	b := new(bytes.Buffer)
	m.msgs[n] = b
	return memWriter{b, n}
}

func (w memWriter) Close() (string, error) { return fmt.Sprintf("msg-%d.eml", w.n), nil }

func TestMessageStore(t *testing.T) {
	tr := loadTranscript(t, filepath.Join("testdata", "multi.txt"))
	st := &memStore{msgs: map[int]*bytes.Buffer{}}
	tr.opts.Messages = st
	d := split(t, tr.run(nil))
	wantTxs(t, d, 4)
	eq(t, "stored", len(st.msgs), 3)
	eq(t, "msg 1", st.msgs[1].String(), "Subject: one\r\n\r\nfirst\r\n")
	eq(t, "msg 4", st.msgs[4].String(), "Subject: three\r\n\r\nbounce\r\n")
	eq(t, "file", d.txs[0].Message.File, "msg-1.eml")
}

func TestTimestamps(t *testing.T) {
	d := decodeFile(t, "basic")
	eq(t, "session ts", d.sess.TS, t0)
	eq(t, "tx ts", d.txs[0].TS, t0.Add(4*time.Millisecond)) // the MAIL command
	eq(t, "end", d.sess.End, t0.Add(20*time.Millisecond))
}

func TestEHLORejectedKeepsEnvelope(t *testing.T) {
	d := decodeFile(t, "ehlo-rejected")
	wantTxs(t, d, 2)
	tx := d.txs[0]
	eq(t, "from", tx.MailFrom, "alice@example.com")
	eq(t, "rcpt", tx.RcptTo[0].Addr, "bob@example.com")
	eq(t, "status", tx.Status, decode.TxAccepted)
	eq(t, "anomalies", len(d.sess.Anomalies), 0)
	eq(t, "tx2", d.txs[1].MailFrom+" "+d.txs[1].Status, "carol@example.com aborted")
	eq(t, "helo", d.sess.Helo, "again.example.com")
}

func TestUnterminatedReply(t *testing.T) {
	d := decodeFile(t, "unterminated-reply")
	wantTxs(t, d, 1)
	eq(t, "EHLO", d.cmd(t, "EHLO", 0).Text, "smtp001.mail.example.com")
	eq(t, "MAIL", d.cmd(t, "MAIL", 0).Status, any(250))
	eq(t, "DATA", fmt.Sprint(d.cmd(t, "DATA", 0).Intermediate), "[354]")
	eq(t, "status", d.txs[0].Status, decode.TxAccepted)
	eq(t, "subject", d.txs[0].Message.Subject, "Test Email")
	eq(t, "malformed_reply", hasAnomaly(d.sess, "malformed_reply"), true)
	eq(t, "unknown_command", hasAnomaly(d.sess, "unknown_command"), false)
}

func TestDataUnansweredNoContent(t *testing.T) {
	d := decodeSteps(t, "s: 220 x\nc: HELO y\ns: 250 x\nc: MAIL FROM:<a@b>\ns: 250 ok\nc: RCPT TO:<c@d>\ns: 250 ok\nc: DATA\nclose rst\n")
	wantTxs(t, d, 1)
	eq(t, "status", d.txs[0].Status, decode.TxIncomplete)
	if d.txs[0].Message != nil {
		t.Errorf("message without content: %+v", d.txs[0].Message)
	}
	eq(t, "DATA status", d.cmd(t, "DATA", 0).Status, nil)
}

func TestServerGapResync(t *testing.T) {
	d := decodeFile(t, "gap-server")
	wantTxs(t, d, 1)
	eq(t, "status", d.txs[0].Status, decode.TxAccepted)
	eq(t, "subject", d.txs[0].Message.Subject, "lost replies")
	eq(t, "MAIL unanswered", d.cmd(t, "MAIL", 0).Status, nil)
	eq(t, "DATA", d.cmd(t, "DATA", 0).Status, any(250))
	eq(t, "QUIT", d.cmd(t, "QUIT", 0).Status, any(221))
	eq(t, "reply_resync", hasAnomaly(d.sess, "reply_resync"), true)
}

func TestLateClientAfterGap(t *testing.T) {
	d := decodeFile(t, "gap-late-client")
	// The BDAT attempt that lost a chunk, then DATA under the same
	// envelope: two records, the first with the bytes lost.
	wantTxs(t, d, 2)
	lost := d.txs[0]
	eq(t, "BDAT attempt", lost.Status, decode.TxAborted)
	eq(t, "BDAT attempt bdat", lost.BDAT, true)
	eq(t, "BDAT truncated", lost.Message.Truncated, true)
	eq(t, "BDAT missing_bytes", lost.Message.MissingBytes, int64(1000))
	tx := d.txs[1]
	eq(t, "bdat", tx.BDAT, false)
	eq(t, "from", tx.MailFrom, lost.MailFrom)
	eq(t, "status", tx.Status, decode.TxAccepted)
	eq(t, "reply", tx.Reply.Text, "OK: message queued")
	eq(t, "subject", tx.Message.Subject, "Test")
	c := d.cmd(t, "DATA", 0)
	eq(t, "DATA intermediate", fmt.Sprint(c.Intermediate), "[354]")
	if c.LatencyMS != nil {
		t.Errorf("latency %v for a reply that came before its command", *c.LatencyMS)
	}
	eq(t, "QUIT", d.cmd(t, "QUIT", 0).Status, any(221))

	// Without a gap, a reply nobody asked for is not kept for later.
	d = decodeSteps(t, "s: 220 x\nc: HELO y\ns: 250 x\ns: 250 stray\nc: NOOP\ns: 250 ok\n")
	eq(t, "NOOP", d.cmd(t, "NOOP", 0).Text, "ok")
	eq(t, "unexpected_reply", hasAnomaly(d.sess, "unexpected_reply"), true)
}

func TestUnterminatedGreeting(t *testing.T) {
	d := decodeFile(t, "unterminated-greeting")
	eq(t, "greeting", d.sess.Greeting, "smtpblah.mailserver.example.com ESMTP AAAAAAAAA")
	eq(t, "EHLO", d.cmd(t, "EHLO", 0).Text, "smtp001.mail.example.com")
	eq(t, "MAIL", d.cmd(t, "MAIL", 0).Text, "ok")
	eq(t, "QUIT", d.cmd(t, "QUIT", 0).Status, any(221))
}

// A refused MAIL opens no transaction: the RCPT after it (refused with
// 503) is not one of its recipients but a record of its own, outside any
// transaction (issue 13 item 3). Both the waiting and the pipelined forms.
func TestMailRefusedOpensNoTransaction(t *testing.T) {
	for name, src := range map[string]string{
		"lockstep": `s: 220 x
c: EHLO y
s: 250 x
c: MAIL FROM:<spam@example.org>
s: 554 5.7.1 sender rejected
c: RCPT TO:<bob@example.net>
s: 503 5.5.1 need MAIL
c: QUIT
s: 221 bye
`,
		"pipelined": `s: 220 x
c: EHLO y
s: 250-x
s+ 250 PIPELINING
c: MAIL FROM:<spam@example.org>
c+ RCPT TO:<bob@example.net>
c+ DATA
s: 554 5.7.1 sender rejected
s+ 503 5.5.1 need MAIL
s+ 503 5.5.1 no valid recipients
c: QUIT
s: 221 bye
`,
	} {
		t.Run(name, func(t *testing.T) {
			d := decodeSteps(t, src)
			wantTxs(t, d, 2)
			mail, rcpt := d.txs[0], d.txs[1]
			if mail.MailFrom != "spam@example.org" {
				mail, rcpt = rcpt, mail
			}
			eq(t, "MAIL status", mail.Status, decode.TxRejected)
			eq(t, "MAIL reply", mail.Reply.Code, 554)
			eq(t, "MAIL recipients", len(mail.RcptTo), 0)
			eq(t, "RCPT record from", rcpt.MailFrom, "")
			eq(t, "RCPT record recipients", fmt.Sprint(rcpt.RcptTo), "[{bob@example.net  503 false}]")
			eq(t, "RCPT record status", rcpt.Status, decode.TxRejected)
			eq(t, "RCPT record reply", rcpt.Reply.Code, 503)
			eq(t, "anomaly", hasAnomaly(d.sess, "smtp_transaction_invalid"), true)
		})
	}
}

// A line past --max-line that the connection ends without a line end is
// reported like one ended by CRLF (issue 14 item 4), in either direction.
func TestLongLineAtClose(t *testing.T) {
	long := strings.Repeat("x", 300)
	for _, tail := range []string{
		fmt.Sprintf("c= %q\n", "EHLO "+long),
		fmt.Sprintf("c: EHLO y\ns= %q\n", "250 "+long),
	} {
		tr, err := parseTranscript("inline", []byte("s: 220 x\n"+tail))
		if err != nil {
			t.Fatal(err)
		}
		tr.opts.MaxLine = 100
		d := split(t, tr.run(nil))
		eq(t, "line_too_long after "+tail[:8], hasAnomaly(d.sess, "line_too_long"), true)
	}
}

// A BDAT whose size does not parse is a syntax error, not a transaction
// command: outside a transaction it opens none, and its 501 takes its own
// place in the reply queue (Suricata's smtp-bdat-bad-tail-reply-queue).
func TestInvalidBDATOutsideTransaction(t *testing.T) {
	d := decodeSteps(t, `s: 220 x
c: EHLO y
s: 250-x
s+ 250 CHUNKING
c: BDAT 5 X
c+ MAIL FROM:<alice@example.com>
c+ RCPT TO:<bob@example.com>
c+ DATA
s: 501 5.5.4 Syntax: BDAT count [LAST]
s+ 250 2.1.0 Ok
s+ 250 2.1.5 Ok
s+ 354 go
c: Subject: hi
c+
c+ body
c+ .
s: 250 2.0.0 Ok: queued
c: QUIT
s: 221 bye
`)
	wantTxs(t, d, 1)
	tx := d.txs[0]
	eq(t, "from", tx.MailFrom, "alice@example.com")
	eq(t, "status", tx.Status, decode.TxAccepted)
	eq(t, "bdat", tx.BDAT, false)
	eq(t, "subject", tx.Message.Subject, "hi")
	eq(t, "BDAT status", d.cmd(t, "BDAT", 0).Status, any(501))
	eq(t, "bdat_invalid", hasAnomaly(d.sess, "bdat_invalid"), true)
	eq(t, "no invalid transaction", hasAnomaly(d.sess, "smtp_transaction_invalid"), false)
}
