package main

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// pop3Summary condenses a capture's POP3 records into the facts the
// corpus tools and our recordings state.
func pop3Summary(recs []record) string {
	var lines []string
	for _, r := range recs {
		if r.str("proto") != "pop3" {
			continue
		}
		switch r.str("type") {
		case "pop3.message":
			m := r.obj("message")
			lines = append(lines, fmt.Sprintf("%d msg %v size=%v deleted=%v subject=%q", clientPort(r), r.num("msgno"), r.num("size"), r["deleted"], m.str("subject")))
		case "session":
			var auths []string
			for _, a := range r.list("auths") {
				ar := record(a.(map[string]any))
				ok := "?"
				if b, isBool := ar["success"].(bool); isBool {
					ok = fmt.Sprint(b)
				}
				auths = append(auths, ar.str("mechanism")+":"+ar.str("user")+":"+ok)
			}
			if len(auths) == 0 && r.str("mode") == "" {
				continue
			}
			lines = append(lines, fmt.Sprintf("%d session auth=%s mode=%s retrieved=%v deleted=%v", clientPort(r), strings.Join(auths, ","), r.str("mode"), r["retrieved"], r["deleted"]))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestPOP3Facts checks users, retrieved and deleted message numbers,
// sizes and subjects in the POP3 captures of the corpus and of pcaps/
// against what their tools (Zeek, Suricata, CredSLayer) and our
// recordings (pcaps/README.md) state.
func TestPOP3Facts(t *testing.T) {
	ours := []struct {
		file string
		want []string
	}{
		{"real-dovecot-poplib.pcap", []string{
			`msg 1 size=802 deleted=false subject=`,
			`session auth=USER:alice:true mode=delete retrieved=2 deleted=1`,
		}},
		{"real-dovecot-pop3-nodelete-drop.pcap", []string{`mode=keep retrieved=0 deleted=0`}},
		{"real-dovecot-pop3-curl.pcap", []string{`session auth=PLAIN:alice:true`}},
		// fetchmail: USER/PASS, TOP n 99999999 for each, DELE, QUIT commits.
		{"real-dovecot-pop3-fetchmail.pcap", []string{
			`msg 1 size=802 deleted=true`,
			`msg 2 size=1335 deleted=true`,
			`msg 3 size=752 deleted=true`,
			`session auth=USER:alice:true mode=delete retrieved=3 deleted=3`,
		}},
	}
	for _, c := range ours {
		got := pop3Summary(decodeFile(t, filepath.Join("..", "..", "pcaps", c.file)))
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: lacks %q in:\n%s", c.file, w, got)
			}
		}
	}
	root := corpusDir(t)
	corpus := []struct {
		file string
		want []string
	}{
		// Zeek's pop3 "out" trace and CredSLayer: the GMX login fails with
		// one password and succeeds with the next; RETR 1-3.
		{"zeek/pop3/pop3.pcap", []string{
			"26284 session auth=PLAIN:digitalinvestigator@networksims.com:false",
			"26383 msg 1 size=5565 deleted=false subject=\"A message from 1&1 Internet\"",
			"26383 msg 2 size=8412 deleted=false subject=\"Testing\"",
			"26383 msg 3 size=5214 deleted=false subject=\"RE: Testing\"",
			"26383 session auth=PLAIN:digitalinvestigator@networksims.com:true mode=keep retrieved=3 deleted=0",
		}},
		// Suricata: USER moises.nunez@... OK, 49 TOP.
		{"suricata-verify/pop3/input.pcap", []string{
			"session auth=USER:moises.nunez@ingenierianumar.com:true mode=keep retrieved=49 deleted=0",
		}},
	}
	for _, c := range corpus {
		got := pop3Summary(corpusRecords(t, filepath.Join(root, c.file)))
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: lacks %q in:\n%s", c.file, w, got)
			}
		}
	}
}
