package message

import (
	"bytes"
	"fmt"
	"testing"
)

// typicalMessage is a small message as most mail traffic carries: a few
// header fields and a text body of n lines, or with a base64 attachment.
func typicalMessage(lines int, attach bool) []byte {
	var b bytes.Buffer
	b.WriteString("Received: from client.example.org (client.example.org [192.0.2.7])\r\n" +
		"\tby mx.example.test (Postfix) with ESMTP id 9E295BA368\r\n\tfor <alice@example.test>; Mon,  7 Dec 2026 15:04:29 +0000 (UTC)\r\n" +
		"From: Carol Sender <carol@example.org>\r\nTo: alice@example.test, Bob <bob@example.test>\r\n" +
		"Subject: =?utf-8?q?quarterly_caf=C3=A9_review?=\r\nDate: Mon, 7 Dec 2026 15:04:29 +0000\r\n" +
		"Message-ID: <7e04.0007.0024@example.org>\r\nMIME-Version: 1.0\r\n")
	text := func() {
		for i := range lines {
			fmt.Fprintf(&b, "%d the quarterly review of the warehouse account is delayed, please see below %d\r\n", i, i)
		}
	}
	if !attach {
		b.WriteString("Content-Type: text/plain; charset=\"utf-8\"\r\n\r\n")
		text()
		return b.Bytes()
	}
	b.WriteString("Content-Type: multipart/mixed; boundary=\"=====b=====\"\r\n\r\n" +
		"--=====b=====\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n\r\n")
	text()
	b.WriteString("--=====b=====\r\nContent-Type: application/octet-stream\r\n" +
		"Content-Disposition: attachment; filename=\"blob.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	for range lines * 4 {
		b.WriteString("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n")
	}
	b.WriteString("--=====b=====--\r\n")
	return b.Bytes()
}

// BenchmarkTypical parses small messages written in TCP-segment-sized
// pieces, as the protocol decoders hand them over.
func BenchmarkTypical(b *testing.B) {
	for _, c := range []struct {
		name   string
		lines  int
		attach bool
	}{{"text5k", 60, false}, {"text50k", 600, false}, {"attach30k", 60, true}} {
		msg := typicalMessage(c.lines, c.attach)
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				p := New(Options{})
				for c := range slicesChunk(msg, 1448) {
					p.Write(c)
				}
				p.Finish(false)
			}
		})
	}
}
