package decode

import (
	"net/netip"
	"time"
)

// SchemaVersion is the value of the "v" field on every record. Additions
// keep it; renames and removals bump it. See docs/schema.md.
const SchemaVersion = 1

// Record is one JSON-lines output record.
type Record interface {
	Head() *Header
}

// Record types.
const (
	TypeSession     = "session"
	TypeCommand     = "command"
	TypeSMTPMail    = "smtp.mail"
	TypePOP3Message = "pop3.message"
	TypeIMAPMessage = "imap.message"
	TypeIMAPMailbox = "imap.mailbox"
)

// Header is common to every record.
type Header struct {
	V       int       `json:"v"`
	Type    string    `json:"type"`
	Proto   Proto     `json:"proto"`
	Session uint64    `json:"session"`
	TS      time.Time `json:"ts"`
	Client  string    `json:"client"`
	Server  string    `json:"server"`
	// The same endpoints split, as Zeek, Suricata and ECS log them.
	ClientIP   string `json:"client_ip"`
	ClientPort uint16 `json:"client_port"`
	ServerIP   string `json:"server_ip"`
	ServerPort uint16 `json:"server_port"`
	// CommunityID is the connection's Community ID v1 (seed 0), on every
	// record as Suricata puts it on every event.
	CommunityID string `json:"community_id"`
}

// Head returns h.
func (h *Header) Head() *Header { return h }

// NewHeader fills a header for conn c.
func NewHeader(typ string, p Proto, c ConnInfo, ts time.Time) Header {
	return newHeaderEnds(c).header(typ, p, c.ID, ts)
}

// headerEnds holds the endpoint fields of a connection's record headers:
// formatted once per connection rather than once per record (five strings
// each time).
type headerEnds struct {
	client, server, clientIP, serverIP, cid string
	clientPort, serverPort                  uint16
}

func newHeaderEnds(c ConnInfo) *headerEnds {
	// The five strings are formatted into one buffer and cut from one
	// string: two allocations per connection rather than a dozen.
	var arr [2*len("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%enp5s0]:65535") + 2*len("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%enp5s0") + communityIDLen]byte
	b := appendAddrPort(arr[:0], c.Client)
	n1 := len(b)
	b = appendAddrPort(b, c.Server)
	n2 := len(b)
	b = appendAddr(b, c.Client.Addr())
	n3 := len(b)
	b = appendAddr(b, c.Server.Addr())
	n4 := len(b)
	b = appendCommunityID(b, c.Client, c.Server)
	all := string(b)
	return &headerEnds{
		client:     all[:n1],
		server:     all[n1:n2],
		clientIP:   all[n2:n3],
		serverIP:   all[n3:n4],
		cid:        all[n4:],
		clientPort: c.Client.Port(),
		serverPort: c.Server.Port(),
	}
}

// appendAddrPort appends p as p.String() formats it.
func appendAddrPort(b []byte, p netip.AddrPort) []byte {
	if !p.Addr().IsValid() {
		return append(b, p.String()...)
	}
	return p.AppendTo(b)
}

// appendAddr appends a as a.String() formats it.
func appendAddr(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(b, a.String()...)
	}
	return a.AppendTo(b)
}

func (e *headerEnds) header(typ string, p Proto, session uint64, ts time.Time) Header {
	return Header{
		V:           SchemaVersion,
		Type:        typ,
		Proto:       p,
		Session:     session,
		TS:          ts.UTC(),
		Client:      e.client,
		Server:      e.server,
		ClientIP:    e.clientIP,
		ClientPort:  e.clientPort,
		ServerIP:    e.serverIP,
		ServerPort:  e.serverPort,
		CommunityID: e.cid,
	}
}

// Session states.
const (
	StateComplete  = "complete"
	StatePartial   = "partial"
	StateMidstream = "midstream"
	StateEncrypted = "encrypted"
	StateAborted   = "aborted"
	StateTimeout   = "timeout"
)

// Auth describes one authentication attempt (the last one in a session
// record; every one in Auths).
type Auth struct {
	Mechanism string `json:"mechanism"`
	User      string `json:"user,omitempty"`
	Password  string `json:"password,omitempty"`
	// Challenge and Response for CRAM-MD5 / APOP (digest, not a secret in
	// clear, but still only shown with --show-secrets).
	Challenge string `json:"challenge,omitempty"`
	Response  string `json:"response,omitempty"`
	Success   *bool  `json:"success"`
}

