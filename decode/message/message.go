// Package message summarises RFC 5322 / MIME messages pushed to it in
// pieces, for every protocol that carries a message body.
//
// The parser is a push parser: Write hands it raw bytes in any chunking,
// it splits them into lines (bounded), follows the MIME structure with a
// stack of entities (multipart/* of any nesting up to MaxDepth,
// message/rfc822 descended), and decodes and hashes every attachment as it
// streams. Nothing proportional to the message size is kept, so a message
// of any size decodes in bounded memory and no temporary file is needed.
//
// Tolerances, each recorded as an anomaly on the Message: header lines
// without a colon are skipped, raw 8-bit headers that are not UTF-8 are
// read as Windows-1252, malformed address lists fall back to a loose
// extraction, a missing final boundary ends the part at the next outer
// boundary or at the end of the message, invalid base64 characters are
// skipped, and bad quoted-printable escapes are kept literally.
// See docs/message.md for the list of anomalies.
package message

import (
	"github.com/mailtap/mailtap/decode"
)

// Defaults for Options.
const (
	DefaultMaxMemory = 4 << 20
	DefaultMaxParse  = 1 << 30
	DefaultMaxDepth  = 32
)

// Options configure a Parser. The zero value is usable.
type Options struct {
	// MaxMemory bounds what the parser buffers at once: the top-level
	// header block (at most 1 MiB in any case), one line and the preview
	// text. Bodies are never buffered; they are decoded and hashed as
	// they stream. Zero means DefaultMaxMemory.
	MaxMemory int64
	// MaxParse bounds the bytes that are MIME-parsed. Past it the rest of
	// the message is only hashed and counted: the summary keeps the
	// headers and the attachments already finished, attachments still
	// open are marked truncated without hashes, and the anomaly
	// message_too_large_for_mime_parse is recorded (the message is not
	// marked truncated: it was transferred whole). Zero means
	// DefaultMaxParse.
	MaxParse int64
	// MaxDepth bounds the nesting of multipart and message/rfc822
	// entities. Zero means DefaultMaxDepth.
	MaxDepth int
	// Writer, when set, receives the raw bytes too (extraction); Finish
	// closes it and reports the path it returns as Message.File.
	Writer decode.MessageWriter
	// Attachments, when set, is called as each attachment starts (its
	// filename and content type known, not yet its size and hash) and
	// may return a writer for its decoded bytes, or nil to skip it. The
	// writer is closed when the attachment ends (also when the message
	// ends first) and the path Close returns becomes Attachment.File.
	Attachments func(a decode.Attachment) decode.MessageWriter
	// Hashes selects digests computed besides SHA-256 (message and
	// attachments, in the same pass).
	Hashes decode.Hashes
}

// Parser receives one message's raw bytes (already dot-unstuffed) and
// produces its summary. Not safe for concurrent use.
type Parser struct {
	// implementation: see parse.go
	impl
}

// New returns a parser for one message.
func New(o Options) *Parser { return newParser(o) }

// Write adds raw bytes of the message. It never fails.
func (p *Parser) Write(b []byte) (int, error) { return p.write(b) }

// Finish ends the message and returns its summary. truncated says the
// transfer did not carry the whole message (lost segments, connection cut,
// partial FETCH). Finish closes Options.Writer. Calling Finish again
// returns the same summary; Write after Finish is ignored.
func (p *Parser) Finish(truncated bool) *decode.Message { return p.finish(truncated) }

// Release gives a finished parser back for reuse by New; the summary
// Finish returned stays valid, and p must not be used again. A parser not
// finished is left alone. Releasing is optional: it spares New an
// allocation.
func (p *Parser) Release() {
	if p.done == nil {
		return
	}
	// The buffers for fields and the preview are kept, if small, and
	// the hash (the record has its sums already).
	fields := p.fields
	clear(fields) // keeps no strings of the message
	if cap(fields) > maxKeptFields {
		fields = nil
	}
	keep := p.keepBuf
	if p.plainBuf.data != nil && cap(p.plainBuf.data) <= previewKeep {
		keep = p.plainBuf.data // grown from keepBuf, or made by add
	}
	*p = Parser{impl{fields: fields[:0], keepBuf: keep[:0], h: p.h}}
	parsers.Put(p)
}

// Size returns the bytes written so far.
func (p *Parser) Size() int64 { return p.size() }
