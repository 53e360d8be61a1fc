package smtp

import (
	"strings"
	"testing"
	"time"

	"github.com/mailtap/mailtap/decode"
)

// BenchmarkSession decodes a session carrying one 1 MiB message in 1448-byte
// segments (the decoder's share of the read path; MB/s of client bytes).
func BenchmarkSession(b *testing.B) {
	line := strings.Repeat("abcdefghij", 7) + "\r\n"
	var body strings.Builder
	body.WriteString("From: a@example.org\r\nTo: b@example.net\r\nSubject: bench\r\n\r\n")
	for body.Len() < 1<<20 {
		body.WriteString(line)
	}
	body.WriteString(".\r\n")
	steps := []struct {
		dir  decode.Direction
		data string
	}{
		{decode.ServerToClient, "220 mx.example.net ESMTP\r\n"},
		{decode.ClientToServer, "EHLO c\r\n"},
		{decode.ServerToClient, "250-mx.example.net\r\n250-PIPELINING\r\n250 CHUNKING\r\n"},
		{decode.ClientToServer, "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"},
		{decode.ServerToClient, "250 ok\r\n250 ok\r\n354 go\r\n"},
		{decode.ClientToServer, body.String()},
		{decode.ServerToClient, "250 queued\r\n"},
		{decode.ClientToServer, "QUIT\r\n"},
		{decode.ServerToClient, "221 bye\r\n"},
	}
	total := 0
	for _, st := range steps {
		total += len(st.data)
	}
	b.SetBytes(int64(total))
	b.ReportAllocs()
	c := decode.ConnInfo{ID: 1, Start: t0}
	for b.Loop() {
		n := 0
		s := New(c, decode.Options{}, decode.SinkFunc(func(r decode.Record) {
			if _, ok := r.(*decode.SMTPMail); ok {
				n++
			}
		}))
		ts := t0
		for _, st := range steps {
			p := []byte(st.data)
			for len(p) > 0 {
				k := min(len(p), 1448)
				s.Data(st.dir, p[:k], ts)
				p = p[k:]
			}
			ts = ts.Add(time.Millisecond)
		}
		s.Close(decode.CloseFIN, ts)
		if n != 1 {
			b.Fatalf("%d transactions", n)
		}
	}
}
