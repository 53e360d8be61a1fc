package sink

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/mailtap/mailtap/decode"
)

// checkIndexJSON fails t when appendIndexEntry does not write e as
// encoding/json (indexEntryJSON) does, or writes what it refuses.
func checkIndexJSON(t *testing.T, e *IndexEntry) {
	t.Helper()
	x := &Extractor{}
	want, wantOK := x.indexEntryJSON(e)
	want = bytes.Clone(want)
	got, ok := appendIndexEntry(nil, e)
	if ok != wantOK {
		t.Fatalf("appendIndexEntry ok %v, encoding/json ok %v for %+v", ok, wantOK, e)
	}
	if ok && !bytes.Equal(got, want) {
		t.Fatalf("index entry differs from encoding/json's:\n got %q\nwant %q", got, want)
	}
}

// TestIndexJSON: entries with every field set, none, and empty lists, and
// the entries of every message record of the captures in pcaps/ and the
// shared corpus, are written as encoding/json writes them.
func TestIndexJSON(t *testing.T) {
	for _, mode := range []fillMode{fillAll, fillZero, fillEmpty} {
		var e IndexEntry
		fill(reflect.ValueOf(&e).Elem(), mode)
		checkIndexJSON(t, &e)
	}
	refused := IndexEntry{TS: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	checkIndexJSON(t, &refused)

	n := 0
	for _, path := range testCaptures(t) {
		decodeCapture(t, path, decode.LevelTransactions, decode.SinkFunc(func(r decode.Record) {
			var m *decode.Message
			var h *decode.Header
			switch r := r.(type) {
			case *decode.SMTPMail:
				m, h = r.Message, &r.Header
			case *decode.POP3Message:
				m, h = r.Message, &r.Header
			case *decode.IMAPMessage:
				m, h = r.Message, &r.Header
			}
			if m == nil {
				return
			}
			e := IndexEntry{Session: h.Session, Proto: h.Proto, Type: h.Type, TS: h.TS, Client: h.Client, Server: h.Server,
				File: "x.eml", Size: m.Size, SHA256: m.SHA256, MessageID: m.MessageID, Subject: m.Subject, From: m.From,
				Truncated: m.Truncated, MissingBytes: m.MissingBytes}
			for _, a := range m.Attachments {
				e.Attachments = append(e.Attachments, IndexAttachent{File: "attachments/" + a.SHA256, Filename: a.Filename, ContentType: a.ContentType, Size: a.Size, SHA256: a.SHA256, Truncated: a.Truncated})
			}
			checkIndexJSON(t, &e)
			n++
		}))
	}
	t.Logf("%d entries from captures", n)
}

func FuzzIndexJSON(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 'a', '<', '&', '>'})
	f.Add([]byte("\x01\xff\xfe\xe2\x80\xa8\xe2\x80\xa9\x1b[31m\x7f\xc2\x85\x08\x0c\"\\x"))
	f.Add([]byte("\xff\x80\x7f\x00\x01\x3f\xe0\x00\x00\x00\x00\x00\x00\u2028<&>\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var e IndexEntry
		(&fuzzSource{data: data}).fill(reflect.ValueOf(&e).Elem())
		checkIndexJSON(t, &e)
	})
}
