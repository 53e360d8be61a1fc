package smtpd

import (
	"bytes"
	"testing"
)

// FuzzConnFeed: what the SMTP conn passes to go-smtp must not depend on
// how the client's bytes were cut into reads, and bytes are only ever
// changed inside a MAIL SIZE= or BDAT size.
func FuzzConnFeed(f *testing.F) {
	f.Add([]byte("EHLO x\r\nMAIL FROM:<a@b> SIZE=99999999999\r\nRCPT TO:<c>\r\nBDAT 3\r\nabcBDAT 99999999999 LAST\r\n"), 17)
	f.Add([]byte("MAIL FROM:<a> size=1\r\nDATA\r\n"), 3)
	f.Add([]byte("DATA\r\nMAIL FROM:<a> SIZE=99999999999\r\n.\r\nBDAT 2\r\nab"), 9)
	f.Fuzz(func(t *testing.T, in []byte, cut int) {
		whole := feedAll(in, len(in))
		if cut < 0 {
			cut = -cut
		}
		cut %= len(in) + 1
		if got := feedAll(in, cut); !bytes.Equal(got, whole) {
			t.Fatalf("cut at %d: %q, whole: %q", cut, got, whole)
		}
		if !bytes.Contains(bytes.ToUpper(in), []byte("MAIL")) && !bytes.Contains(bytes.ToUpper(in), []byte("BDAT")) &&
			!bytes.Equal(whole, in) {
			t.Fatalf("changed without MAIL or BDAT: %q -> %q", in, whole)
		}
	})
}

// feedAll feeds in as two reads cut at cut, then flushes what is held.
func feedAll(in []byte, cut int) []byte {
	c := &conn{}
	c.feed(in[:cut])
	c.feed(in[cut:])
	return append(append(c.out, c.held...), c.waiting...)
}
