// Package message summarises RFC 5322 / MIME messages pushed to it in
// pieces, for every protocol that carries a message body.
package message

import (
	"github.com/mailtap/mailtap/decode"
)

// Options configure a Parser.
type Options struct {
	// MaxMemory bounds the raw bytes kept in memory for parsing; past it
	// the rest is spilled to a temporary file (or, with NoSpill, only
	// hashed and the summary is marked truncated).
	MaxMemory int64
	// Writer, when set, receives the raw bytes too (extraction).
	Writer decode.MessageWriter
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
// partial FETCH). Finish releases any temporary file.
func (p *Parser) Finish(truncated bool) *decode.Message { return p.finish(truncated) }

// Size returns the bytes written so far.
func (p *Parser) Size() int64 { return p.size() }
