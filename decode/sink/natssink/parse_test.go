package natssink

import (
	"encoding/json"
	"testing"
)

// FuzzParseRecord: any message body gives a record or an error, never a
// panic; a record parsed encodes to JSON again.
func FuzzParseRecord(f *testing.F) {
	f.Add([]byte(`{"v":1,"type":"command","proto":"smtp","session":1,"verb":"EHLO","status":250}`))
	f.Add([]byte(`{"type":"smtp.mail","rcpt_to":[{"addr":"a"}],"message":{"attachments":[{}]}}`))
	f.Add([]byte(`{"type":"session","auth":{"success":null},"tls":{}}`))
	f.Add([]byte(`{"type":"nope"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRecord(data)
		if err != nil {
			return
		}
		if r.Head() == nil {
			t.Fatal("record without header")
		}
		if _, err := json.Marshal(r); err != nil {
			t.Fatalf("parsed record does not encode: %v", err)
		}
	})
}
