package sink

// The JSON of mailtap's own record types, written by hand.
//
// encoding/json finds a struct's fields by reflection on every value and
// re-reads (compacts) what a MarshalJSON method returns, here the
// time.Time of every record; on real traffic that was about 2 µs per
// record, 8 % of all the CPU of `mailtap read`. The functions below
// append the same bytes directly, one function per record type, in the
// order and with the omitempty rules of the struct tags in
// decode/record.go.
//
// encoding/json stays the reference: the tests hold these functions to
// it byte for byte, on every capture in pcaps/, on records with every
// field set, and under a fuzzer (FuzzRecordJSON). A field added to a
// record type must be added here too; TestRecordJSONEveryField fails
// until it is. A record type not handled here (one of another package,
// such as AuthRecord) and a record holding a value these functions do
// not write (a status of another type, a time or float encoding/json
// refuses) go through encoding/json as before.
//
// The terminal-safe escaping of textsafe.AppendJSON is folded into
// appendString. encoding/json's output is valid UTF-8 whose only
// characters outside ASCII are inside strings, and textsafe.AppendJSON
// changes each such character on its own, so applying its rule to each
// character as the string is written gives the same bytes as running it
// over the whole line afterwards.

import (
	"math"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/textsafe"
)

// appendRecordJSON appends r's JSON line as encoding/json's Encoder (HTML
// escaping off) followed by textsafe.AppendJSON would write it. ok is
// false, and dst returned as it was, when r is not one of the types
// handled here or holds a value only encoding/json can write or refuse.
func appendRecordJSON(dst []byte, r decode.Record) (b []byte, ok bool) {
	switch r := r.(type) {
	case *decode.SessionRecord:
		if r != nil {
			b, ok = appendSessionRecord(dst, r)
		}
	case *decode.CommandRecord:
		if r != nil {
			b, ok = appendCommandRecord(dst, r)
		}
	case *decode.SMTPMail:
		if r != nil {
			b, ok = appendSMTPMail(dst, r)
		}
	case *decode.POP3Message:
		if r != nil {
			b, ok = appendPOP3Message(dst, r)
		}
	case *decode.IMAPMessage:
		if r != nil {
			b, ok = appendIMAPMessage(dst, r)
		}
	case *decode.IMAPMailbox:
		if r != nil {
			b, ok = appendIMAPMailbox(dst, r)
		}
	}
	if !ok {
		return dst, false
	}
	return append(b, '\n'), true
}

// appendHeader opens the object and writes the common fields; ok is false
// when the time cannot be written.
func appendHeader(b []byte, h *decode.Header) ([]byte, bool) {
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(h.V), 10)
	b = appendString(append(b, `,"type":`...), h.Type)
	b = appendString(append(b, `,"proto":`...), string(h.Proto))
	b = strconv.AppendUint(append(b, `,"session":`...), h.Session, 10)
	b, ok := appendTime(append(b, `,"ts":`...), h.TS)
	b = appendString(append(b, `,"client":`...), h.Client)
	b = appendString(append(b, `,"server":`...), h.Server)
	b = appendString(append(b, `,"client_ip":`...), h.ClientIP)
	b = strconv.AppendUint(append(b, `,"client_port":`...), uint64(h.ClientPort), 10)
	b = appendString(append(b, `,"server_ip":`...), h.ServerIP)
	b = strconv.AppendUint(append(b, `,"server_port":`...), uint64(h.ServerPort), 10)
	b = appendString(append(b, `,"community_id":`...), h.CommunityID)
	return b, ok
}

