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
	enc *jsonEncoder
	out []byte // one encoded record
	err error
	n   int
}

// NewJSONL returns a JSON-lines sink on w. Call Flush at the end.
func NewJSONL(w io.Writer) *JSONL {
	return &JSONL{w: bufio.NewWriterSize(w, 64<<10), enc: newJSONEncoder()}
}

// Emit implements decode.Sink.
func (j *JSONL) Emit(r decode.Record) {
	if j.err != nil {
		return
	}
	var err error
	j.out, err = j.enc.appendRecord(j.out[:0], r)
	j.EmitEncoded(j.out, err)
}

// RecordEncoder implements Encoder: a JSON line depends on its record
// alone.
func (j *JSONL) RecordEncoder() func(dst []byte, r decode.Record) ([]byte, error) {
	return NewLineEncoder()
}

// NewLineEncoder returns a function that appends a record's JSON line, as
// the JSON-lines output writes it (newline included), to dst; on error dst
// is returned as it was. Each function is for one goroutine at a time.
func NewLineEncoder() func(dst []byte, r decode.Record) ([]byte, error) {
	return newJSONEncoder().appendRecord
}

// EmitEncoded implements Encoder.
func (j *JSONL) EmitEncoded(b []byte, err error) {
	if j.err != nil {
		return
	}
	if err != nil {
		j.err = err
		return
	}
	_, j.err = j.w.Write(b)
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

// jsonEncoder makes JSON lines, for one goroutine.
type jsonEncoder struct {
	buf bytes.Buffer // one record as encoding/json writes it
	enc *json.Encoder
}

func newJSONEncoder() *jsonEncoder {
	e := &jsonEncoder{}
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	return e
}

// appendRecord appends r's line to dst; on error dst is returned as it
// was. mailtap's record types are written by appendRecordJSON, the same
// bytes without reflection (recordjson.go); others by encoding/json.
func (e *jsonEncoder) appendRecord(dst []byte, r decode.Record) ([]byte, error) {
	if b, ok := appendRecordJSON(dst, r); ok {
		return b, nil
	}
	return e.appendReflect(dst, r)
}

// appendReflect is appendRecord by encoding/json, for every record type.
func (e *jsonEncoder) appendReflect(dst []byte, r decode.Record) ([]byte, error) {
	e.buf.Reset()
	if err := e.enc.Encode(r); err != nil {
		return dst, err
	}
	// encoding/json leaves DEL, C1 controls, bidi and zero-width
	// characters raw; people read JSON lines on terminals too.
	return textsafe.AppendJSON(dst, e.buf.Bytes()), nil
}