// TLS describes what was seen of TLS on the connection.
type TLS struct {
	StartTLS bool     `json:"starttls"`
	Implicit bool     `json:"implicit"`
	SNI      string   `json:"sni,omitempty"`
	Version  string   `json:"version,omitempty"`
	ALPN     []string `json:"alpn,omitempty"`
	// Subject and Issuer of the server certificate, when it travelled in
	// clear (TLS 1.2 and older).
	Subject string `json:"subject,omitempty"`
	Issuer  string `json:"issuer,omitempty"`
	// Set when a TLS key log was given (decode/tlsdec): whether the
	// session was decrypted, the IANA name of its cipher suite, and
	// whether it resumed an earlier session.
	Decrypted *bool  `json:"decrypted,omitempty"`
	Cipher    string `json:"cipher,omitempty"`
	Resumed   bool   `json:"resumed,omitempty"`
}

// SessionRecord is emitted once per TCP connection, when it ends.
type SessionRecord struct {
	Header
	Start        time.Time `json:"start"`
	End          time.Time `json:"end"`
	BytesClient  int64     `json:"bytes_client"`
	BytesServer  int64     `json:"bytes_server"`
	State        string    `json:"state"`
	CloseReason  string    `json:"close_reason,omitempty"`
	Greeting     string    `json:"greeting,omitempty"`
	Helo         string    `json:"helo,omitempty"`
	Capabilities []string  `json:"capabilities,omitempty"`
	Auth         *Auth     `json:"auth,omitempty"`
	Auths        []Auth    `json:"auths,omitempty"`
	TLS          *TLS      `json:"tls,omitempty"`
	Commands     int       `json:"commands"`
	Transactions int       `json:"transactions"`
	// MissingBytes counts the bytes lost in capture gaps, both directions
	// (Zeek conn.log's missed_bytes); absent when none.
	MissingBytes int64    `json:"missing_bytes,omitempty"`
	Anomalies    []string `json:"anomalies,omitempty"`
	// POP3
	Mode      string       `json:"mode,omitempty"`
	Retrieved *int         `json:"retrieved,omitempty"`
	Deleted   *int         `json:"deleted,omitempty"`
	Mailbox   *MailboxStat `json:"mailbox,omitempty"`
	// IMAP
	Mailboxes []string `json:"mailboxes,omitempty"`
}

// MailboxStat is the size of a POP3 maildrop as the server reported it
// (STAT, else a LIST without argument, else the login reply's text).
type MailboxStat struct {
	Messages int   `json:"messages"`
	Octets   int64 `json:"octets"`
}

// CommandRecord is one request/response exchange.
type CommandRecord struct {
	Header
	Tag    string `json:"tag,omitempty"`
	Verb   string `json:"verb"`
	Args   string `json:"args,omitempty"`
	Status any    `json:"status"` // int for SMTP, string for POP3/IMAP, null when unanswered
	Text   string `json:"text,omitempty"`
	// Code is the response code of the final reply: the RFC 3463
	// enhanced status code for SMTP ("5.1.1"), the bracketed code for
	// IMAP ("TOOBIG", "AUTHENTICATIONFAILED").
	Code         string   `json:"code,omitempty"`
	Intermediate []int    `json:"intermediate,omitempty"`
	Pipelined    bool     `json:"pipelined"`
	LatencyMS    *float64 `json:"latency_ms"`
	// Untagged summarises the IMAP untagged responses that arrived while
	// the command was in flight ("2 EXISTS", "LIST Sent", ...), at most
	// 32 then "+N more".
	Untagged []string `json:"untagged,omitempty"`
}

// Rcpt is one RCPT TO of an SMTP transaction.
type Rcpt struct {
	Addr     string `json:"addr"`
	Params   string `json:"params,omitempty"`
	Code     int    `json:"code,omitempty"`
	Accepted bool   `json:"accepted"`
}

// Reply is a final server reply.
type Reply struct {
	Code     int    `json:"code"`
	Enhanced string `json:"enhanced,omitempty"`
	Text     string `json:"text"`
}

// SMTPMail is one SMTP mail transaction.
type SMTPMail struct {
	Header
	Seq        int      `json:"seq"`
	Helo       string   `json:"helo,omitempty"`
	MailFrom   string   `json:"mail_from"`
	MailParams string   `json:"mail_params,omitempty"`
	RcptTo     []Rcpt   `json:"rcpt_to"`
	Status     string   `json:"status"`
	Reply      *Reply   `json:"reply,omitempty"`
	BDAT       bool     `json:"bdat"`
	Message    *Message `json:"message,omitempty"`
}

