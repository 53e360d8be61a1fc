// Package decode holds the vocabulary shared by mailtap's protocol decoders:
// directions, connection identity, the Decoder interface that capture feeds,
// the records decoders emit, and the Sink that receives them.
//
// Decoders are push parsers. capture calls Data/Gap/Close synchronously, in
// capture order, for both directions of one TCP connection; a decoder never
// blocks and never starts goroutines. Bytes passed to Data are only valid for
// the duration of the call.
package decode

import (
	"net/netip"
	"time"
)

// Direction of a byte stream within one TCP connection.
type Direction uint8

const (
	DirUnknown Direction = iota
	ClientToServer
	ServerToClient
)

func (d Direction) String() string {
	switch d {
	case ClientToServer:
		return "c2s"
	case ServerToClient:
		return "s2c"
	}
	return "unknown"
}

// Reverse returns the opposite direction.
func (d Direction) Reverse() Direction {
	switch d {
	case ClientToServer:
		return ServerToClient
	case ServerToClient:
		return ClientToServer
	}
	return DirUnknown
}

// Proto names an application protocol.
type Proto string

const (
	ProtoUnknown Proto = ""
	ProtoSMTP    Proto = "smtp"
	ProtoPOP3    Proto = "pop3"
	ProtoIMAP    Proto = "imap"
)

// ConnInfo identifies one TCP connection (one session). capture owns it:
// decoders receive a copy (a value) when the connection starts and never
// write to it; when the roles turn out to be the other way round, a
// decoder says so through RoleSwapper and capture changes its own entry.
type ConnInfo struct {
	// ID is unique within a run. In file mode it is the 1-based number of
	// the connection's first packet in the capture, so it is deterministic
	// and can be looked up in Wireshark ("frame.number == ID").
	ID     uint64
	Client netip.AddrPort
	Server netip.AddrPort
	Start  time.Time
	// ImplicitTLS is set when the server port is configured as an
	// implicit-TLS port (465, 993, 995 by default).
	ImplicitTLS bool
	// Midstream is set when the capture did not see the connection's SYN.
	Midstream bool
}

// Swapped returns c with client and server exchanged.
func (c ConnInfo) Swapped() ConnInfo {
	c.Client, c.Server = c.Server, c.Client
	return c
}

// WithImplicitTLS returns c with ImplicitTLS set to on.
func (c ConnInfo) WithImplicitTLS(on bool) ConnInfo {
	c.ImplicitTLS = on
	return c
}

// RoleSwapper is implemented by decoders that can learn from the bytes
// that capture chose client and server the wrong way round (a capture that
// starts mid-connection, on a port no port map names, with the server's
// greeting). capture asks after creating the decoder and after every call
// into it; the first time RolesSwapped reports true, capture exchanges
// client and server in its connection table and its direction mapping,
// once, and every later call carries the corrected directions. A decoder
// that holds bytes it was given before (a sniffer) reverses those itself.
// RolesSwapped must not go back to false.
type RoleSwapper interface {
	RolesSwapped() bool
}

// AnomalyRecorder is implemented by decoders that take anomalies found
// below them, in the TCP stream, by capture (AnomalyOverlapInconsistent,
// AnomalyDataOnSYN). Base has the method, so every protocol decoder does;
// decoders that wrap another pass it on. capture calls it at most once per
// kind and connection, before or between the calls that deliver bytes.
type AnomalyRecorder interface {
	Anomaly(kind Anomaly)
}

// Releaser may be implemented by a Decoder whose storage can serve a later
// connection. Release is for the one owner of the decoder: called after
// Close, it promises that nothing calls the decoder again (the records it
// emitted stay valid: they never share its storage). A wrapper does not
// pass it on unless it drops the inner decoder too.
type Releaser interface {
	Release()
}

// CloseReason tells why a connection ended.
type CloseReason uint8

const (
	CloseFIN     CloseReason = iota // orderly close (FIN in both directions, or end of half)
	CloseRST                        // reset
	CloseTimeout                    // idle timeout in capture time
	CloseEOF                        // end of input with the connection still open
	CloseReused                     // a new SYN reused the 4-tuple
	CloseEvicted                    // closed to stay within the connection limit
)

