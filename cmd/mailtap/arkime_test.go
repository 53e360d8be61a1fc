package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// arkimeSession is the part of an Arkime SPI session (its test .test
// files) that this test compares.
type arkimeSession struct {
	Body struct {
		Protocol []string `json:"protocol"`
		Source   struct {
			Port int `json:"port"`
		} `json:"source"`
		Email struct {
			Src       []string `json:"src"`
			Dst       []string `json:"dst"`
			Subject   []string `json:"subject"`
			Filename  []string `json:"filename"`
			SHA256    []string `json:"sha256"`
			SMTPHello []string `json:"smtpHello"`
			Folder    []string `json:"folder"`
		} `json:"email"`
	} `json:"body"`
}

// seenInSession gathers, per client port, every address, subject, helo,
// IMAP mailbox, file name and attachment hash that our records carry.
func seenInSession(recs []record) map[int]map[string]bool {
	out := map[int]map[string]bool{}
	add := func(port int, vals ...string) {
		if out[port] == nil {
			out[port] = map[string]bool{}
		}
		for _, v := range vals {
			if v != "" {
				out[port][strings.ToLower(v)] = true
			}
		}
	}
	for _, r := range recs {
		p := clientPort(r)
		add(p, r.str("helo"), r.str("mail_from"), r.str("mailbox"))
		for _, a := range rcptAddrs(r) {
			add(p, a)
		}
		m := r.obj("message")
		if m == nil {
			continue
		}
		add(p, m.str("subject"))
		for _, f := range append([]any{m.str("from")}, append(m.list("to"), m.list("cc")...)...) {
			s, _ := f.(string)
			add(p, s, addrOnly(s))
		}
		for _, a := range m.list("attachments") {
			ar := record(a.(map[string]any))
			add(p, ar.str("filename"), ar.str("sha256"))
		}
	}
	return out
}

func addrOnly(s string) string {
	if i := strings.LastIndexByte(s, '<'); i >= 0 {
		if j := strings.IndexByte(s[i:], '>'); j > 0 {
			return s[i+1 : i+j]
		}
	}
	return s
}

// TestCorpusArkime checks the e-mail facts Arkime's own tests assert for
// its SMTP and IMAP captures (senders, recipients, subjects, HELO, IMAP
// folders, attachment names and SHA-256) against our records for the same
// client port.
func TestCorpusArkime(t *testing.T) {
	root := corpusDir(t)
	tests, _ := filepath.Glob(filepath.Join(root, "arkime", "*", "*.test"))
	checked := 0
	for _, tf := range tests {
		b, err := os.ReadFile(tf)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Sessions []arkimeSession `json:"sessions3"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Errorf("%s: %v", tf, err)
			continue
		}
		caps, _ := filepath.Glob(filepath.Join(filepath.Dir(tf), "*.pcap*"))
		if len(caps) != 1 {
			continue
		}
		var seen map[int]map[string]bool
		for _, s := range doc.Sessions {
			if !contains(s.Body.Protocol, "smtp") && !contains(s.Body.Protocol, "imap") {
				continue
			}
			if seen == nil {
				seen = seenInSession(decodeFile(t, caps[0], "--ports", "smtp=25,587,1224,2525"))
			}
			got := seen[s.Body.Source.Port]
			e := s.Body.Email
			wants := concat(e.Src, e.Dst, e.Subject, e.Filename, e.SMTPHello, e.Folder)
			if len(e.Filename) > 0 {
				// Arkime also hashes base64 body text; we hash
				// attachments only, so compare hashes where it
				// saw a named file.
				wants = append(wants, e.SHA256...)
			}
			for _, want := range wants {
				checked++
				if want != "" && !arkimeMatch(got, want) {
					t.Errorf("%s: port %d: Arkime has %q, we do not", rel(tf), s.Body.Source.Port, want)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no Arkime facts checked")
	}
	t.Logf("checked %d Arkime facts", checked)
}

// arkimeMatch compares one Arkime value with ours, allowing for Arkime's
// known differences: values cut at 4095 bytes, the folding white space it
// keeps between adjacent encoded words (RFC 2047 §6.2 says to drop it,
// and we do: "=?UTF-8?Q?a?=\r\n  =?UTF-8?Q?b?=" is "ab"), and, in IMAP,
// only the first line of a folded field (RFC 5322 §2.2.3 unfolds it:
// "...sometimes wor\r\n   king" is "...sometimes wor   king").
func arkimeMatch(got map[string]bool, want string) bool {
	w := strings.ToLower(want)
	if got[w] || got[strings.TrimSpace(w)] {
		return true
	}
	for g := range got {
		if len(w) >= 4095 && strings.HasPrefix(g, w) {
			return true
		}
		if strings.HasPrefix(g, w) && len(g) > len(w) && (g[len(w)] == ' ' || g[len(w)] == '\t') {
			return true
		}
		if strings.Join(strings.Fields(g), "") == strings.Join(strings.Fields(w), "") {
			return true
		}
	}
	return false
}

func contains(l []string, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}

func concat(ls ...[]string) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l...)
	}
	return out
}
