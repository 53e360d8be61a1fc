package imap

import (
	"fmt"
	"testing"

	"github.com/mailtap/mailtap/decode"
)

// splitTranscripts are decoded whole, at every split point of every step,
// and byte by byte: the records must be identical.
func splitTranscripts(t testing.TB) map[string][]step {
	srv := deflate(t, 6, [][]byte{[]byte("* 1 EXISTS\r\nc OK selected\r\n"), []byte("* 1 FETCH (UID 3 BODY[] " + lit(msg1) + ")\r\nd OK\r\n")})
	cli := deflate(t, 6, [][]byte{[]byte("c SELECT INBOX\r\n"), []byte("d UID FETCH 3 BODY[]\r\n")})
	return map[string][]step{
		"login-select-fetch": loginSelectFetch,
		"append": {
			C("2 authenticate plain\r\n"), S("+ \r\n"), C("AGRpZ2l0YWxpbnZlc3RpZ2F0b3JAbmV0d29ya3NpbXMuY29tAG5hcGllcjEyMw==\r\n"), S("2 OK AUTHENTICATE completed\r\n"),
			C(fmt.Sprintf("4 append \"Sent\" (\\Seen) {%d+}\r\n%s\r\n", len(msg1), msg1)), S("4 OK [APPENDUID 1377199071 1] APPEND completed\r\n"),
			C(fmt.Sprintf("5 APPEND Drafts {%d}\r\n", len(msg2))), S("+ go\r\n"), C(msg2 + "\r\n"), S("5 OK\r\n"),
			C("6 APPEND Nope {310}\r\n"), S("6 NO [TRYCREATE] no\r\n"), C("7 CREATE Nope\r\n"), S("7 OK\r\n"),
		},
		"mailbox-actions": {
			C("s SELECT INBOX\r\n"), S("* 4 EXISTS\r\ns OK [READ-WRITE] done\r\n"),
			C("a UID MOVE 42:43 Archive\r\n"), S("* OK [COPYUID 432432 42:43 2:3] Moved\r\n* 2 EXPUNGE\r\n* 2 EXPUNGE\r\na OK Done\r\n"),
			C("b RENAME \"&AMk-t&AOk-\" Summer\r\n"), S("b OK done\r\n"),
			C("25 IDLE\r\n"), S("+ idling\r\n"), S("* 2 EXISTS\r\n"), C("DONE\r\n"), S("25 OK IDLE completed\r\n"),
		},
		"compress": {
			C("b COMPRESS DEFLATE\r\n"), S("b OK DEFLATE active\r\n"), C(string(cli)), S(string(srv)),
		},
	}
}

func TestSplitInvariance(t *testing.T) {
	o := decode.Options{Level: decode.LevelCommands}
	for name, steps := range splitTranscripts(t) {
		t.Run(name, func(t *testing.T) {
			want := dump(runWith(steps, o, testConn(), nil))
			got := dump(runWith(steps, o, testConn(), func(s string) []string {
				var out []string
				for i := 0; i < len(s); i++ {
					out = append(out, s[i:i+1])
				}
				return out
			}))
			if got != want {
				t.Fatalf("byte by byte differs:\n got %s\nwant %s", got, want)
			}
			for si := range steps {
				for k := 1; k < len(steps[si].data); k++ {
					var kk = k
					target := steps[si].data
					split := func(s string) []string {
						if s == target {
							return []string{s[:kk], s[kk:]}
						}
						return []string{s}
					}
					if got := dump(runWith(steps, o, testConn(), split)); got != want {
						t.Fatalf("split of step %d at %d differs:\n got %s\nwant %s", si, k, got, want)
					}
				}
			}
		})
	}
}
