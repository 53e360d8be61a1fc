// Package sink writes decoded records: JSON lines for pipelines, text for
// people.
package sink

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"

	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/textsafe"
)

// JSONL writes one JSON object per line. Errors are sticky: after the first
// failed write nothing more is written and Err reports it.
type JSONL struct {
	w   *bufio.Writer
	buf bytes.Buffer // one encoded record
	out []byte       // the same, made terminal-safe
	enc *json.Encoder
	err error
	n   int
}

// NewJSONL returns a JSON-lines sink on w. Call Flush at the end.
func NewJSONL(w io.Writer) *JSONL {
	j := &JSONL{w: bufio.NewWriterSize(w, 64<<10)}
	j.enc = json.NewEncoder(&j.buf)
	j.enc.SetEscapeHTML(false)
	return j
}

// Emit implements decode.Sink.
func (j *JSONL) Emit(r decode.Record) {
	if j.err != nil {
		return
	}
	j.buf.Reset()
	if j.err = j.enc.Encode(r); j.err != nil {
		return
	}
	// encoding/json leaves DEL, C1 controls, bidi and zero-width
	// characters raw; people read JSON lines on terminals too.
	j.out = textsafe.AppendJSON(j.out[:0], j.buf.Bytes())
	_, j.err = j.w.Write(j.out)
	j.n++
}

// Flush writes buffered output and returns the first error.
func (j *JSONL) Flush() error {
	if j.err != nil {
		return j.err
	}
	return j.w.Flush()
}

// Count returns the records written.
func (j *JSONL) Count() int { return j.n }
