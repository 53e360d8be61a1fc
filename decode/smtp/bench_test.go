package smtp

import (
	"strconv"
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

// BenchmarkTransactions decodes one session carrying 100 small pipelined
// transactions (the per-command and per-reply share of the decoder, which
// BenchmarkSession's single large message hides), at both output levels.
// allocs/op divided by 100 is the allocations per transaction.
func BenchmarkTransactions(b *testing.B) {
	const n = 100
	type seg struct {
		dir  decode.Direction
		data []byte
	}
	segs := []seg{
		{decode.ServerToClient, []byte("220 mx.example.net ESMTP Postfix\r\n")},
		{decode.ClientToServer, []byte("EHLO client.example.org\r\n")},
		{decode.ServerToClient, []byte("250-mx.example.net\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n" +
			"250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250 CHUNKING\r\n")},
	}
	for i := range n {
		segs = append(segs,
			seg{decode.ClientToServer, []byte("MAIL FROM:<a@example.org> SIZE=120\r\nRCPT TO:<b@example.net>\r\nDATA\r\n")},
			seg{decode.ServerToClient, []byte("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n")},
			seg{decode.ClientToServer, []byte("From: a@example.org\r\nTo: b@example.net\r\nSubject: t\r\n\r\nbody\r\n.\r\n")},
			seg{decode.ServerToClient, []byte("250 2.0.0 Ok: queued as " + strconv.Itoa(1000+i) + "\r\n")})
	}
	segs = append(segs,
		seg{decode.ClientToServer, []byte("QUIT\r\n")},
		seg{decode.ServerToClient, []byte("221 2.0.0 Bye\r\n")})
	total := 0
	for _, sg := range segs {
		total += len(sg.data)
	}
	for _, level := range []decode.Level{decode.LevelTransactions, decode.LevelCommands} {
		name := "transactions"
		if level == decode.LevelCommands {
			name = "commands"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(total))
			b.ReportAllocs()
			c := decode.ConnInfo{ID: 1, Start: t0}
			for b.Loop() {
				txs := 0
				s := New(c, decode.Options{Level: level}, decode.SinkFunc(func(r decode.Record) {
					if _, ok := r.(*decode.SMTPMail); ok {
						txs++
					}
				}))
				ts := t0
				for _, sg := range segs {
					s.Data(sg.dir, sg.data, ts)
					ts = ts.Add(time.Millisecond)
				}
				s.Close(decode.CloseFIN, ts)
				if txs != n {
					b.Fatalf("%d transactions", txs)
				}
			}
		})
	}
}
