package sink

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/textsafe"
)

// Text renders records as a readable transcript, one block per record.
// Times are UTC, written with a Z.
//
// By default each record is written when it comes, so a session's
// summary (its record comes when the connection ends) follows its
// commands and mails. GroupSessions makes the transcript read in time
// order instead: the SESSION block first, then what happened in it.
type Text struct {
	w   *bufio.Writer
	out io.Writer // w, or the pending buffer of the record's session
	err error

	group      bool
	maxPending int
	pending    map[uint64]*bytes.Buffer
	order      []uint64 // sessions with pending text, first-seen order
	size       int      // bytes pending
}

// NewText returns a text sink on w. Call Flush at the end.
func NewText(w io.Writer) *Text {
	bw := bufio.NewWriterSize(w, 64<<10)
	return &Text{w: bw, out: bw}
}

// GroupSessions holds each session's records until its session record
// arrives and writes the SESSION block before them. At most maxPending
// bytes of text are held: past that the held text of every open session is
// written (after a line saying its summary comes at its end), which keeps
// memory bounded on captures with huge or never-ending sessions. Use it
// for files; live output should not wait for connections to close.
func (t *Text) GroupSessions(maxPending int) {
	t.group, t.maxPending = true, maxPending
	t.pending = map[uint64]*bytes.Buffer{}
}

// Flush writes buffered output, including the text of sessions whose
// session record never came.
func (t *Text) Flush() error {
	t.spill()
	if t.err != nil {
		return t.err
	}
	return t.w.Flush()
}

// spill writes every session's pending text, first-seen order.
func (t *Text) spill() {
	for _, id := range t.order {
		if b := t.pending[id]; b != nil && t.err == nil {
			_, t.err = t.w.Write(b.Bytes())
		}
		delete(t.pending, id)
	}
	t.order, t.size = t.order[:0], 0
}

// printf is the text sink's one way out: every string argument is wire
// data (or built from it) and goes through textsafe.String, so no control,
// bidi or zero-width character from the traffic reaches the terminal.
// Formats are constants and carry the layout's own newlines.
func (t *Text) printf(format string, args ...any) {
	if t.err != nil {
		return
	}
	_, t.err = fmt.Fprintf(t.out, format, safeArgs(args)...)
}

// safeArgs escapes the string arguments of a printf call in place.
func safeArgs(args []any) []any {
	for i, a := range args {
		if s, ok := a.(string); ok {
			args[i] = textsafe.String(s)
		}
	}
	return args
}

func stamp(ts time.Time) string { return ts.UTC().Format("2006-01-02 15:04:05.000000Z") }

// plural is "1 command", "2 commands".
func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func (t *Text) head(h *decode.Header, what string) {
	t.printf("%s  #%d %-4s %s -> %s  %s\n", stamp(h.TS), h.Session, h.Proto, h.Client, h.Server, what)
}

// Emit implements decode.Sink.
func (t *Text) Emit(r decode.Record) {
	if !t.group {
		t.emit(r)
		return
	}
	h := r.Head()
	if s, ok := r.(*decode.SessionRecord); ok {
		t.emit(s)
		if b := t.pending[h.Session]; b != nil {
			if t.err == nil {
				_, t.err = t.w.Write(b.Bytes())
			}
			t.size -= b.Len()
			delete(t.pending, h.Session)
			t.order = slices.DeleteFunc(t.order, func(id uint64) bool { return id == h.Session })
		}
		return
	}
	b := t.pending[h.Session]
	if b == nil {
		b = new(bytes.Buffer)
		t.pending[h.Session] = b
		t.order = append(t.order, h.Session)
	}
	n := b.Len()
	t.out = b
	t.emit(r)
	t.out = t.w
	t.size += b.Len() - n
	if t.size > t.maxPending {
		for _, id := range t.order {
			if p := t.pending[id]; p != nil {
				head := fmt.Sprintf("%s  #%d  (session still open: its SESSION block follows when it ends)\n", strings.Repeat(" ", 27), id)
				p2 := append([]byte(head), p.Bytes()...)
				p.Reset()
				p.Write(p2)
			}
		}
		t.spill()
	}
}

