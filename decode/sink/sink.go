package sink

import (
	"github.com/mailtap/mailtap/decode"
)

// Sink is what every record writer of this package is: it receives
// records in order (Emit, from one goroutine) and ends with Flush, which
// writes what is buffered and returns the first error of the run.
// Emit never fails by itself: a writer keeps its first error and reports
// it from Flush, so a decoder is never stopped by its output.
//
// A sink of one's own is one small type:
//
//	type counter struct{ n map[string]int }
//
//	func (c *counter) Emit(r decode.Record) { c.n[r.Head().Type]++ }
//	func (c *counter) Flush() error         { return nil }
type Sink interface {
	decode.Sink // Emit(decode.Record)
	Flush() error
}

// Encoder is a Sink whose output for a record depends on that record
// alone, so that records can be encoded ahead, on other goroutines, and
// written later in order. capture's parallel engine encodes records in its
// workers this way, and leaves only the writing to the goroutine that
// merges them.
//
// For every record r, with f from RecordEncoder,
//
//	b, err := f(nil, r)
//	s.EmitEncoded(b, err)
//
// does what s.Emit(r) does.
type Encoder interface {
	Sink
	// RecordEncoder returns an encoding function for one goroutine. It
	// appends r's bytes to dst, or returns dst unchanged and the error
	// that Emit would have kept.
	RecordEncoder() func(dst []byte, r decode.Record) ([]byte, error)
	// EmitEncoded writes what a RecordEncoder function returned for one
	// record. Like Emit, it is called from one goroutine, in order.
	EmitEncoded(b []byte, err error)
}

var (
	_ Encoder = (*JSONL)(nil)
	_ Sink    = (*JSONL)(nil)
	_ Sink    = (*Text)(nil)
	_ Sink    = (*Credentials)(nil)
	_ Sink    = (*CredentialsJSON)(nil)
)

// Tee sends every record to each sink in turn; Flush flushes them all and
// returns the first error.
type Tee []Sink

// Emit implements decode.Sink.
func (t Tee) Emit(r decode.Record) {
	for _, s := range t {
		s.Emit(r)
	}
}

// Flush implements Sink.
func (t Tee) Flush() error {
	var first error
	for _, s := range t {
		if err := s.Flush(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
