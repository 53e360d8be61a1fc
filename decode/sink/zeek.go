package sink

import (
	"bufio"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/textsafe"
)

// Zeek writes Zeek ASCII logs (TSV with Zeek's header lines) into a
// directory: smtp.log with the columns of Zeek's own smtp.log, and
// mailtap's pop3.log and imap.log in the same style, so zeek-cut and other
// Zeek tooling read them. A log is created with its first row.
//
// Zeek's smtp.log has one row per mail transaction, and one for a
// connection that went to STARTTLS (tls T). The STARTTLS row's last_reply
// needs the command records (--level commands); without them it is unset.
type Zeek struct {
	dir  string
	now  func() time.Time
	logs map[string]*zeekLog
	tls  map[uint64]string // session → reply to its STARTTLS
	smtp map[uint64]*zeekSMTPState
	err  error
}

// zeekSMTPState is what smtp.log needs to remember of an open session.
type zeekSMTPState struct {
	delivered int              // messages accepted so far (trans_depth is one more)
	held      *decode.SMTPMail // an aborted transaction that may continue
}

type zeekLog struct {
	f *os.File
	w *bufio.Writer
}

// zeekSchema is one log's columns and Zeek types.
type zeekSchema struct {
	path   string
	fields []string
	types  []string
}

var (
	zeekSMTP = zeekSchema{"smtp",
		strings.Fields("ts uid id.orig_h id.orig_p id.resp_h id.resp_p trans_depth helo mailfrom rcptto date from to cc reply_to msg_id in_reply_to subject x_originating_ip first_received second_received last_reply path user_agent tls fuids"),
		strings.Fields("time string addr port addr port count string string set[string] string string set[string] set[string] string string string string addr string string string vector[addr] string bool vector[string]"),
	}
	zeekPOP3 = zeekSchema{"pop3",
		strings.Fields("ts uid id.orig_h id.orig_p id.resp_h id.resp_p msgno uidl size top_lines deleted date from to cc msg_id in_reply_to subject user_agent sha256 md5 sha1 truncated missing_bytes"),
		strings.Fields("time string addr port addr port count string count count bool string string set[string] set[string] string string string string string string string bool count"),
	}
	zeekIMAP = zeekSchema{"imap",
		strings.Fields("ts uid id.orig_h id.orig_p id.resp_h id.resp_p direction mailbox msg_uid seq section flags status size date from to cc msg_id in_reply_to subject user_agent sha256 md5 sha1 truncated missing_bytes"),
		strings.Fields("time string addr port addr port string string count count string set[string] string count string string set[string] set[string] string string string string string string string bool count"),
	}
)

// ZeekLogs are the logs a Zeek sink may write, by file name.
var ZeekLogs = []string{"smtp.log", "pop3.log", "imap.log"}

// NewZeek returns a sink writing Zeek logs into dir, which must exist.
// Logs of an earlier run in dir are replaced. Call Close at the end.
func NewZeek(dir string) (*Zeek, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s: not a directory (-f zeek writes smtp.log, pop3.log and imap.log into a directory)", dir)
	}
	for _, name := range ZeekLogs {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !os.IsNotExist(err) {
			return nil, err
		}
	}
	return &Zeek{dir: dir, now: time.Now, logs: map[string]*zeekLog{}, tls: map[uint64]string{}, smtp: map[uint64]*zeekSMTPState{}}, nil
}

// Emit implements decode.Sink.
func (z *Zeek) Emit(r decode.Record) {
	if z.err != nil {
		return
	}
	switch r := r.(type) {
	case *decode.SMTPMail:
		z.smtpMailRecord(r)
	case *decode.CommandRecord:
		if r.Proto == decode.ProtoSMTP && r.Verb == "STARTTLS" {
			if code, ok := r.Status.(int); ok {
				z.tls[r.Session] = strings.TrimSpace(strconv.Itoa(code) + " " + r.Text)
			}
		}
	case *decode.SessionRecord:
		reply, ok := z.tls[r.Session]
		delete(z.tls, r.Session)
		depth := 1
		if st := z.smtp[r.Session]; st != nil {
			if st.held != nil {
				z.smtpMail(st.held, st.delivered+1)
			}
			depth += st.delivered
			delete(z.smtp, r.Session)
		}
		if r.Proto == decode.ProtoSMTP && r.TLS != nil && r.TLS.StartTLS {
			z.smtpStartTLS(r, depth, reply, ok)
		}
	case *decode.POP3Message:
		z.pop3(r)
	case *decode.IMAPMessage:
		z.imap(r)
	}
}

// Flush writes buffered rows and returns the first error.
func (z *Zeek) Flush() error {
	if z.err != nil {
		return z.err
	}
	for _, l := range z.logs {
		if err := l.w.Flush(); err != nil {
			z.err = err
			return err
		}
	}
	return nil
}

