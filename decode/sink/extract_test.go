package sink

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
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

// TestExtractWritePaths drives the Extractor's writers directly through
// the cases its buffering has to get right: messages smaller and larger
// than a chunk, written a byte at a time or in one piece; the same
// attachment many times (one file); attachments past the memory budget
// (through a temporary file, none left behind); attachments named after
// the record's sha256 at Emit, or hashed here when the record has none; a
// file of the claimed name already in DIR (the next name is taken, the
// file kept); a message never closed and one never emitted (no file).
func TestExtractWritePaths(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	x, err := NewExtractor(dir, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	x.attMax = 4 // chunks: a 100 KB attachment fits, the second at once does not
	if err := os.WriteFile(filepath.Join(dir, "9-1.eml"), []byte("not ours"), 0o644); err != nil {
		t.Fatal(err)
	}
	body := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('a' + i*7%26)
		}
		return b
	}
	write := func(w decode.MessageWriter, b []byte, step int) {
		for len(b) > 0 {
			k := min(step, len(b))
			if n, err := w.Write(b[:k]); n != k || err != nil {
				t.Fatalf("Write: %d, %v", n, err)
			}
			b = b[k:]
		}
	}
	c := decode.ConnInfo{ID: 9}
	type want struct {
		path *string // set by Emit for attachments
		body []byte
	}
	var wants []want
	var records []decode.Record
	sizes := []struct{ n, step int }{{0, 1}, {10, 1}, {chunkSize, chunkSize}, {chunkSize + 1, 1000}, {5*chunkSize + 3, 1}, {3 * chunkSize, 3 * chunkSize}, {100, 7}}
	for i, sz := range sizes {
		w := x.Create(c, decode.ProtoSMTP, i+1)
		b := body(sz.n)
		write(w, b, sz.step)
		m := &decode.Message{}
		as := w.(decode.AttachmentStore)
		// Two big attachments open at once: the second finds the
		// budget spent and spills; it is closed first.
		att := body(100_000 + i%2)
		sum := sha256.Sum256(att)
		a1, a2 := as.Attachment(decode.Attachment{Filename: "big.bin"}), as.Attachment(decode.Attachment{Filename: "big.bin"})
		write(a1, att, 4096)
		write(a2, att, 4096)
		for _, aw := range []decode.MessageWriter{a2, a1} {
			p, err := aw.Close()
			if err != nil || p == "" {
				t.Fatalf("attachment Close: %q %v", p, err)
			}
			a := decode.Attachment{File: p}
			if i%3 != 0 {
				a.SHA256 = hex.EncodeToString(sum[:]) // else the Extractor hashes
			}
			m.Attachments = append(m.Attachments, a)
		}
		p, err := w.Close()
		if err != nil || p == "" {
			t.Fatalf("Close: %q %v", p, err)
		}
		if again, err := w.Close(); again != "" || err != nil {
			t.Errorf("second Close: %q %v", again, err)
		}
		m.File = p
		wants = append(wants, want{&m.File, b}, want{&m.Attachments[0].File, att}, want{&m.Attachments[1].File, att})
		records = append(records, &decode.SMTPMail{Header: decode.NewHeader(decode.TypeSMTPMail, decode.ProtoSMTP, c, c.Start), Message: m})
	}
	lost := x.Create(c, decode.ProtoSMTP, 99) // abandoned: never closed
	write(lost, body(2*chunkSize), chunkSize)
	unsent := x.Create(c, decode.ProtoSMTP, 98) // closed, never emitted
	ua := unsent.(decode.AttachmentStore).Attachment(decode.Attachment{Filename: "unsent.bin"})
	write(ua, body(10), 10)
	ua.Close()
	unsent.Close()
	for _, r := range records {
		x.Emit(r)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if x.attChunks.Load() != 0 {
		t.Errorf("%d attachment chunks not given back", x.attChunks.Load())
	}
	if *wants[0].path != filepath.Join(dir, "9-1-2.eml") {
		t.Errorf("first message at %s; 9-1.eml was there already", *wants[0].path)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "9-1.eml")); string(b) != "not ours" {
		t.Errorf("9-1.eml overwritten: %q", b)
	}
	for _, w := range wants {
		b, err := os.ReadFile(*w.path)
		if err != nil || string(b) != string(w.body) {
			t.Errorf("%s: %d bytes, want %d (%v)", *w.path, len(b), len(w.body), err)
		}
		if base := filepath.Base(*w.path); strings.HasSuffix(base, ".bin") {
			sum := sha256.Sum256(b)
			if want := hex.EncodeToString(sum[:8]) + "-big.bin"; base != want {
				t.Errorf("attachment named %s, want %s", base, want)
			}
		}
	}
	var files []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, strings.TrimPrefix(p, dir+string(filepath.Separator)))
		}
		return nil
	})
	// 7 messages, 2 attachment contents (sizes alternate), the file that
	// was there, index.json: no temporary file, nothing of messages 98
	// and 99.
	if len(files) != 7+2+1+1 {
		t.Errorf("files in DIR: %v", files)
	}
	var idx struct{ Messages []IndexEntry }
	b, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	if err := json.Unmarshal(b, &idx); err != nil || len(idx.Messages) != len(sizes) || idx.Messages[0].File != "9-1-2.eml" ||
		len(idx.Messages[0].Attachments) != 2 || idx.Messages[0].Attachments[0].File != x.rel(*wants[1].path) {
		t.Errorf("index.json: %v %s", err, b)
	}
}