func (r CloseReason) String() string {
	return [...]string{"fin", "rst", "timeout", "eof", "reused", "evicted"}[r]
}

// Decoder decodes one TCP connection. Not safe for concurrent use: calls for
// one connection are serialised by capture.
type Decoder interface {
	// Data delivers bytes in order for one direction. p is only valid
	// during the call.
	Data(dir Direction, p []byte, ts time.Time)
	// Gap reports n bytes lost before the next Data in dir (n < 0: unknown).
	Gap(dir Direction, n int, ts time.Time)
	// Close ends the connection: emit whatever is pending, then stop.
	Close(reason CloseReason, ts time.Time)
}

// LossMarker may be implemented by a Decoder: CaptureLoss tells it that
// the capture source dropped packets (a live ring's kernel drops) while
// its connection was open, so some of its bytes may be missing without a
// gap to show it (a lost last segment, a lost FIN). Base implements it:
// the session record gets the capture_loss anomaly.
type LossMarker interface {
	CaptureLoss()
}

// Sink receives records. Emit must not retain the record's slices beyond
// the call unless the record was built for it (decoders build fresh
// records for every Emit, so sinks may keep them).
type Sink interface {
	Emit(r Record)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(Record)

// Emit calls f(r).
func (f SinkFunc) Emit(r Record) { f(r) }

var _ Sink = SinkFunc(nil)

// Level selects which records are emitted.
type Level uint8

const (
	LevelTransactions Level = iota // session + transaction records
	LevelCommands                  // + one command record per exchange
)

// Options configure decoders. The zero value is usable: zero limits take
// the defaults below.
type Options struct {
	Level       Level
	ShowSecrets bool
	// MaxLine bounds one protocol line (command, reply, header line).
	MaxLine int
	// MaxMessage bounds the bytes of one message body kept in memory for
	// header parsing and extraction; bodies are always hashed whole.
	MaxMessage int64
	// MaxLiteral bounds an IMAP literal kept in memory; larger ones are
	// streamed and hashed.
	MaxLiteral int64
	// Messages, when set, receives every message body as it streams (for
	// extraction). See MessageStore.
	Messages MessageStore
	// Hashes selects the digests of messages and attachments computed
	// besides SHA-256 (--hash).
	Hashes Hashes
}

// Default limits.
const (
	DefaultMaxLine    = 64 << 10
	DefaultMaxMessage = 32 << 20
	DefaultMaxLiteral = 32 << 20
)

// WithDefaults returns o with zero limits replaced by defaults.
func (o Options) WithDefaults() Options {
	if o.MaxLine <= 0 {
		o.MaxLine = DefaultMaxLine
	}
	if o.MaxMessage <= 0 {
		o.MaxMessage = DefaultMaxMessage
	}
	if o.MaxLiteral <= 0 {
		o.MaxLiteral = DefaultMaxLiteral
	}
	return o
}

// MessageStore receives raw message bodies for extraction. Create is called
// when a message starts; the returned writer receives the raw (dot-unstuffed)
// bytes; Close on it returns the path written (or "" if nothing was kept).
type MessageStore interface {
	Create(c ConnInfo, proto Proto, n int) MessageWriter
}

// AttachmentStore may be implemented by a MessageWriter that also keeps
// the message's attachments: Attachment is called as each one starts and
// its writer receives the decoded content.
type AttachmentStore interface {
	Attachment(a Attachment) MessageWriter
}

// PartialWriter may be implemented by a MessageWriter of an attachment:
// Partial is called before Close when not all of the attachment's bytes
// were written (the message was cut, or the MIME parse limit stopped
// decoding), so that the file can say so.
type PartialWriter interface {
	Partial()
}

// MessageWriter receives one raw message.
type MessageWriter interface {
	Write(p []byte) (int, error)
	// Close finishes the message; it returns the file path written, if any.
	Close() (string, error)
}