// Close ends every log with Zeek's #close line and closes the files.
func (z *Zeek) Close() error {
	stamp := z.now().UTC().Format("2006-01-02-15-04-05")
	for name, l := range z.logs {
		if z.err == nil {
			fmt.Fprintf(l.w, "#close\t%s\n", stamp)
			z.err = l.w.Flush()
		}
		if err := l.f.Close(); err != nil && z.err == nil {
			z.err = err
		}
		delete(z.logs, name)
	}
	return z.err
}

// row writes one row to the log of schema s, creating it with its header.
func (z *Zeek) row(s *zeekSchema, cols []string) {
	l := z.logs[s.path]
	if l == nil {
		f, err := os.Create(filepath.Join(z.dir, s.path+".log"))
		if err != nil {
			z.err = err
			return
		}
		l = &zeekLog{f: f, w: bufio.NewWriterSize(f, 64<<10)}
		z.logs[s.path] = l
		fmt.Fprintf(l.w, "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\t%s\n#open\t%s\n#fields\t%s\n#types\t%s\n",
			s.path, z.now().UTC().Format("2006-01-02-15-04-05"), strings.Join(s.fields, "\t"), strings.Join(s.types, "\t"))
	}
	_, z.err = l.w.WriteString(strings.Join(cols, "\t") + "\n")
}

// conn is the ts, uid and id.* columns.
func zeekConn(h *decode.Header) []string {
	return []string{zeekTime(h.TS), zeekUID(h), h.ClientIP, strconv.Itoa(int(h.ClientPort)), h.ServerIP, strconv.Itoa(int(h.ServerPort))}
}

// smtpMailRecord logs a transaction. Zeek counts trans_depth by messages
// delivered, and logs a BDAT message cut by a gap and finished by DATA as
// one transaction, where mailtap has two records (the aborted BDAT attempt,
// then the same envelope's DATA): an aborted transaction that lost bytes is
// held until the next one shows whether it continues.
func (z *Zeek) smtpMailRecord(r *decode.SMTPMail) {
	st := z.smtp[r.Session]
	if st == nil {
		st = &zeekSMTPState{}
		z.smtp[r.Session] = st
	}
	if h := st.held; h != nil {
		st.held = nil
		if !sameEnvelope(h, r) {
			z.smtpMail(h, st.delivered+1)
		}
	}
	if r.Status == decode.TxAborted && r.Message != nil && r.Message.MissingBytes > 0 {
		st.held = r
		return
	}
	z.smtpMail(r, st.delivered+1)
	if r.Status == decode.TxAccepted {
		st.delivered++
	}
}

func sameEnvelope(a, b *decode.SMTPMail) bool {
	if a.MailFrom != b.MailFrom || len(a.RcptTo) != len(b.RcptTo) {
		return false
	}
	for i := range a.RcptTo {
		if a.RcptTo[i].Addr != b.RcptTo[i].Addr {
			return false
		}
	}
	return true
}

func (z *Zeek) smtpMail(r *decode.SMTPMail, depth int) {
	rcpts := make([]string, len(r.RcptTo))
	for i, rc := range r.RcptTo {
		rcpts[i] = rc.Addr
	}
	lastReply := unset
	if r.Reply != nil {
		lastReply = zeekString(strings.Join(nonEmpty(strconv.Itoa(r.Reply.Code), r.Reply.Enhanced, r.Reply.Text), " "))
	}
	mailFrom := unset
	if r.MailFrom != "" {
		mailFrom = zeekString(r.MailFrom)
	}
	m := r.Message
	if m == nil {
		m = &decode.Message{}
	}
	cols := append(zeekConn(&r.Header),
		strconv.Itoa(depth),
		zeekOpt(r.Helo),
		mailFrom,
		zeekSet(rcpts),
		zeekOpt(m.Date),
		zeekOpt(m.From),
		zeekSet(m.To),
		zeekSet(m.Cc),
		zeekOpt(m.ReplyTo),
		zeekOpt(m.MessageID),
		zeekOpt(m.InReplyTo),
		zeekOpt(m.Subject),
		zeekOpt(m.XOriginatingIP),
		zeekOpt(m.FirstReceived),
		zeekOpt(m.SecondReceived),
		lastReply,
		zeekPath(&r.Header, m.ReceivedIPs),
		zeekOpt(m.UserAgent),
		"F",
		zeekFUIDs(&r.Header, r.Seq, r.Message),
	)
	z.row(&zeekSMTP, cols)
}

// zeekPath is smtp.log's path: the server, the client, then the address
// of each Received field, latest hop first, one not added when it equals
// the address before it (as Zeek does).
func zeekPath(h *decode.Header, hops []string) string {
	path := []string{h.ServerIP, h.ClientIP}
	for _, ip := range hops {
		if ip != path[len(path)-1] {
			path = append(path, ip)
		}
	}
	return strings.Join(path, ",")
}

