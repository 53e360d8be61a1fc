// Package sink writes decoded records: JSON lines for pipelines, text for
// people.
package sink

import (
	"bufio"
	"encoding/json"
	"io"

	"github.com/mailtap/mailtap/decode"
)

// JSONL writes one JSON object per line. Errors are sticky: after the first
// failed write nothing more is written and Err reports it.
type JSONL struct {
	w   *bufio.Writer
	enc *json.Encoder
	err error
	n   int
}

// NewJSONL returns a JSON-lines sink on w. Call Flush at the end.
func NewJSONL(w io.Writer) *JSONL {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &JSONL{w: bw, enc: enc}
}

// Emit implements decode.Sink.
func (j *JSONL) Emit(r decode.Record) {
	if j.err != nil {
		return
	}
	j.err = j.enc.Encode(r)
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