// BenchmarkExtract is the extraction sink on its own, with traffic shaped
// like the real captures': messages of 1-16 KB written a line at a time,
// one in twenty with a 100 KB attachment out of five (the same one
// retrieved again; its sha256 in the record, as the decoder gives it),
// each message indexed. Per message; the kernel's share
// depends on the file system of the temporary directory (-benchtime
// bounds the files created).
func BenchmarkExtract(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "out")
	x, err := NewExtractor(dir, nil, true)
	if err != nil {
		b.Fatal(err)
	}
	line := []byte(strings.Repeat("x", 74) + "\r\n")
	atts := make([][]byte, 5)
	sums := make([]string, len(atts))
	for i := range atts {
		atts[i] = []byte(strings.Repeat(string(rune('a'+i)), 100_000))
		sum := sha256.Sum256(atts[i])
		sums[i] = hex.EncodeToString(sum[:])
	}
	c := decode.ConnInfo{Client: netip.MustParseAddrPort("192.0.2.1:4000"), Server: netip.MustParseAddrPort("192.0.2.2:25")}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.ID = uint64(i)
		w := x.Create(c, decode.ProtoSMTP, 1)
		m := &decode.Message{MessageID: "<id@example.org>", Subject: "subject", From: "a@example.org", SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}
		for range 12 + i%200 {
			w.Write(line)
			m.Size += int64(len(line))
		}
		if i%20 == 0 {
			aw := w.(decode.AttachmentStore).Attachment(decode.Attachment{Filename: "a.bin", ContentType: "application/octet-stream"})
			aw.Write(atts[i/20%len(atts)])
			p, _ := aw.Close()
			m.Attachments = append(m.Attachments, decode.Attachment{Filename: "a.bin", ContentType: "application/octet-stream", Size: 100_000, SHA256: sums[i/20%len(atts)], File: p})
		}
		m.File, _ = w.Close()
		x.Emit(&decode.SMTPMail{Header: decode.NewHeader(decode.TypeSMTPMail, decode.ProtoSMTP, c, c.Start), MailFrom: "a@example.org", Message: m})
	}
	if err := x.Close(); err != nil {
		b.Fatal(err)
	}
}

// TestExtractBudget: attachments held in memory stay within the budget
// when their records are slow to come (the oldest waiting one moves to a
// temporary file and is still named and written when its record comes),
// and a writer dropped without Close gives its share back once collected.
func TestExtractBudget(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	x, err := NewExtractor(dir, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	x.attMax = 4 // chunks: one 100 KB attachment
	c := decode.ConnInfo{ID: 5}
	w := x.Create(c, decode.ProtoSMTP, 1)
	w.Write([]byte("message\r\n"))
	m := &decode.Message{}
	var bodies [][]byte
	for i := range 3 {
		b := []byte(strings.Repeat(string(rune('a'+i)), 100_000))
		aw := w.(decode.AttachmentStore).Attachment(decode.Attachment{Filename: "f.bin"})
		aw.Write(b)
		p, err := aw.Close()
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		m.Attachments = append(m.Attachments, decode.Attachment{File: p, SHA256: hex.EncodeToString(sum[:])})
		bodies = append(bodies, b)
		if n := x.attChunks.Load(); n > x.attMax {
			t.Errorf("%d chunks held, budget %d", n, x.attMax)
		}
	}
	// The oldest waiting ones went to temporary files, the newest is
	// still in memory.
	if first, last := x.pending[m.Attachments[0].File], x.pending[m.Attachments[2].File]; first == nil || first.tmp == "" || last == nil || len(last.chunks) == 0 {
		t.Errorf("pending: first %+v, last %+v", first, last)
	}
	func() {
		// Dropped without Close: no file, and the budget comes back.
		aw := w.(decode.AttachmentStore).Attachment(decode.Attachment{Filename: "lost.bin"})
		aw.Write(make([]byte, 100_000))
	}()
	m.File, _ = w.Close()
	x.Emit(&decode.SMTPMail{Header: decode.NewHeader(decode.TypeSMTPMail, decode.ProtoSMTP, c, c.Start), Message: m})
	for i, a := range m.Attachments {
		b, err := os.ReadFile(a.File)
		if err != nil || string(b) != string(bodies[i]) {
			t.Errorf("%s: %d bytes (%v)", a.File, len(b), err)
		}
		if want := a.SHA256[:16] + "-f.bin"; filepath.Base(a.File) != want {
			t.Errorf("attachment %d at %s, want %s", i, a.File, want)
		}
	}
	for i := 0; x.attChunks.Load() != 0 && i < 200; i++ {
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
	if n := x.attChunks.Load(); n != 0 {
		t.Errorf("%d chunks still counted after the dropped writer was collected", n)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "attachments"))
	if len(entries) != 3 {
		t.Errorf("attachments/: %v", entries)
	}
}