// smtpStartTLS is the row Zeek logs for a connection that went to TLS.
func (z *Zeek) smtpStartTLS(r *decode.SessionRecord, depth int, reply string, ok bool) {
	lastReply := unset
	if ok {
		lastReply = zeekString(reply)
	}
	cols := append(zeekConn(&r.Header),
		strconv.Itoa(depth), zeekOpt(r.Helo),
		unset, unset, unset, unset, unset, unset, unset, unset, unset, unset, unset, unset, unset,
		lastReply, r.ServerIP+","+r.ClientIP, unset, "T", empty)
	z.row(&zeekSMTP, cols)
}

func (z *Zeek) pop3(r *decode.POP3Message) {
	top := unset
	if r.TopLines != nil {
		top = strconv.Itoa(*r.TopLines)
	}
	cols := append(zeekConn(&r.Header), strconv.Itoa(r.Msgno), zeekOpt(r.UIDL), strconv.FormatInt(r.Size, 10), top, zeekBool(r.Deleted))
	z.row(&zeekPOP3, append(cols, zeekMessage(r.Message)...))
}

func (z *Zeek) imap(r *decode.IMAPMessage) {
	num := func(n uint32) string {
		if n == 0 {
			return unset
		}
		return strconv.FormatUint(uint64(n), 10)
	}
	size := unset
	if r.Message != nil {
		size = strconv.FormatInt(r.Message.Size, 10)
	}
	cols := append(zeekConn(&r.Header), r.Direction, zeekOpt(r.Mailbox), num(r.UID), num(r.Seq), zeekString(r.Section), zeekSet(r.Flags), zeekOpt(r.Status), size)
	z.row(&zeekIMAP, append(cols, zeekMessage(r.Message)...))
}

// zeekMessage is the date ... missing_bytes columns of pop3.log and imap.log.
func zeekMessage(m *decode.Message) []string {
	if m == nil {
		return []string{unset, unset, unset, unset, unset, unset, unset, unset, unset, unset, unset, unset, unset}
	}
	return []string{zeekOpt(m.Date), zeekOpt(m.From), zeekSet(m.To), zeekSet(m.Cc), zeekOpt(m.MessageID), zeekOpt(m.InReplyTo),
		zeekOpt(m.Subject), zeekOpt(m.UserAgent), zeekOpt(m.SHA256), zeekOpt(m.MD5), zeekOpt(m.SHA1), zeekBool(m.Truncated),
		strconv.FormatInt(m.MissingBytes, 10)}
}

const (
	unset = "-"
	empty = "(empty)"
)

func nonEmpty(ss ...string) []string {
	out := ss[:0]
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func zeekTime(t time.Time) string {
	return fmt.Sprintf("%d.%06d", t.Unix(), t.Nanosecond()/1000)
}

func zeekBool(b bool) string {
	if b {
		return "T"
	}
	return "F"
}

// zeekOpt is s, or unset when mailtap has no value.
func zeekOpt(s string) string {
	if s == "" {
		return unset
	}
	return zeekString(s)
}

// zeekString escapes s as Zeek's ASCII writer does: the separator,
// backslash and characters that are not printable as \xNN (for
// invalid UTF-8, each byte); a value equal to the unset or empty marker
// gets its first character escaped.
func zeekString(s string) string {
	return zeekEscape(s, false)
}

func zeekEscape(s string, inSet bool) string {
	switch {
	case s == "":
		return empty
	case s == unset:
		return `\x2d`
	case s == empty:
		return `\x28empty)`
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1, r == '\t', r < 0x20, r == 0x7f, textsafe.Unsafe(r), inSet && r == ',':
			for _, c := range []byte(s[i : i+n]) {
				fmt.Fprintf(&b, `\x%02x`, c)
			}
		case r == '\\':
			b.WriteString(`\\`)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// zeekSet is a set[string] column: unset when empty.
func zeekSet(ss []string) string {
	if len(ss) == 0 {
		return unset
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = zeekEscape(s, true)
	}
	return strings.Join(out, ",")
}

// zeekUID is a Zeek-style connection uid ("C" and base62), derived from
// the connection so the same capture always gives the same uids.
func zeekUID(h *decode.Header) string {
	f := fnv.New64a()
	fmt.Fprintf(f, "%s|%d", h.CommunityID, h.Session)
	return "C" + base62(f.Sum64())
}

// zeekFUIDs names the message and each attachment like Zeek's file ids.
func zeekFUIDs(h *decode.Header, seq int, m *decode.Message) string {
	if m == nil {
		return empty
	}
	ids := make([]string, 0, 1+len(m.Attachments))
	for i := 0; i <= len(m.Attachments); i++ {
		f := fnv.New64a()
		fmt.Fprintf(f, "%s|%d|%d|%d", h.CommunityID, h.Session, seq, i)
		ids = append(ids, "F"+base62(f.Sum64()))
	}
	return strings.Join(ids, ",")
}

func base62(v uint64) string {
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var b [11]byte
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = digits[v%62]
		v /= 62
	}
	return string(b[:])
}

var _ Sink = (*Zeek)(nil)