func appendSessionRecord(b []byte, r *decode.SessionRecord) ([]byte, bool) {
	b, ok := appendHeader(b, &r.Header)
	b, ok1 := appendTime(append(b, `,"start":`...), r.Start)
	b, ok2 := appendTime(append(b, `,"end":`...), r.End)
	b = strconv.AppendInt(append(b, `,"bytes_client":`...), r.BytesClient, 10)
	b = strconv.AppendInt(append(b, `,"bytes_server":`...), r.BytesServer, 10)
	b = appendString(append(b, `,"state":`...), r.State)
	if r.CloseReason != "" {
		b = appendString(append(b, `,"close_reason":`...), r.CloseReason)
	}
	if r.Greeting != "" {
		b = appendString(append(b, `,"greeting":`...), r.Greeting)
	}
	if r.Helo != "" {
		b = appendString(append(b, `,"helo":`...), r.Helo)
	}
	if len(r.Capabilities) > 0 {
		b = appendStrings(append(b, `,"capabilities":`...), r.Capabilities)
	}
	if r.Auth != nil {
		b = appendAuth(append(b, `,"auth":`...), r.Auth)
	}
	if len(r.Auths) > 0 {
		b = append(b, `,"auths":[`...)
		for i := range r.Auths {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendAuth(b, &r.Auths[i])
		}
		b = append(b, ']')
	}
	if r.TLS != nil {
		b = appendTLS(append(b, `,"tls":`...), r.TLS)
	}
	b = strconv.AppendInt(append(b, `,"commands":`...), int64(r.Commands), 10)
	b = strconv.AppendInt(append(b, `,"transactions":`...), int64(r.Transactions), 10)
	if r.MissingBytes != 0 {
		b = strconv.AppendInt(append(b, `,"missing_bytes":`...), r.MissingBytes, 10)
	}
	if len(r.Anomalies) > 0 {
		b = appendStrings(append(b, `,"anomalies":`...), r.Anomalies)
	}
	if r.Mode != "" {
		b = appendString(append(b, `,"mode":`...), r.Mode)
	}
	if r.Retrieved != nil {
		b = strconv.AppendInt(append(b, `,"retrieved":`...), int64(*r.Retrieved), 10)
	}
	if r.Deleted != nil {
		b = strconv.AppendInt(append(b, `,"deleted":`...), int64(*r.Deleted), 10)
	}
	if r.Mailbox != nil {
		b = strconv.AppendInt(append(b, `,"mailbox":{"messages":`...), int64(r.Mailbox.Messages), 10)
		b = strconv.AppendInt(append(b, `,"octets":`...), r.Mailbox.Octets, 10)
		b = append(b, '}')
	}
	if len(r.Mailboxes) > 0 {
		b = appendStrings(append(b, `,"mailboxes":`...), r.Mailboxes)
	}
	return append(b, '}'), ok && ok1 && ok2
}

func appendAuth(b []byte, a *decode.Auth) []byte {
	b = appendString(append(b, `{"mechanism":`...), a.Mechanism)
	if a.User != "" {
		b = appendString(append(b, `,"user":`...), a.User)
	}
	if a.Password != "" {
		b = appendString(append(b, `,"password":`...), a.Password)
	}
	if a.Challenge != "" {
		b = appendString(append(b, `,"challenge":`...), a.Challenge)
	}
	if a.Response != "" {
		b = appendString(append(b, `,"response":`...), a.Response)
	}
	b = append(b, `,"success":`...)
	if a.Success == nil {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendBool(b, *a.Success)
	}
	return append(b, '}')
}

func appendTLS(b []byte, t *decode.TLS) []byte {
	b = strconv.AppendBool(append(b, `{"starttls":`...), t.StartTLS)
	b = strconv.AppendBool(append(b, `,"implicit":`...), t.Implicit)
	if t.SNI != "" {
		b = appendString(append(b, `,"sni":`...), t.SNI)
	}
	if t.Version != "" {
		b = appendString(append(b, `,"version":`...), t.Version)
	}
	if len(t.ALPN) > 0 {
		b = appendStrings(append(b, `,"alpn":`...), t.ALPN)
	}
	if t.Subject != "" {
		b = appendString(append(b, `,"subject":`...), t.Subject)
	}
	if t.Issuer != "" {
		b = appendString(append(b, `,"issuer":`...), t.Issuer)
	}
	if t.Decrypted != nil {
		b = strconv.AppendBool(append(b, `,"decrypted":`...), *t.Decrypted)
	}
	if t.Cipher != "" {
		b = appendString(append(b, `,"cipher":`...), t.Cipher)
	}
	if t.Resumed {
		b = append(b, `,"resumed":true`...)
	}
	return append(b, '}')
}

