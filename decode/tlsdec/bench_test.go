package tlsdec

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/smtp"
)

// smtpExchange is an SMTP session carrying one 1 MiB message, as
// decode/smtp's BenchmarkSession has it.
func smtpExchange() exchange {
	line := strings.Repeat("abcdefghij", 7) + "\r\n"
	var body strings.Builder
	body.WriteString("From: a@example.org\r\nTo: b@example.net\r\nSubject: bench\r\n\r\n")
	for body.Len() < 1<<20 {
		body.WriteString(line)
	}
	body.WriteString(".\r\n")
	return exchange{
		greet: []byte("220 mx.example.net ESMTP\r\n"),
		cw: [][]byte{[]byte("EHLO c\r\n"), []byte("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"),
			[]byte(body.String()), []byte("QUIT\r\n")},
		sw: [][]byte{[]byte("250-mx.example.net\r\n250-PIPELINING\r\n250 CHUNKING\r\n"), []byte("250 ok\r\n250 ok\r\n354 go\r\n"),
			[]byte("250 queued\r\n"), []byte("221 bye\r\n")},
	}
}

// segments cuts chunks into segments of at most mss bytes, as a capture
// with a 1500-byte MTU has them.
func segments(chunks []chunk, mss int) []chunk {
	var out []chunk
	for _, c := range coalesce(chunks) {
		for p := c.p; len(p) > 0; {
			k := min(len(p), mss)
			out = append(out, chunk{c.dir, p[:k]})
			p = p[k:]
		}
	}
	return out
}

// plainChunks is the cleartext the application wrote, in the same order.
func plainChunks(ex exchange) []chunk {
	out := []chunk{{decode.ServerToClient, ex.greet}}
	for i := range ex.cw {
		out = append(out, chunk{decode.ClientToServer, ex.cw[i]}, chunk{decode.ServerToClient, ex.sw[i]})
	}
	return out
}

func decodeSMTP(b *testing.B, segs []chunk, keys *KeyLog) {
	c := decode.ConnInfo{ID: 1, Start: time.Unix(1, 0)}
	cpu0, cpuOK := cpuTime()
	defer func() {
		if cpu1, ok := cpuTime(); ok && cpuOK && b.N > 0 {
			b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
		}
	}()
	for b.Loop() {
		n := 0
		s := smtp.New(c, decode.Options{}, decode.SinkFunc(func(r decode.Record) {
			if _, ok := r.(*decode.SMTPMail); ok {
				n++
			}
		}))
		ts := time.Unix(1, 0)
		if keys == nil {
			for _, sg := range segs {
				s.Data(sg.dir, sg.p, ts)
			}
		} else {
			d := New(keys, Config{}, s.Data)
			for _, sg := range segs {
				d.Data(sg.dir, sg.p, ts)
			}
			d.Close()
			if in := d.Info(); in.Reason != "" {
				b.Fatal(in.Reason)
			}
		}
		s.Close(decode.CloseFIN, ts)
		if n != 1 {
			b.Fatalf("%d transactions", n)
		}
	}
}

// BenchmarkSMTP compares decoding an SMTP session carrying 1 MiB in clear
// with decoding the same session over TLS (AES-GCM), both in 1448-byte
// segments; MB/s are of application bytes, so the ratio of ns/op is what
// decryption costs (docs/performance.md).
func BenchmarkSMTP(b *testing.B) {
	ex := smtpExchange()
	total := 0
	for _, c := range plainChunks(ex) {
		total += len(c.p)
	}
	b.Run("clear", func(b *testing.B) {
		b.SetBytes(int64(total))
		decodeSMTP(b, segments(plainChunks(ex), 1448), nil)
	})
	certs(b)
	for _, v := range []struct {
		name string
		c, s *tls.Config
	}{
		{"tls13-aes128gcm", &tls.Config{MinVersion: tls.VersionTLS13}, &tls.Config{Certificates: []tls.Certificate{ecCert}}},
		{"tls12-aes128gcm", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}},
			&tls.Config{Certificates: []tls.Certificate{ecCert}}},
		{"tls12-aes256gcm", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}},
			&tls.Config{Certificates: []tls.Certificate{ecCert}}},
	} {
		sess := runPair(b, v.c, v.s, ex)
		keys := keyLogOf(b, sess.keylog)
		b.Run(v.name, func(b *testing.B) {
			b.SetBytes(int64(total))
			decodeSMTP(b, segments(sess.chunks, 1448), keys)
		})
	}
}
