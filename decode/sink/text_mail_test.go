package sink

import (
	"strings"
	"testing"

	"github.com/mailtap/mailtap/decode"
)

// A transaction record says "via DATA" or "via BDAT" only when content
// moved: a refused MAIL is no DATA rejection (issue 13 item 3).
func TestTextMailVia(t *testing.T) {
	tests := []struct {
		rec  decode.SMTPMail
		want string
	}{
		{decode.SMTPMail{Seq: 1, Status: decode.TxRejected, MailFrom: "a@b", Reply: &decode.Reply{Code: 554}}, "MAIL #1 REJECTED\n"},
		{decode.SMTPMail{Seq: 2, Status: decode.TxAccepted, Message: &decode.Message{Size: 3}}, "MAIL #2 ACCEPTED via DATA\n"},
		{decode.SMTPMail{Seq: 3, Status: decode.TxRejected, BDAT: true}, "MAIL #3 REJECTED via BDAT\n"},
	}
	for _, tt := range tests {
		var sb strings.Builder
		r := tt.rec
		r.Header = decode.Header{Type: decode.TypeSMTPMail, Proto: decode.ProtoSMTP}
		tx := NewText(&sb)
		tx.Emit(&r)
		if err := tx.Flush(); err != nil {
			t.Fatal(err)
		}
		if first, _, _ := strings.Cut(sb.String(), "\n"); !strings.HasSuffix(first+"\n", tt.want) {
			t.Errorf("got %q, want a first line ending %q", first, tt.want)
		}
	}
}