// SMTP transaction statuses.
const (
	TxAccepted   = "accepted"
	TxRejected   = "rejected"
	TxAborted    = "aborted"
	TxIncomplete = "incomplete"
)

// POP3Message is one message retrieved with RETR or TOP.
type POP3Message struct {
	Header
	Msgno    int      `json:"msgno"`
	UIDL     string   `json:"uidl,omitempty"`
	Size     int64    `json:"size"`
	TopLines *int     `json:"top_lines,omitempty"`
	Deleted  bool     `json:"deleted"`
	Message  *Message `json:"message,omitempty"`
}

// IMAPMessage is one message body or section fetched or appended.
type IMAPMessage struct {
	Header
	Mailbox   string   `json:"mailbox,omitempty"`
	UID       uint32   `json:"uid,omitempty"`
	Seq       uint32   `json:"seq,omitempty"`
	Section   string   `json:"section"`
	Direction string   `json:"direction"`
	Flags     []string `json:"flags,omitempty"`
	Status    string   `json:"status,omitempty"`
	Message   *Message `json:"message,omitempty"`
}

// IMAPMailbox is one mailbox-changing action.
type IMAPMailbox struct {
	Header
	Action  string `json:"action"`
	Mailbox string `json:"mailbox,omitempty"`
	Target  string `json:"target,omitempty"`
	UIDs    string `json:"uids,omitempty"`
	Seqs    string `json:"seqs,omitempty"`
	// TargetUIDs are the UIDs in the target mailbox (COPYUID of COPY/MOVE).
	TargetUIDs string `json:"target_uids,omitempty"`
	// Op is the STORE operation: FLAGS, +FLAGS, -FLAGS (.SILENT).
	Op     string   `json:"op,omitempty"`
	Flags  []string `json:"flags,omitempty"`
	Status string   `json:"status"`
}

// Attachment is one non-body MIME part.
type Attachment struct {
	Filename    string `json:"filename,omitempty"`
	ContentType string `json:"content_type"`
	Inline      bool   `json:"inline,omitempty"`
	Size        int64  `json:"size"`
	// Truncated: not all of the attachment's bytes were decoded (the
	// message was cut, or the MIME parse limit was reached inside it);
	// Size counts those decoded and the hashes are absent.
	Truncated bool   `json:"truncated,omitempty"`
	SHA256    string `json:"sha256,omitempty"`
	MD5       string `json:"md5,omitempty"`  // with --hash md5
	SHA1      string `json:"sha1,omitempty"` // with --hash sha1
	File      string `json:"file,omitempty"`
}

// Message summarises one message as transferred.
type Message struct {
	Size        int64        `json:"size"`
	SHA256      string       `json:"sha256"`
	MD5         string       `json:"md5,omitempty"`  // with --hash md5
	SHA1        string       `json:"sha1,omitempty"` // with --hash sha1
	From        string       `json:"from,omitempty"`
	To          []string     `json:"to,omitempty"`
	Cc          []string     `json:"cc,omitempty"`
	Subject     string       `json:"subject,omitempty"`
	Date        string       `json:"date,omitempty"`
	MessageID   string       `json:"message_id,omitempty"`
	InReplyTo   string       `json:"in_reply_to,omitempty"`
	UserAgent   string       `json:"user_agent,omitempty"`
	ContentType string       `json:"content_type,omitempty"`
	TextPreview string       `json:"text_preview,omitempty"`
	Attachments []Attachment `json:"attachments,omitempty"`
	Anomalies   []string     `json:"anomalies,omitempty"`
	Truncated   bool         `json:"truncated"`
	// MissingBytes counts bytes of the message lost in capture gaps
	// (Zeek's missing_bytes); Truncated is then true.
	MissingBytes int64  `json:"missing_bytes,omitempty"`
	File         string `json:"file,omitempty"`
	// What Zeek's smtp.log takes from the top-level header (see
	// zeekFields in decode/message): Reply-To as written, the first
	// address of X-Originating-IP, the Received fields of the message's
	// first two hops, and one address per Received field, latest hop
	// first (at most 32).
	ReplyTo        string   `json:"reply_to,omitempty"`
	XOriginatingIP string   `json:"x_originating_ip,omitempty"`
	FirstReceived  string   `json:"first_received,omitempty"`
	SecondReceived string   `json:"second_received,omitempty"`
	ReceivedIPs    []string `json:"received_ips,omitempty"`
}
