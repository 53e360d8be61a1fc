package sink

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mailtap/mailtap/decode"
)

// counter is the doc comment's one-type sink.
type counter struct{ n map[string]int }

func (c *counter) Emit(r decode.Record) { c.n[r.Head().Type]++ }
func (c *counter) Flush() error         { return nil }

// TestTeeOwnSink: a user's own sink beside the JSON writer sees the same
// records, and Tee's Flush reaches both.
func TestTeeOwnSink(t *testing.T) {
	var buf bytes.Buffer
	c := &counter{n: map[string]int{}}
	var s Sink = Tee{NewJSONL(&buf), c}
	conn := decode.ConnInfo{ID: 7, Client: netip.MustParseAddrPort("192.0.2.1:40000"), Server: netip.MustParseAddrPort("192.0.2.25:25")}
	ts := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	s.Emit(&decode.SMTPMail{Header: decode.NewHeader(decode.TypeSMTPMail, decode.ProtoSMTP, conn, ts), MailFrom: "a@example.org"})
	s.Emit(&decode.SessionRecord{Header: decode.NewHeader(decode.TypeSession, decode.ProtoSMTP, conn, ts)})
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if c.n[decode.TypeSMTPMail] != 1 || c.n[decode.TypeSession] != 1 {
		t.Errorf("counter saw %v", c.n)
	}
	if got := strings.Count(buf.String(), "\n"); got != 2 {
		t.Errorf("JSON sink wrote %d lines: %q", got, buf.String())
	}
	if !strings.Contains(buf.String(), `"server_port":25,"community_id":"1:`) {
		t.Errorf("header fields missing: %s", buf.String())
	}
}