// appendCommandRecord: ok is also false for a Status other than nil, an
// int or a string, and for a latency encoding/json refuses (NaN, ±Inf).
func appendCommandRecord(b []byte, r *decode.CommandRecord) ([]byte, bool) {
	b, ok := appendHeader(b, &r.Header)
	if r.Tag != "" {
		b = appendString(append(b, `,"tag":`...), r.Tag)
	}
	b = appendString(append(b, `,"verb":`...), r.Verb)
	if r.Args != "" {
		b = appendString(append(b, `,"args":`...), r.Args)
	}
	b = append(b, `,"status":`...)
	switch s := r.Status.(type) {
	case nil:
		b = append(b, "null"...)
	case int:
		b = strconv.AppendInt(b, int64(s), 10)
	case string:
		b = appendString(b, s)
	default:
		ok = false
	}
	if r.Text != "" {
		b = appendString(append(b, `,"text":`...), r.Text)
	}
	if r.Code != "" {
		b = appendString(append(b, `,"code":`...), r.Code)
	}
	if len(r.Intermediate) > 0 {
		b = append(b, `,"intermediate":[`...)
		for i, c := range r.Intermediate {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(c), 10)
		}
		b = append(b, ']')
	}
	b = strconv.AppendBool(append(b, `,"pipelined":`...), r.Pipelined)
	b = append(b, `,"latency_ms":`...)
	if r.LatencyMS == nil {
		b = append(b, "null"...)
	} else {
		var fok bool
		b, fok = appendFloat(b, *r.LatencyMS)
		ok = ok && fok
	}
	if len(r.Untagged) > 0 {
		b = appendStrings(append(b, `,"untagged":`...), r.Untagged)
	}
	return append(b, '}'), ok
}

func appendSMTPMail(b []byte, r *decode.SMTPMail) ([]byte, bool) {
	b, ok := appendHeader(b, &r.Header)
	b = strconv.AppendInt(append(b, `,"seq":`...), int64(r.Seq), 10)
	if r.Helo != "" {
		b = appendString(append(b, `,"helo":`...), r.Helo)
	}
	b = appendString(append(b, `,"mail_from":`...), r.MailFrom)
	if r.MailParams != "" {
		b = appendString(append(b, `,"mail_params":`...), r.MailParams)
	}
	b = append(b, `,"rcpt_to":`...)
	if r.RcptTo == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range r.RcptTo {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendRcpt(b, &r.RcptTo[i])
		}
		b = append(b, ']')
	}
	b = appendString(append(b, `,"status":`...), r.Status)
	if r.Reply != nil {
		b = strconv.AppendInt(append(b, `,"reply":{"code":`...), int64(r.Reply.Code), 10)
		if r.Reply.Enhanced != "" {
			b = appendString(append(b, `,"enhanced":`...), r.Reply.Enhanced)
		}
		b = appendString(append(b, `,"text":`...), r.Reply.Text)
		b = append(b, '}')
	}
	b = strconv.AppendBool(append(b, `,"bdat":`...), r.BDAT)
	if r.Message != nil {
		b = appendMessage(append(b, `,"message":`...), r.Message)
	}
	return append(b, '}'), ok
}

func appendRcpt(b []byte, r *decode.Rcpt) []byte {
	b = appendString(append(b, `{"addr":`...), r.Addr)
	if r.Params != "" {
		b = appendString(append(b, `,"params":`...), r.Params)
	}
	if r.Code != 0 {
		b = strconv.AppendInt(append(b, `,"code":`...), int64(r.Code), 10)
	}
	b = strconv.AppendBool(append(b, `,"accepted":`...), r.Accepted)
	return append(b, '}')
}

func appendPOP3Message(b []byte, r *decode.POP3Message) ([]byte, bool) {
	b, ok := appendHeader(b, &r.Header)
	b = strconv.AppendInt(append(b, `,"msgno":`...), int64(r.Msgno), 10)
	if r.UIDL != "" {
		b = appendString(append(b, `,"uidl":`...), r.UIDL)
	}
	b = strconv.AppendInt(append(b, `,"size":`...), r.Size, 10)
	if r.TopLines != nil {
		b = strconv.AppendInt(append(b, `,"top_lines":`...), int64(*r.TopLines), 10)
	}
	b = strconv.AppendBool(append(b, `,"deleted":`...), r.Deleted)
	if r.Message != nil {
		b = appendMessage(append(b, `,"message":`...), r.Message)
	}
	return append(b, '}'), ok
}

