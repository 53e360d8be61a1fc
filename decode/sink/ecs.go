package sink

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/mail"
	"strings"
	"time"

	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/textsafe"
)

// ECSVersion is the Elastic Common Schema version the -f ecs documents
// follow.
const ECSVersion = "8.11.0"

// ECS writes one Elastic Common Schema document per record, as JSON
// lines for Elasticsearch / OpenSearch ingest: @timestamp, event.*,
// source.* / destination.*, network.* (with community_id), email.* for
// transactions and messages, and the whole mailtap record under
// "mailtap", so nothing is lost. Errors are sticky, as in JSONL.
type ECS struct {
	w   *bufio.Writer
	buf bytes.Buffer
	out []byte
	enc *json.Encoder
	err error
}

// NewECS returns an ECS sink on w. Call Flush at the end.
func NewECS(w io.Writer) *ECS {
	e := &ECS{w: bufio.NewWriterSize(w, 64<<10)}
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	return e
}

var _ Sink = (*ECS)(nil)

type ecsDoc struct {
	Timestamp   time.Time       `json:"@timestamp"`
	ECS         ecsVersion      `json:"ecs"`
	Event       ecsEvent        `json:"event"`
	Source      ecsEndpoint     `json:"source"`
	Destination ecsEndpoint     `json:"destination"`
	Network     ecsNetwork      `json:"network"`
	Related     ecsRelated      `json:"related"`
	User        *ecsUser        `json:"user,omitempty"`
	TLS         *ecsTLS         `json:"tls,omitempty"`
	Email       *ecsEmail       `json:"email,omitempty"`
	Mailtap     json.RawMessage `json:"mailtap"`
}

type ecsVersion struct {
	Version string `json:"version"`
}

type ecsEvent struct {
	Kind     string     `json:"kind"`
	Category []string   `json:"category"`
	Type     []string   `json:"type"`
	Action   string     `json:"action,omitempty"`
	Outcome  string     `json:"outcome,omitempty"`
	Dataset  string     `json:"dataset"`
	Module   string     `json:"module"`
	Start    *time.Time `json:"start,omitempty"`
	End      *time.Time `json:"end,omitempty"`
}

type ecsEndpoint struct {
	IP    string `json:"ip"`
	Port  uint16 `json:"port"`
	Bytes *int64 `json:"bytes,omitempty"`
}

type ecsNetwork struct {
	Transport   string `json:"transport"`
	Protocol    string `json:"protocol"`
	CommunityID string `json:"community_id"`
}

type ecsRelated struct {
	IP   []string `json:"ip"`
	User []string `json:"user,omitempty"`
	Hash []string `json:"hash,omitempty"`
}

type ecsUser struct {
	Name string `json:"name"`
}

type ecsTLS struct {
	Established bool          `json:"established"`
	Version     string        `json:"version,omitempty"`
	Protocol    string        `json:"version_protocol,omitempty"`
	Client      *ecsTLSClient `json:"client,omitempty"`
	Server      *ecsTLSServer `json:"server,omitempty"`
}

type ecsTLSClient struct {
	ServerName string `json:"server_name,omitempty"`
}

type ecsTLSServer struct {
	Subject string `json:"subject,omitempty"`
	Issuer  string `json:"issuer,omitempty"`
}

type ecsAddrs struct {
	Address []string `json:"address"`
}

type ecsEmail struct {
	From                 *ecsAddrs       `json:"from,omitempty"`
	Sender               *ecsAddrs       `json:"sender,omitempty"`
	To                   *ecsAddrs       `json:"to,omitempty"`
	Cc                   *ecsAddrs       `json:"cc,omitempty"`
	Subject              string          `json:"subject,omitempty"`
	MessageID            string          `json:"message_id,omitempty"`
	OriginationTimestamp string          `json:"origination_timestamp,omitempty"`
	XMailer              string          `json:"x_mailer,omitempty"`
	ContentType          string          `json:"content_type,omitempty"`
	LocalID              string          `json:"local_id,omitempty"`
	Attachments          []ecsAttachment `json:"attachments,omitempty"`
}

type ecsAttachment struct {
	File ecsFile `json:"file"`
}

type ecsFile struct {
	Name     string  `json:"name,omitempty"`
	MimeType string  `json:"mime_type,omitempty"`
	Size     int64   `json:"size"`
	Hash     ecsHash `json:"hash"`
}

type ecsHash struct {
	SHA256 string `json:"sha256,omitempty"`
	MD5    string `json:"md5,omitempty"`
	SHA1   string `json:"sha1,omitempty"`
}

