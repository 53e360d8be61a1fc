package sink

import (
	"bytes"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mailtap/mailtap/decode"
)

// nanRecord cannot be encoded: encoding/json refuses NaN.
type nanRecord struct {
	decode.Header
	X float64 `json:"x"`
}

func jsonlRecords() []decode.Record {
	conn := decode.ConnInfo{ID: 7, Client: netip.MustParseAddrPort("192.0.2.1:40000"), Server: netip.MustParseAddrPort("192.0.2.25:25")}
	ts := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	h := decode.NewHeader(decode.TypeSMTPMail, decode.ProtoSMTP, conn, ts)
	return []decode.Record{
		// DEL, a C1 control, a bidi override and a zero-width space,
		// which encoding/json leaves raw, and HTML characters, which
		// it must leave alone.
		&decode.SMTPMail{Header: h, MailFrom: "a\x7f\u0085b\u202ec\u200bd@example.org <x&y>"},
		&decode.SMTPMail{Header: h, MailFrom: "plain@example.org"},
		&nanRecord{Header: h, X: math.NaN()},
		&decode.SMTPMail{Header: h, MailFrom: "after@example.org"},
	}
}

// TestJSONLEncoder: records encoded ahead, on another goroutine, and
// written with EmitEncoded make the same bytes, count and error as Emit,
// the terminal-safe escaping and the sticky error included.
func TestJSONLEncoder(t *testing.T) {
	recs := jsonlRecords()
	var want bytes.Buffer
	j := NewJSONL(&want)
	var wantErr error
	for i, r := range recs {
		j.Emit(r)
		wantErr = j.Flush()
		if (wantErr != nil) != (i >= 2) {
			t.Fatalf("record %d: Flush says %v", i, wantErr)
		}
	}
	if wantErr == nil || !strings.Contains(want.String(), `\u007f\u0085b\u202ec\u200bd`) || !strings.Contains(want.String(), "<x&y>") || strings.Contains(want.String(), "after@") {
		t.Fatalf("Emit wrote %q, error %v", want.String(), wantErr)
	}

	var got bytes.Buffer
	e := NewJSONL(&got)
	type enc struct {
		b   []byte
		err error
	}
	ch := make(chan enc, len(recs))
	go func() {
		f := e.RecordEncoder()
		var buf []byte
		for _, r := range recs {
			var err error
			off := len(buf)
			buf, err = f(buf, r)
			ch <- enc{buf[off:len(buf):len(buf)], err}
		}
		close(ch)
	}()
	var gotErr error
	for x := range ch {
		e.EmitEncoded(x.b, x.err)
		gotErr = e.Flush()
	}
	if got.String() != want.String() {
		t.Errorf("encoded ahead:\n%s\nEmit:\n%s", got.String(), want.String())
	}
	if gotErr == nil || gotErr.Error() != wantErr.Error() {
		t.Errorf("error %v, Emit's %v", gotErr, wantErr)
	}
	if e.Count() != j.Count() || e.Count() != 2 {
		t.Errorf("count %d, Emit's %d, want 2", e.Count(), j.Count())
	}
}