func appendIMAPMessage(b []byte, r *decode.IMAPMessage) ([]byte, bool) {
	b, ok := appendHeader(b, &r.Header)
	if r.Mailbox != "" {
		b = appendString(append(b, `,"mailbox":`...), r.Mailbox)
	}
	if r.UID != 0 {
		b = strconv.AppendUint(append(b, `,"uid":`...), uint64(r.UID), 10)
	}
	if r.Seq != 0 {
		b = strconv.AppendUint(append(b, `,"seq":`...), uint64(r.Seq), 10)
	}
	b = appendString(append(b, `,"section":`...), r.Section)
	b = appendString(append(b, `,"direction":`...), r.Direction)
	if len(r.Flags) > 0 {
		b = appendStrings(append(b, `,"flags":`...), r.Flags)
	}
	if r.Status != "" {
		b = appendString(append(b, `,"status":`...), r.Status)
	}
	if r.Message != nil {
		b = appendMessage(append(b, `,"message":`...), r.Message)
	}
	return append(b, '}'), ok
}

func appendIMAPMailbox(b []byte, r *decode.IMAPMailbox) ([]byte, bool) {
	b, ok := appendHeader(b, &r.Header)
	b = appendString(append(b, `,"action":`...), r.Action)
	if r.Mailbox != "" {
		b = appendString(append(b, `,"mailbox":`...), r.Mailbox)
	}
	if r.Target != "" {
		b = appendString(append(b, `,"target":`...), r.Target)
	}
	if r.UIDs != "" {
		b = appendString(append(b, `,"uids":`...), r.UIDs)
	}
	if r.Seqs != "" {
		b = appendString(append(b, `,"seqs":`...), r.Seqs)
	}
	if r.TargetUIDs != "" {
		b = appendString(append(b, `,"target_uids":`...), r.TargetUIDs)
	}
	if r.Op != "" {
		b = appendString(append(b, `,"op":`...), r.Op)
	}
	if len(r.Flags) > 0 {
		b = appendStrings(append(b, `,"flags":`...), r.Flags)
	}
	b = appendString(append(b, `,"status":`...), r.Status)
	return append(b, '}'), ok
}

func appendMessage(b []byte, m *decode.Message) []byte {
	b = strconv.AppendInt(append(b, `{"size":`...), m.Size, 10)
	b = appendString(append(b, `,"sha256":`...), m.SHA256)
	if m.MD5 != "" {
		b = appendString(append(b, `,"md5":`...), m.MD5)
	}
	if m.SHA1 != "" {
		b = appendString(append(b, `,"sha1":`...), m.SHA1)
	}
	if m.From != "" {
		b = appendString(append(b, `,"from":`...), m.From)
	}
	if len(m.To) > 0 {
		b = appendStrings(append(b, `,"to":`...), m.To)
	}
	if len(m.Cc) > 0 {
		b = appendStrings(append(b, `,"cc":`...), m.Cc)
	}
	if m.Subject != "" {
		b = appendString(append(b, `,"subject":`...), m.Subject)
	}
	if m.Date != "" {
		b = appendString(append(b, `,"date":`...), m.Date)
	}
	if m.MessageID != "" {
		b = appendString(append(b, `,"message_id":`...), m.MessageID)
	}
	if m.InReplyTo != "" {
		b = appendString(append(b, `,"in_reply_to":`...), m.InReplyTo)
	}
	if m.UserAgent != "" {
		b = appendString(append(b, `,"user_agent":`...), m.UserAgent)
	}
	if m.ContentType != "" {
		b = appendString(append(b, `,"content_type":`...), m.ContentType)
	}
	if m.TextPreview != "" {
		b = appendString(append(b, `,"text_preview":`...), m.TextPreview)
	}
	if len(m.Attachments) > 0 {
		b = append(b, `,"attachments":[`...)
		for i := range m.Attachments {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendAttachment(b, &m.Attachments[i])
		}
		b = append(b, ']')
	}
	if len(m.Anomalies) > 0 {
		b = appendStrings(append(b, `,"anomalies":`...), m.Anomalies)
	}
	b = strconv.AppendBool(append(b, `,"truncated":`...), m.Truncated)
	if m.MissingBytes != 0 {
		b = strconv.AppendInt(append(b, `,"missing_bytes":`...), m.MissingBytes, 10)
	}
	if m.File != "" {
		b = appendString(append(b, `,"file":`...), m.File)
	}
	if m.ReplyTo != "" {
		b = appendString(append(b, `,"reply_to":`...), m.ReplyTo)
	}
	if m.XOriginatingIP != "" {
		b = appendString(append(b, `,"x_originating_ip":`...), m.XOriginatingIP)
	}
	if m.FirstReceived != "" {
		b = appendString(append(b, `,"first_received":`...), m.FirstReceived)
	}
	if m.SecondReceived != "" {
		b = appendString(append(b, `,"second_received":`...), m.SecondReceived)
	}
	if len(m.ReceivedIPs) > 0 {
		b = appendStrings(append(b, `,"received_ips":`...), m.ReceivedIPs)
	}
	return append(b, '}')
}