func (t *Text) emit(r decode.Record) {
	switch r := r.(type) {
	case *decode.SessionRecord:
		t.session(r)
	case *decode.CommandRecord:
		t.command(r)
	case *decode.SMTPMail:
		t.smtpMail(r)
	case *decode.POP3Message:
		what := "RETR"
		if r.TopLines != nil {
			what = fmt.Sprintf("TOP (%d body lines)", *r.TopLines)
		}
		t.head(&r.Header, fmt.Sprintf("%s msg %d: %d octets%s%s", what, r.Msgno, r.Size, opt(", uidl ", r.UIDL), yes(r.Deleted, ", DELETED")))
		t.message(r.Message)
	case *decode.IMAPMessage:
		where := r.Mailbox
		if r.UID != 0 {
			where += fmt.Sprintf(" uid %d", r.UID)
		}
		if r.Seq != 0 {
			where += fmt.Sprintf(" seq %d", r.Seq)
		}
		t.head(&r.Header, words(strings.ToUpper(r.Direction), r.Section, strings.TrimSpace(where))+flags(r.Flags))
		t.message(r.Message)
	case *decode.IMAPMailbox:
		s := strings.ToUpper(r.Action) + " " + quote(r.Mailbox)
		if r.Target != "" {
			s += " -> " + quote(r.Target)
		}
		if r.UIDs != "" {
			s += " uids " + r.UIDs
		}
		if r.Seqs != "" {
			s += " seqs " + r.Seqs
		}
		t.head(&r.Header, s+flags(r.Flags)+"  "+r.Status)
	default:
		h := r.Head()
		t.head(h, h.Type)
	}
}

func (t *Text) session(r *decode.SessionRecord) {
	t.head(&r.Header, fmt.Sprintf("SESSION %s, %s .. %s, %d/%d bytes c/s, %s, %s",
		r.State, stamp(r.Start), stamp(r.End), r.BytesClient, r.BytesServer, plural(r.Commands, "command"), plural(r.Transactions, "transaction")))
	if r.Greeting != "" {
		t.printf("    greeting: %s\n", r.Greeting)
	}
	if r.Helo != "" {
		t.printf("    helo: %s\n", r.Helo)
	}
	if len(r.Capabilities) > 0 {
		t.printf("    capabilities: %s\n", strings.Join(r.Capabilities, ", "))
	}
	for _, a := range r.Auths {
		t.printf("    auth: %s user=%s%s%s\n", a.Mechanism, textsafe.Quote(a.User), opt(" password=", a.Password), outcome(a.Success))
	}
	if r.TLS != nil {
		dec := ""
		if d := r.TLS.Decrypted; d != nil {
			dec = " decrypted=" + strconv.FormatBool(*d)
			if r.TLS.Resumed {
				dec += " resumed"
			}
		}
		t.printf("    tls: starttls=%v implicit=%v%s%s%s%s\n", r.TLS.StartTLS, r.TLS.Implicit, opt(" sni=", r.TLS.SNI), opt(" version=", r.TLS.Version), opt(" cipher=", r.TLS.Cipher), dec)
	}
	if r.Mode != "" {
		t.printf("    mode: %s, retrieved %d, deleted %d\n", r.Mode, deref(r.Retrieved), deref(r.Deleted))
	}
	if len(r.Mailboxes) > 0 {
		t.printf("    mailboxes: %s\n", strings.Join(r.Mailboxes, ", "))
	}
	if len(r.Anomalies) > 0 {
		t.printf("    anomalies: %s\n", strings.Join(r.Anomalies, ", "))
	}
	t.printf("    community_id: %s\n", r.CommunityID)
}