// Emit implements decode.Sink.
func (e *ECS) Emit(r decode.Record) {
	if e.err != nil {
		return
	}
	raw, err := json.Marshal(r)
	if err != nil {
		e.err = err
		return
	}
	h := r.Head()
	d := ecsDoc{
		Timestamp:   h.TS,
		ECS:         ecsVersion{ECSVersion},
		Event:       ecsEvent{Kind: "event", Dataset: "mailtap." + h.Type, Module: "mailtap"},
		Source:      ecsEndpoint{IP: h.ClientIP, Port: h.ClientPort},
		Destination: ecsEndpoint{IP: h.ServerIP, Port: h.ServerPort},
		Network:     ecsNetwork{Transport: "tcp", Protocol: string(h.Proto), CommunityID: h.CommunityID},
		Related:     ecsRelated{IP: nonEmpty(h.ClientIP, h.ServerIP)},
		Mailtap:     raw,
	}
	if h.ClientIP == h.ServerIP {
		d.Related.IP = d.Related.IP[:1]
	}
	switch r := r.(type) {
	case *decode.SessionRecord:
		d.Event.Category, d.Event.Type = []string{"network"}, []string{"connection", "end"}
		start, end := r.Start, r.End
		d.Event.Start, d.Event.End = &start, &end
		bc, bs := r.BytesClient, r.BytesServer
		d.Source.Bytes, d.Destination.Bytes = &bc, &bs
		if r.Auth != nil && r.Auth.User != "" {
			d.User = &ecsUser{Name: r.Auth.User}
			d.Related.User = []string{r.Auth.User}
			d.Event.Category = append(d.Event.Category, "authentication")
			d.Event.Type = append(d.Event.Type, "info")
			if r.Auth.Success != nil {
				d.Event.Outcome = map[bool]string{true: "success", false: "failure"}[*r.Auth.Success]
			}
		}
		if t := r.TLS; t != nil {
			d.TLS = &ecsTLS{Established: r.State == decode.StateEncrypted}
			if v, ok := strings.CutPrefix(t.Version, "TLSv"); ok {
				d.TLS.Version, d.TLS.Protocol = v, "tls"
			}
			if t.SNI != "" {
				d.TLS.Client = &ecsTLSClient{ServerName: t.SNI}
			}
			if t.Subject != "" || t.Issuer != "" {
				d.TLS.Server = &ecsTLSServer{Subject: t.Subject, Issuer: t.Issuer}
			}
		}
	case *decode.CommandRecord:
		d.Event.Category, d.Event.Type = []string{"network"}, []string{"protocol"}
		d.Event.Action = strings.ToLower(r.Verb)
	case *decode.SMTPMail:
		d.Event.Category, d.Event.Type = []string{"email"}, []string{"info"}
		d.Event.Action = "smtp-" + r.Status
		d.Event.Outcome = map[bool]string{true: "success", false: "failure"}[r.Status == decode.TxAccepted]
		d.Email = ecsMessage(r.Message, &d.Related)
		if d.Email == nil {
			d.Email = &ecsEmail{}
		}
		d.Email.Sender = &ecsAddrs{Address: []string{r.MailFrom}}
		if r.Message == nil || len(r.Message.To) == 0 {
			// No To header seen: the envelope recipients say who.
			var to []string
			for _, rc := range r.RcptTo {
				to = append(to, rc.Addr)
			}
			if len(to) > 0 {
				d.Email.To = &ecsAddrs{Address: to}
			}
		}
	case *decode.POP3Message:
		d.Event.Category, d.Event.Type = []string{"email"}, []string{"access"}
		d.Event.Action = "pop3-retrieve"
		d.Email = ecsMessage(r.Message, &d.Related)
	case *decode.IMAPMessage:
		d.Event.Category, d.Event.Type = []string{"email"}, []string{"access"}
		d.Event.Action = "imap-" + r.Direction
		if r.Direction == "append" {
			d.Event.Type = []string{"creation"}
		}
		d.Email = ecsMessage(r.Message, &d.Related)
	case *decode.IMAPMailbox:
		d.Event.Category, d.Event.Type = []string{"email"}, []string{"change"}
		d.Event.Action = "imap-" + r.Action
	default:
		d.Event.Category, d.Event.Type = []string{"network"}, []string{"info"}
	}
	e.buf.Reset()
	if e.err = e.enc.Encode(&d); e.err != nil {
		return
	}
	e.out = textsafe.AppendJSON(e.out[:0], e.buf.Bytes())
	_, e.err = e.w.Write(e.out)
}

// ecsMessage is the email object of a message summary (nil for none).
func ecsMessage(m *decode.Message, rel *ecsRelated) *ecsEmail {
	if m == nil {
		return nil
	}
	em := &ecsEmail{
		From:      ecsAddrList([]string{m.From}),
		To:        ecsAddrList(m.To),
		Cc:        ecsAddrList(m.Cc),
		Subject:   m.Subject,
		MessageID: m.MessageID,
		XMailer:   m.UserAgent,
	}
	if mt, _, err := mime.ParseMediaType(m.ContentType); err == nil {
		em.ContentType = mt
	}
	if t, err := mail.ParseDate(m.Date); err == nil {
		em.OriginationTimestamp = t.UTC().Format(time.RFC3339)
	}
	rel.Hash = append(rel.Hash, nonEmpty(m.SHA256, m.MD5, m.SHA1)...)
	for _, a := range m.Attachments {
		em.Attachments = append(em.Attachments, ecsAttachment{File: ecsFile{
			Name: a.Filename, MimeType: a.ContentType, Size: a.Size,
			Hash: ecsHash{SHA256: a.SHA256, MD5: a.MD5, SHA1: a.SHA1},
		}})
		rel.Hash = append(rel.Hash, nonEmpty(a.SHA256, a.MD5, a.SHA1)...)
	}
	return em
}

// ecsAddrList is the addr-specs of decoded addresses ("Name <addr>" or a
// bare addr); a value that does not parse is kept as it is.
func ecsAddrList(in []string) *ecsAddrs {
	var out []string
	for _, s := range in {
		if s == "" {
			continue
		}
		if a, err := mail.ParseAddress(s); err == nil {
			out = append(out, a.Address)
		} else {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return &ecsAddrs{Address: out}
}

// Flush writes buffered output and returns the first error.
func (e *ECS) Flush() error {
	if e.err != nil {
		return e.err
	}
	return e.w.Flush()
}