func appendAttachment(b []byte, a *decode.Attachment) []byte {
	b = append(b, '{')
	if a.Filename != "" {
		b = appendString(append(b, `"filename":`...), a.Filename)
		b = append(b, ',')
	}
	b = appendString(append(b, `"content_type":`...), a.ContentType)
	if a.Inline {
		b = append(b, `,"inline":true`...)
	}
	b = strconv.AppendInt(append(b, `,"size":`...), a.Size, 10)
	if a.Truncated {
		b = append(b, `,"truncated":true`...)
	}
	if a.SHA256 != "" {
		b = appendString(append(b, `,"sha256":`...), a.SHA256)
	}
	if a.MD5 != "" {
		b = appendString(append(b, `,"md5":`...), a.MD5)
	}
	if a.SHA1 != "" {
		b = appendString(append(b, `,"sha1":`...), a.SHA1)
	}
	if a.File != "" {
		b = appendString(append(b, `,"file":`...), a.File)
	}
	return append(b, '}')
}

// appendStrings writes a non-nil []string as an array.
func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendTime writes t as time.Time's MarshalJSON does (RFC 3339, the
// fraction without trailing zeros); ok is false for a time MarshalJSON
// refuses (a year outside 0-9999, an offset of 24 hours or more).
func appendTime(b []byte, t time.Time) ([]byte, bool) {
	out, err := t.AppendText(append(b, '"'))
	if err != nil {
		return b, false
	}
	return append(out, '"'), true
}

// appendFloat writes f as encoding/json writes a float64: the shortest
// representation, with an exponent only below 1e-6 or from 1e21 on, and
// that without a leading zero; ok is false for NaN and ±Inf, which
// encoding/json refuses.
func appendFloat(b []byte, f float64) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, false
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-07 -> e-7
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

const hexDigits = "0123456789abcdef"

// plainByte[c]: the byte c stands for itself in a string, being ASCII and
// neither a control, DEL, a quote nor a backslash.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// plainRun returns how many bytes at the start of s are plainByte, in
// whole blocks of 8 tested at once (the bytes after are left to the
// byte-by-byte loop): none has the top bit set or is below 0x20, and none
// is DEL, a quote or a backslash (the usual "has a zero byte" test on s
// XOR each).
func plainRun(s string) int {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	n := 0
	for ; n+8 <= len(s); n += 8 {
		t := s[n : n+8]
		x := uint64(t[0]) | uint64(t[1])<<8 | uint64(t[2])<<16 | uint64(t[3])<<24 |
			uint64(t[4])<<32 | uint64(t[5])<<40 | uint64(t[6])<<48 | uint64(t[7])<<56
		del, quote, back := x^0x7f*lo, x^'"'*lo, x^'\\'*lo
		bad := x | (x - 0x20*lo) | (del-lo)&^del | (quote-lo)&^quote | (back-lo)&^back
		if bad&hi != 0 {
			break
		}
	}
	return n
}

// appendString writes s as a JSON string the way encoding/json does with
// HTML escaping off (quote, backslash and controls escaped, \b \f \n \r
// \t short, invalid UTF-8 as \ufffd), then textsafe.AppendJSON (DEL and
// every other character textsafe.Unsafe names as \u escapes, beyond
// U+FFFF as a surrogate pair). U+2028 and U+2029, which encoding/json
// escapes itself, are among textsafe's, with the same spelling.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0 // s[start:i] is still to copy
	for i := plainRun(s); i < len(s); {
		c := s[i]
		if plainByte[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			i += plainRun(s[i:])
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case textsafe.Unsafe(r):
			b = append(b, s[start:i]...)
			if r > 0xffff {
				r1, r2 := utf16.EncodeRune(r)
				b = appendU(appendU(b, r1), r2)
			} else {
				b = appendU(b, r)
			}
		default:
			i += n
			continue
		}
		i += n
		start = i
		i += plainRun(s[i:])
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendU writes r (at most U+FFFF) as \uXXXX, lower-case.
func appendU(b []byte, r rune) []byte {
	return append(b, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
}