func (t *Text) command(r *decode.CommandRecord) {
	verb := r.Verb
	if r.Tag != "" {
		verb = r.Tag + " " + verb
	}
	status := "(no reply)"
	if r.Status != nil {
		status = fmt.Sprint(r.Status)
	}
	for i := len(r.Intermediate) - 1; i >= 0; i-- {
		status = fmt.Sprintf("%d, %s", r.Intermediate[i], status)
	}
	lat := ""
	if r.LatencyMS != nil {
		lat = fmt.Sprintf(" [%.1f ms]", *r.LatencyMS)
	}
	pipe := ""
	if r.Pipelined {
		pipe = " (pipelined)"
	}
	t.printf("%s  #%d %-4s C: %s%s%s\n", stamp(r.TS), r.Session, r.Proto, verb, opt(" ", r.Args), pipe)
	t.printf("%s  #%d %-4s S: %s%s%s\n", strings.Repeat(" ", 27), r.Session, r.Proto, status, opt(" ", r.Text), lat)
}

func (t *Text) smtpMail(r *decode.SMTPMail) {
	via := "" // no content moved: a refused MAIL, or recipients only
	switch {
	case r.BDAT:
		via = " via BDAT"
	case r.Message != nil:
		via = " via DATA"
	}
	t.head(&r.Header, fmt.Sprintf("MAIL #%d %s%s", r.Seq, strings.ToUpper(r.Status), via))
	t.printf("    from: <%s>%s\n", r.MailFrom, opt(" ", r.MailParams))
	for _, rc := range r.RcptTo {
		switch {
		case rc.Code == 0: // no reply captured: accepted means unknown
			t.printf("    to:   <%s> no reply\n", rc.Addr)
		default:
			t.printf("    to:   <%s> %d%s\n", rc.Addr, rc.Code, yes(!rc.Accepted, " (rejected)"))
		}
	}
	if r.Reply != nil {
		t.printf("    reply: %d %s%s\n", r.Reply.Code, opt("", r.Reply.Enhanced+" "), r.Reply.Text)
	}
	t.message(r.Message)
}

func (t *Text) message(m *decode.Message) {
	if m == nil {
		return
	}
	lost := ""
	if m.MissingBytes > 0 {
		lost = fmt.Sprintf(" (%d bytes lost)", m.MissingBytes)
	}
	t.printf("    message: %d bytes %s%s%s\n", m.Size, sums(m.SHA256, m.MD5, m.SHA1), yes(m.Truncated, " TRUNCATED"), lost)
	if m.Subject != "" {
		t.printf("      Subject: %s\n", m.Subject)
	}
	if m.From != "" {
		t.printf("      From: %s\n", m.From)
	}
	if len(m.To) > 0 {
		t.printf("      To: %s\n", strings.Join(m.To, ", "))
	}
	if len(m.Cc) > 0 {
		t.printf("      Cc: %s\n", strings.Join(m.Cc, ", "))
	}
	if m.Date != "" {
		t.printf("      Date: %s\n", m.Date)
	}
	if m.MessageID != "" {
		t.printf("      Message-ID: %s\n", m.MessageID)
	}
	for _, a := range m.Attachments {
		h := sums(a.SHA256, a.MD5, a.SHA1)
		if a.Truncated {
			h = "truncated"
		}
		t.printf("      attachment: %s %s %d bytes %s\n", textsafe.Quote(a.Filename), a.ContentType, a.Size, h)
	}
	if m.File != "" {
		t.printf("      saved: %s\n", m.File)
	}
}

// words joins the non-empty ones with single spaces.
func words(w ...string) string {
	return strings.Join(slices.DeleteFunc(w, func(s string) bool { return s == "" }), " ")
}

func opt(prefix, v string) string {
	if strings.TrimSpace(v) == "" {
		return ""
	}
	return prefix + v
}

func yes(b bool, s string) string {
	if b {
		return s
	}
	return ""
}

func quote(s string) string { return textsafe.Quote(s) }

func flags(f []string) string {
	if len(f) == 0 {
		return ""
	}
	return " (" + strings.Join(f, " ") + ")"
}

func outcome(b *bool) string {
	switch {
	case b == nil:
		return " (outcome unknown)"
	case *b:
		return " OK"
	}
	return " FAILED"
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

// sums is "sha256 H", then md5 and sha1 when --hash asked for them.
func sums(sha256, md5, sha1 string) string {
	s := "sha256 " + sha256
	if md5 != "" {
		s += " md5 " + md5
	}
	if sha1 != "" {
		s += " sha1 " + sha1
	}
	return s
}
