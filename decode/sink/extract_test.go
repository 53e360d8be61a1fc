package sink

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/message"
)

func TestSafeName(t *testing.T) {
	cases := map[string]string{
		"report.pdf":                      "report.pdf",
		"../../etc/passwd":                "passwd",
		`..\..\Windows\system.ini`:        "system.ini",
		"..":                              "attachment.plain",
		"":                                "attachment.plain",
		".hidden":                         "hidden",
		"a\x00b\r\nc.txt":                 "a_b__c.txt",
		"x<y>z:w|v?u*t\".doc":             "x_y_z_w_v_u_t_.doc",
		"evil\u202eexe.txt":               "evil_exe.txt",
		"trailing. ":                      "trailing",
		"Übersicht 2024.csv":              "Übersicht 2024.csv",
		strings.Repeat("é", 200) + ".zip": "",
	}
	for in, want := range cases {
		got := SafeName(in, "text/plain")
		if want == "" {
			if len(got) > maxName || !strings.HasSuffix(got, ".zip") || !utf8.ValidString(got) {
				t.Errorf("SafeName(long) = %q (%d bytes)", got, len(got))
			}
			continue
		}
		if got != want {
			t.Errorf("SafeName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestExtractHostileNames streams a message whose attachments carry
// hostile names through the real message parser into an Extractor, and
// checks that every file lands inside the directory under a safe name.
func TestExtractHostileNames(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	var got []decode.Record
	x, err := NewExtractor(dir, decode.SinkFunc(func(r decode.Record) { got = append(got, r) }), true)
	if err != nil {
		t.Fatal(err)
	}
	mbox := filepath.Join(t.TempDir(), "all.mbox")
	if err := x.SetMbox(mbox); err != nil {
		t.Fatal(err)
	}
	names := []string{"../../../../tmp/pwned.txt", `..\..\evil.bat`, "a\x07b.txt", "same.txt", "same.txt", "", "/etc/shadow"}
	var msg strings.Builder
	msg.WriteString("From: a@example.org\r\nTo: b@example.org\r\nSubject: hostile\r\nMessage-ID: <h@x>\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\nFrom the start\r\n")
	for i, n := range names {
		msg.WriteString("--B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"" + n + "\"\r\n\r\n")
		msg.WriteString("content " + string(rune('A'+i%4)) + "\r\n")
	}
	msg.WriteString("--B--\r\n")
	c := decode.ConnInfo{ID: 7, Client: netip.MustParseAddrPort("192.0.2.1:4000"), Server: netip.MustParseAddrPort("192.0.2.2:25")}
	p := message.New(message.Options{Writer: x.Create(c, decode.ProtoSMTP, 1)})
	p.Write([]byte(msg.String()))
	m := p.Finish(false)
	x.Emit(&decode.SMTPMail{Header: decode.NewHeader(decode.TypeSMTPMail, decode.ProtoSMTP, c, c.Start), MailFrom: "a@example.org", Message: m})
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("records passed on: %d", len(got))
	}
	if len(m.Attachments) != len(names) {
		t.Fatalf("attachments %d", len(m.Attachments))
	}
	abs, _ := filepath.Abs(dir)
	seen := map[string]bool{}
	for _, a := range m.Attachments {
		fa, _ := filepath.Abs(a.File)
		if !strings.HasPrefix(fa, abs+string(filepath.Separator)+"attachments"+string(filepath.Separator)) {
			t.Errorf("attachment %q written at %q, outside %s/attachments", a.Filename, a.File, abs)
		}
		base := filepath.Base(a.File)
		if strings.ContainsAny(base, "\x07/\\") || strings.HasPrefix(base[17:], ".") {
			t.Errorf("unsafe name %q", base)
		}
		b, err := os.ReadFile(a.File)
		if err != nil || !strings.HasPrefix(string(b), "content ") {
			t.Errorf("%s: %q %v", a.File, b, err)
		}
		seen[a.File] = true
	}
	if _, err := os.Stat("/tmp/pwned.txt"); err == nil {
		t.Error("/tmp/pwned.txt exists")
	}
	var idx struct {
		V        int
		Messages []IndexEntry
	}
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil || json.Unmarshal(b, &idx) != nil {
		t.Fatalf("index.json: %v %s", err, b)
	}
	if len(idx.Messages) != 1 || idx.Messages[0].File != "7-1.eml" || idx.Messages[0].MessageID != "<h@x>" || len(idx.Messages[0].Attachments) != len(names) {
		t.Errorf("index: %+v", idx)
	}
	eml, _ := os.ReadFile(filepath.Join(dir, "7-1.eml"))
	if string(eml) != msg.String() {
		t.Error(".eml differs from the message as transferred")
	}
	mb, _ := os.ReadFile(mbox)
	if !strings.HasPrefix(string(mb), "From a@example.org ") || !strings.Contains(string(mb), "\n>From the start\n") || strings.Contains(string(mb), "\r") {
		t.Errorf("mbox:\n%s", mb)
	}
}

// TestExtractTruncatedAttachment streams messages whose attachments are
// not all decoded — one cut by the MIME parse limit, one by the end of a
// truncated transfer — through the real parser into an Extractor: such an
// attachment is flagged, has no hash, and its file says .partial; a whole
// one keeps its hash and plain name; every file has the .eml files' mode.
func TestExtractTruncatedAttachment(t *testing.T) {
	big := strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9w\r\n", 4000)
	msg := "From: a@example.org\r\nSubject: big\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n" +
		"--B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"small.bin\"\r\n\r\nsmall\r\n" +
		"--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"big.bin\"\r\n\r\n" +
		big + "--B--\r\n"
	cases := []struct {
		name      string
		maxParse  int64
		send      string
		truncated bool
	}{
		{"parse limit", int64(len(msg) / 2), msg, false},
		{"cut transfer", 0, msg[:len(msg)/2], true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			x, err := NewExtractor(dir, nil, true)
			if err != nil {
				t.Fatal(err)
			}
			c := decode.ConnInfo{ID: 3, Client: netip.MustParseAddrPort("192.0.2.1:4000"), Server: netip.MustParseAddrPort("192.0.2.2:25")}
			p := message.New(message.Options{MaxParse: tc.maxParse, Writer: x.Create(c, decode.ProtoSMTP, 1)})
			p.Write([]byte(tc.send))
			m := p.Finish(tc.truncated)
			x.Emit(&decode.SMTPMail{Header: decode.NewHeader(decode.TypeSMTPMail, decode.ProtoSMTP, c, c.Start), Message: m})
			if err := x.Close(); err != nil {
				t.Fatal(err)
			}
			if len(m.Attachments) != 2 {
				t.Fatalf("attachments %+v", m.Attachments)
			}
			small, bigA := m.Attachments[0], m.Attachments[1]
			if small.Truncated || small.SHA256 == "" || strings.HasSuffix(small.File, ".partial") {
				t.Errorf("whole attachment: %+v", small)
			}
			if !bigA.Truncated || bigA.SHA256 != "" || !strings.HasSuffix(bigA.File, "-big.bin.partial") || bigA.Size == 0 {
				t.Errorf("cut attachment: %+v", bigA)
			}
			rec, _ := json.Marshal(bigA)
			if strings.Contains(string(rec), `"sha256"`) || !strings.Contains(string(rec), `"truncated":true`) {
				t.Errorf("record %s", rec)
			}
			if b, err := os.ReadFile(bigA.File); err != nil || int64(len(b)) != bigA.Size {
				t.Errorf("%s: %d bytes, %v; record says %d", bigA.File, len(b), err, bigA.Size)
			}
			var idx struct{ Messages []IndexEntry }
			b, _ := os.ReadFile(filepath.Join(dir, "index.json"))
			if err := json.Unmarshal(b, &idx); err != nil || len(idx.Messages) != 1 || len(idx.Messages[0].Attachments) != 2 ||
				!idx.Messages[0].Attachments[1].Truncated || idx.Messages[0].Attachments[0].Truncated {
				t.Errorf("index.json: %v %s", err, b)
			}
			eml, err := os.Stat(m.File)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range m.Attachments {
				st, err := os.Stat(a.File)
				if err != nil || st.Mode().Perm() != eml.Mode().Perm() {
					t.Errorf("%s: mode %v, .eml %v (%v)", a.File, st.Mode().Perm(), eml.Mode().Perm(), err)
				}
			}
		})
	}
}
