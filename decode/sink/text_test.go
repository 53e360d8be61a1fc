package sink

import (
	"strings"
	"testing"
	"time"

	"github.com/mailtap/mailtap/decode"
)

func textOf(group bool, recs ...decode.Record) string {
	var b strings.Builder
	t := NewText(&b)
	if group {
		t.GroupSessions(1 << 20)
	}
	for _, r := range recs {
		t.Emit(r)
	}
	t.Flush()
	return b.String()
}

var t0 = time.Date(2025, 3, 3, 9, 30, 0, 0, time.UTC)

func hdr(typ string, p decode.Proto, id uint64, ts time.Time) decode.Header {
	return decode.Header{V: 1, Type: typ, Proto: p, Session: id, TS: ts, Client: "192.0.2.1:5000", Server: "198.51.100.1:25"}
}

// An unanswered RCPT has no code: the text says so instead of "0 (rejected)".
func TestTextRcptNoReply(t *testing.T) {
	out := textOf(false, &decode.SMTPMail{Header: hdr("smtp.mail", "smtp", 1, t0), Seq: 1, MailFrom: "a@b",
		RcptTo: []decode.Rcpt{{Addr: "c@d"}, {Addr: "e@f", Code: 550}, {Addr: "g@h", Code: 250, Accepted: true}}, Status: "incomplete"})
	for _, want := range []string{"to:   <c@d> no reply\n", "to:   <e@f> 550 (rejected)\n", "to:   <g@h> 250\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, " 0 ") {
		t.Errorf("shows a zero code:\n%s", out)
	}
}

func TestTextPluralsZoneSpacing(t *testing.T) {
	sess := &decode.SessionRecord{Header: hdr("session", "imap", 7, t0), Start: t0, End: t0.Add(time.Second), State: "complete", Commands: 1, Transactions: 1}
	out := textOf(false, sess)
	if !strings.Contains(out, "1 command, 1 transaction\n") {
		t.Errorf("plural of one:\n%s", out)
	}
	if !strings.HasPrefix(out, "2025-03-03 09:30:00.000000Z  #7") || !strings.Contains(out, ".. 2025-03-03 09:30:01.000000Z,") {
		t.Errorf("times without a zone:\n%s", out)
	}
	sess.Commands, sess.Transactions = 2, 0
	if out := textOf(false, sess); !strings.Contains(out, "2 commands, 0 transactions") {
		t.Errorf("plural:\n%s", out)
	}
	app := &decode.IMAPMessage{Header: hdr("imap.message", "imap", 7, t0), Mailbox: "INBOX", UID: 3, Direction: "append", Flags: []string{`\Seen`}}
	if out := textOf(false, app); !strings.Contains(out, "  APPEND INBOX uid 3 (\\Seen)\n") {
		t.Errorf("APPEND spacing:\n%q", out)
	}
}

// Grouped, a session's block comes before its records, whatever order
// they were emitted in, and sessions do not interleave.
func TestTextGroupSessions(t *testing.T) {
	cmd := func(id uint64, verb string, at time.Duration) decode.Record {
		return &decode.CommandRecord{Header: hdr("command", "smtp", id, t0.Add(at)), Verb: verb}
	}
	sess := func(id uint64, at time.Duration) decode.Record {
		return &decode.SessionRecord{Header: hdr("session", "smtp", id, t0.Add(at)), Start: t0.Add(at), End: t0.Add(at + time.Second), State: "complete"}
	}
	out := textOf(true, cmd(1, "EHLO", 1), cmd(2, "HELO", 2), cmd(1, "QUIT", 3), sess(1, 0), cmd(2, "QUIT", 4), sess(2, 0))
	var order []string
	for _, l := range strings.Split(out, "\n") {
		for _, w := range []string{"#1 smtp 192", "#2 smtp 192", "EHLO", "HELO", "#1 smtp C: QUIT", "#2 smtp C: QUIT"} {
			if strings.Contains(l, w) {
				order = append(order, w)
			}
		}
	}
	want := "#1 smtp 192|EHLO|#1 smtp C: QUIT|#2 smtp 192|HELO|#2 smtp C: QUIT"
	if got := strings.Join(order, "|"); got != want {
		t.Errorf("order %s, want %s:\n%s", got, want, out)
	}
	// A session that never ends is written at Flush; a tiny bound spills.
	if out := textOf(true, cmd(3, "NOOP", 0)); !strings.Contains(out, "NOOP") {
		t.Errorf("pending text lost at Flush: %q", out)
	}
	var b strings.Builder
	tx := NewText(&b)
	tx.GroupSessions(10)
	tx.Emit(cmd(4, "NOOP", 0))
	tx.Emit(sess(4, 0))
	tx.Flush()
	if got := b.String(); !strings.Contains(got, "#4  (session still open") || strings.Index(got, "NOOP") > strings.Index(got, "SESSION complete") {
		t.Errorf("spill:\n%s", got)
	}
}
