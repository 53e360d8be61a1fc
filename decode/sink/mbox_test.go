package sink

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/message"
)

// mboxrd is the mboxrd form of one message, line by line: CRLF as LF, a
// line matching ^>*From  quoted with one more ">", a final line end added
// when missing, and the blank line that ends the message.
func mboxrd(msg string) string {
	var b strings.Builder
	for line := range strings.Lines(msg) {
		if strings.HasPrefix(strings.TrimLeft(line, ">"), "From ") {
			b.WriteByte('>')
		}
		b.WriteString(strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	return b.String()
}

// TestMboxFormat: messages small enough to wait in memory and large ones
// that go through a file (or, with --extract, every .eml file) come out
// of the mbox in mboxrd form, each after its separator line.
func TestMboxFormat(t *testing.T) {
	body := "From the start\r\n>From quoted once\r\n>>From twice\r\nnot From here\r\n\r\nFrom after a blank line\r\nbare LF line\nFrom: a header-like line\r\n"
	long := strings.Repeat("x", 70<<10) + "From inside a long line\r\nFrom after it\r\n"
	msgs := []string{
		"Subject: small\r\n\r\n" + body,
		"Subject: no final line end\r\n\r\n" + body + "last",
		"Subject: large\r\n\r\n" + strings.Repeat(body, 2000),
		"Subject: long line\r\n\r\n" + long,
	}
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("extract=%v", keep), func(t *testing.T) {
			x, err := NewExtractor(filepath.Join(t.TempDir(), "out"), nil, keep)
			if err != nil {
				t.Fatal(err)
			}
			mbox := filepath.Join(t.TempDir(), "all.mbox")
			if err := x.SetMbox(mbox); err != nil {
				t.Fatal(err)
			}
			var want strings.Builder
			for i, msg := range msgs {
				c := decode.ConnInfo{ID: uint64(i + 1), Client: netip.MustParseAddrPort("192.0.2.1:4000"), Server: netip.MustParseAddrPort("192.0.2.2:25")}
				p := message.New(message.Options{Writer: x.Create(c, decode.ProtoSMTP, 1)})
				p.Write([]byte(msg))
				m := p.Finish(false)
				h := decode.NewHeader(decode.TypeSMTPMail, decode.ProtoSMTP, c, c.Start)
				x.Emit(&decode.SMTPMail{Header: h, MailFrom: "a b@example.org", Message: m})
				fmt.Fprintf(&want, "From a_b@example.org %s\n", h.TS.UTC().Format("Mon Jan _2 15:04:05 2006"))
				want.WriteString(mboxrd(msg))
			}
			if err := x.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(mbox)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, []byte(want.String())) {
				g, w := string(got), want.String()
				i := 0
				for i < len(g) && i < len(w) && g[i] == w[i] {
					i++
				}
				t.Errorf("mbox differs at byte %d of %d (want %d):\ngot  %q\nwant %q", i, len(g), len(w), g[max(0, i-40):min(len(g), i+40)], w[max(0, i-40):min(len(w), i+40)])
			}
		})
	}
}
