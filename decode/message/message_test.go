package message

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailtap/mailtap/decode"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func parseAll(b []byte, o Options) *decode.Message {
	p := New(o)
	p.Write(b)
	return p.Finish(false)
}

func parseChunks(b []byte, sizes func() int) *decode.Message {
	p := New(Options{})
	for len(b) > 0 {
		n := min(max(sizes(), 1), len(b))
		p.Write(b[:n])
		b = b[n:]
	}
	return p.Finish(false)
}

func summary(t testing.TB, m *decode.Message) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func emlFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.eml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/*.eml: %v", err)
	}
	return files
}

func TestGolden(t *testing.T) {
	for _, f := range emlFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got := summary(t, parseAll(b, Options{}))
			golden := strings.TrimSuffix(f, ".eml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("summary differs from %s:\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

// TestSplitInvariance feeds every test message in many chunkings, including
// one byte at a time and every two-piece split, and requires the same
// summary each time.
func TestSplitInvariance(t *testing.T) {
	for _, f := range emlFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		want := summary(t, parseAll(b, Options{}))
		check := func(how string, m *decode.Message) {
			t.Helper()
			if got := summary(t, m); !bytes.Equal(got, want) {
				t.Fatalf("%s: %s differs:\ngot:\n%s\nwant:\n%s", filepath.Base(f), how, got, want)
			}
		}
		check("1 byte at a time", parseChunks(b, func() int { return 1 }))
		r := rand.New(rand.NewPCG(1, uint64(len(b))))
		for range 20 {
			check("random chunks", parseChunks(b, func() int { return r.IntN(100) }))
		}
		step := max(1, len(b)/400)
		for i := 0; i < len(b); i += step {
			p := New(Options{})
			p.Write(b[:i])
			p.Write(b[i:])
			check("split", p.Finish(false))
		}
	}
}

func parseFile(t *testing.T, name string) *decode.Message {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	m := parseAll(b, Options{})
	if m.Size != int64(len(b)) {
		t.Errorf("size %d, want %d", m.Size, len(b))
	}
	if sum := sha256.Sum256(b); m.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("sha256 %s, want %x", m.SHA256, sum)
	}
	return m
}

func TestSubjects(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{"subject-00.eml", "test 测试"},
		{"subject-01.eml", "é î ø ü      test"},
		{"subject-02.eml", "4spaces    å é î ø ü     5spaces"},
		{"subject-03.eml", "Can this"},
		{"subject-04.eml", "中文"},
		{"subject-05.eml", "See What’s Next"},
		{"subject-06.eml", "測試郵件"},
		{"subject-07.eml", "テスト件名"},
		{"subject-08.eml", "Привет мир"},
		{"subject-09.eml", "테스트 제목"},
		{"subject-10.eml", "日本語の件名"},
		{"subject-11.eml", "镕"},
		{"subject-12.eml", "测试€"},
		{"subject-13.eml", "Łódź"},
		{"subject-14.eml", "Тема"},
		{"subject-15.eml", "café"},
		{"subject-16.eml", "abc rest"},
		{"subject-17.eml", "=?utf-8?B?###?= after"},
		{"subject-18.eml", "Re: résumé (2)"},
		{"subject-raw1252.eml", "Awesome windows: See What’s Next in charset decoding!"},
		{"subject-rawutf8.eml", "Grüße aus Köln"},
		{"alternative.eml", "Café crème"},
		{"plain.eml", "Quarterly report"},
		{"header-only.eml", "截断"},
	} {
		if got := parseFile(t, c.file).Subject; got != c.want {
			t.Errorf("%s: subject %q, want %q", c.file, got, c.want)
		}
	}
}

func TestHeaderFields(t *testing.T) {
	m := parseFile(t, "plain.eml")
	want := decode.Message{
		From:        "Alice Example <alice@example.org>",
		To:          []string{"Bob <bob@example.net>", "carol@example.net"},
		Cc:          []string{"Dave, the Third <dave@example.com>"},
		Date:        "Tue, 3 Mar 2026 10:00:00 +0000",
		MessageID:   "<20260303100000.4F2A1@client.example.org>",
		InReplyTo:   "<prev-1@example.net>",
		UserAgent:   "Mutt/2.2.12",
		ContentType: "text/plain; charset=us-ascii",
		TextPreview: "Hello Bob, the quarterly report is attached... not really, this is plain text. -- Alice",
	}
	if m.From != want.From || !slices.Equal(m.To, want.To) || !slices.Equal(m.Cc, want.Cc) ||
		m.Date != want.Date || m.MessageID != want.MessageID || m.InReplyTo != want.InReplyTo ||
		m.UserAgent != want.UserAgent || m.ContentType != want.ContentType || m.TextPreview != want.TextPreview {
		t.Errorf("got  %+v\nwant %+v", *m, want)
	}
	if len(m.Attachments) != 0 || len(m.Anomalies) != 0 {
		t.Errorf("attachments %v anomalies %v", m.Attachments, m.Anomalies)
	}

	m = parseFile(t, "alternative.eml")
	if m.From != "Renée <renee@example.fr>" || m.UserAgent != "Microsoft Outlook 16.0" ||
		m.ContentType != `multipart/alternative; boundary="----=_Part_1_2.3"` {
		t.Errorf("alternative: %+v", *m)
	}
	if want := "Café crème, très bon. This line is long enough that it has to be wrapped by the encoder."; m.TextPreview != want {
		t.Errorf("preview %q, want %q", m.TextPreview, want)
	}

	m = parseFile(t, "subject-rawutf8.eml")
	if m.From != "Jörg <joerg@example.de>" || !slices.Equal(m.To, []string{"Zoë <zoe@example.de>"}) {
		t.Errorf("raw utf-8 addresses: %q %q", m.From, m.To)
	}
	m = parseFile(t, "html-only.eml")
	if m.TextPreview != "News Don’t miss & enjoy" {
		t.Errorf("html preview %q", m.TextPreview)
	}
}

func hexsum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestAttachments(t *testing.T) {
	pdf := append(bytes.Repeat(func() []byte {
		b := make([]byte, 256)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}(), 20), "%%EOF\n"...)
	png := []byte("\x89PNG\r\n\x1a\n")
	for i := range 3000 {
		png = append(png, byte(i*7%256))
	}
	m := parseFile(t, "nested.eml")
	want := []decode.Attachment{
		{ContentType: "image/png", Inline: true, Size: int64(len(png)), SHA256: hexsum(png)},
		{Filename: "report.pdf", ContentType: "application/pdf", Size: int64(len(pdf)), SHA256: hexsum(pdf)},
		{Filename: "notes.txt", ContentType: "text/plain", Size: 20, SHA256: hexsum([]byte("line one\r\nline two\r\n"))},
	}
	if !slices.Equal(m.Attachments, want) {
		t.Errorf("nested attachments:\ngot  %+v\nwant %+v", m.Attachments, want)
	}
	if m.TextPreview != "See the attached report and the picture." || len(m.Anomalies) != 0 {
		t.Errorf("nested: preview %q anomalies %v", m.TextPreview, m.Anomalies)
	}

	m = parseFile(t, "rfc2231.eml")
	want = []decode.Attachment{
		{Filename: "测试 été.bin", ContentType: "application/octet-stream", Size: 4, SHA256: hexsum([]byte{0, 1, 2, 3})},
		{Filename: "résumé.txt", ContentType: "application/octet-stream", Size: 5, SHA256: hexsum([]byte("hello"))},
		{Filename: "测试文档.doc", ContentType: "application/msword", Size: 4, SHA256: hexsum([]byte("word"))},
		{Filename: "plain-name.zip", ContentType: "application/zip", Size: 2, SHA256: hexsum([]byte("PK"))},
	}
	if !slices.Equal(m.Attachments, want) {
		t.Errorf("rfc2231 attachments:\ngot  %+v\nwant %+v", m.Attachments, want)
	}

	// a single-part attachment: the line break that ends the message is
	// not content (Suricata reports 30 bytes for this shape too)
	m = parseFile(t, "single-7bit.eml")
	want = []decode.Attachment{{Filename: "payload.exe", ContentType: "application/octet-stream", Size: 30,
		SHA256: hexsum([]byte("MIME-TEST-PAYLOAD-30-BYTES-LON"))}}
	if !slices.Equal(m.Attachments, want) {
		t.Errorf("single part: %+v", m.Attachments)
	}

	// message/rfc822 with a transfer encoding: a plain message inside is
	// descended (the evasion Suricata's 8649 test guards against), a
	// really encoded one is decoded as an attachment
	m = parseFile(t, "encoded-rfc822.eml")
	innerMsg := "From: attacker@example.com\r\nSubject: Inner\r\nContent-Type: application/octet-stream\r\n" +
		"Content-Disposition: attachment; filename=\"payload.exe\"\r\n\r\nMIME-BYPASS-TEST"
	real := "From: x@example.com\r\nSubject: really encoded\r\n\r\nhello\r\n"
	want = []decode.Attachment{
		{Filename: "innocent.txt", ContentType: "message/rfc822", Size: int64(len(innerMsg)), SHA256: hexsum([]byte(innerMsg))},
		{Filename: "payload.exe", ContentType: "application/octet-stream", Size: 16, SHA256: hexsum([]byte("MIME-BYPASS-TEST"))},
		{Filename: "real.eml", ContentType: "message/rfc822", Size: int64(len(real)), SHA256: hexsum([]byte(real))},
	}
	if !slices.Equal(m.Attachments, want) || !slices.Equal(m.Anomalies, []string{string(decode.AnomalyEncodedMessageRFC822)}) {
		t.Errorf("encoded rfc822:\ngot  %+v %v\nwant %+v", m.Attachments, m.Anomalies, want)
	}

	b, _ := os.ReadFile(filepath.Join("testdata", "forward.eml"))
	i := bytes.Index(b, []byte("From: Original Sender"))
	j := bytes.Index(b, []byte("\r\n--fwd\r\nContent-Type: message/rfc822\r\n\r\n"))
	inner := b[i:j]
	m = parseFile(t, "forward.eml")
	want = []decode.Attachment{
		{Filename: "original.eml", ContentType: "message/rfc822", Size: int64(len(inner)), SHA256: hexsum(inner)},
		{Filename: "data.csv", ContentType: "text/csv", Size: 8, SHA256: hexsum([]byte("a,b\r\n1,2"))},
		{ContentType: "application/octet-stream", Size: 3, SHA256: hexsum([]byte{1, 2, 3})},
	}
	if !slices.Equal(m.Attachments, want) {
		t.Errorf("forward attachments:\ngot  %+v\nwant %+v", m.Attachments, want)
	}
	if m.Subject != "Fwd: Original reunion" || m.TextPreview != "Forwarding this." {
		t.Errorf("forward: subject %q preview %q", m.Subject, m.TextPreview)
	}
}

func TestBroken(t *testing.T) {
	for _, c := range []struct {
		file      string
		anomalies []string
		atts      []decode.Attachment
	}{
		{"missing-boundary.eml", []string{string(decode.AnomalyMissingFinalBoundary)}, []decode.Attachment{
			{Filename: "a.bin", ContentType: "application/octet-stream", Size: 3, SHA256: hexsum([]byte{0, 0, 0})},
			{Filename: "b.bin", ContentType: "application/octet-stream", Size: 3, SHA256: hexsum([]byte{1, 1, 1})},
		}},
		{"bad-base64.eml", []string{string(decode.AnomalyBadBase64), string(decode.AnomalyBadQuotedPrintable)}, []decode.Attachment{
			{Filename: "bad.bin", ContentType: "application/octet-stream", Size: 11, SHA256: hexsum([]byte("hello world"))},
			{Filename: "odd.bin", ContentType: "application/octet-stream", Size: 5, SHA256: hexsum([]byte("hello"))},
			{Filename: "qp.txt", ContentType: "text/plain", Size: 24, SHA256: hexsum([]byte("bad =ZZ escape = ok tail"))},
		}},
		{"forward.eml", []string{string(decode.AnomalyMissingFinalBoundary)}, nil},
		{"no-colon.eml", []string{string(decode.AnomalyMboxFromLine), string(decode.AnomalyHeaderWithoutColon)}, []decode.Attachment{
			{Filename: "kept.txt", ContentType: "text/plain", Size: 13, SHA256: hexsum([]byte("attached text"))},
		}},
	} {
		m := parseFile(t, c.file)
		if !slices.Equal(m.Anomalies, c.anomalies) {
			t.Errorf("%s: anomalies %v, want %v", c.file, m.Anomalies, c.anomalies)
		}
		if c.atts != nil && !slices.Equal(m.Attachments, c.atts) {
			t.Errorf("%s: attachments\ngot  %+v\nwant %+v", c.file, m.Attachments, c.atts)
		}
	}
	m := parseFile(t, "no-colon.eml")
	if m.Subject != "header without colon" || m.From != "a@example.com" {
		t.Errorf("no-colon: %+v", *m)
	}
	m = parseFile(t, "bad-address.eml")
	if m.From != `Unclosed <broken@example.com>` ||
		!slices.Equal(m.To, []string{"first@example.com", "second@example.com", "Name <third@example.com>", "fourth@example.com"}) ||
		!slices.Equal(m.Cc, []string{"Who <who@example.com>", "ok@example.com"}) {
		t.Errorf("bad addresses: from %q to %q cc %q", m.From, m.To, m.Cc)
	}
	if !slices.Equal(m.Anomalies, []string{string(decode.AnomalyBadAddressList), string(decode.AnomalyUnknownCharset)}) {
		t.Errorf("bad addresses: anomalies %v", m.Anomalies)
	}
}

// TestHeaderOnly: a message cut after its header (or a BODY[HEADER] fetch)
// still gets its header summary, and no anomaly for the body it lacks.
func TestHeaderOnly(t *testing.T) {
	b, _ := os.ReadFile(filepath.Join("testdata", "header-only.eml"))
	for _, in := range [][]byte{b, append(slices.Clone(b), "\r\n"...)} {
		p := New(Options{})
		p.Write(in)
		m := p.Finish(true)
		if m.From != "Trunc Ated <t@example.com>" || m.Subject != "截断" || !m.Truncated ||
			len(m.Anomalies) != 0 || len(m.Attachments) != 0 {
			t.Errorf("header only: %+v", *m)
		}
	}
	// cut in the middle of the header: the complete fields are kept
	p := New(Options{})
	p.Write(b[:bytes.Index(b, []byte("Subject"))+3])
	if m := p.Finish(true); m.From != "Trunc Ated <t@example.com>" || m.Subject != "" {
		t.Errorf("cut header: %+v", *m)
	}
}

type memWriter struct {
	bytes.Buffer
	closed bool
	fail   bool
}

func (w *memWriter) Write(b []byte) (int, error) {
	if w.fail {
		return 0, errors.New("disk full")
	}
	return w.Buffer.Write(b)
}

func (w *memWriter) Close() (string, error) {
	w.closed = true
	return "out/1.eml", nil
}

func TestWriter(t *testing.T) {
	b, _ := os.ReadFile(filepath.Join("testdata", "nested.eml"))
	w := &memWriter{}
	p := New(Options{Writer: w})
	for c := range slices.Chunk(b, 77) {
		p.Write(c)
	}
	m := p.Finish(false)
	if !bytes.Equal(w.Bytes(), b) || !w.closed || m.File != "out/1.eml" {
		t.Errorf("writer got %d bytes (want %d), closed %v, file %q", w.Len(), len(b), w.closed, m.File)
	}
	if m2 := p.Finish(false); m2 != m {
		t.Error("second Finish returned another summary")
	}
	w = &memWriter{fail: true}
	p = New(Options{Writer: w})
	p.Write(b)
	if m := p.Finish(false); !slices.Contains(m.Anomalies, string(decode.AnomalyExtractWriteFailed)) || len(m.Attachments) != 3 {
		t.Errorf("failing writer: %+v", m.Anomalies)
	}
}

func TestAttachmentWriters(t *testing.T) {
	b, _ := os.ReadFile(filepath.Join("testdata", "forward.eml"))
	var ws []*memWriter
	p := New(Options{Attachments: func(a decode.Attachment) decode.MessageWriter {
		if a.Filename == "data.csv" {
			return nil
		}
		w := &memWriter{}
		ws = append(ws, w)
		return w
	}})
	for c := range slices.Chunk(b, 5) {
		p.Write(c)
	}
	m := p.Finish(false)
	if len(ws) != 2 || len(m.Attachments) != 3 {
		t.Fatalf("%d writers for %+v", len(ws), m.Attachments)
	}
	for i, a := range []decode.Attachment{m.Attachments[0], m.Attachments[2]} {
		if !ws[i].closed || hexsum(ws[i].Bytes()) != a.SHA256 || a.File != "out/1.eml" {
			t.Errorf("attachment %q: closed %v, wrote %d bytes (size %d), file %q", a.Filename, ws[i].closed, ws[i].Len(), a.Size, a.File)
		}
	}
	if m.Attachments[1].File != "" {
		t.Errorf("skipped attachment has file %q", m.Attachments[1].File)
	}
}

func TestMaxParse(t *testing.T) {
	b, _ := os.ReadFile(filepath.Join("testdata", "nested.eml"))
	cut := bytes.Index(b, []byte("--outer\r\nContent-Type: application/pdf")) + 300
	p := New(Options{MaxParse: int64(cut)})
	p.Write(b)
	m := p.Finish(false)
	if m.Size != int64(len(b)) || m.SHA256 != hexsum(b) || m.Truncated {
		t.Errorf("size %d sha %s truncated %v", m.Size, m.SHA256, m.Truncated)
	}
	if m.Subject != "nested" || !slices.Equal(m.Anomalies, []string{string(decode.AnomalyMessageTooLargeForMIMEParse)}) {
		t.Errorf("subject %q anomalies %v", m.Subject, m.Anomalies)
	}
	if len(m.Attachments) != 2 || m.Attachments[0].SHA256 == "" || m.Attachments[1].Filename != "report.pdf" || m.Attachments[1].SHA256 != "" ||
		m.Attachments[0].Truncated || !m.Attachments[1].Truncated {
		t.Errorf("attachments %+v", m.Attachments)
	}
}

func TestLimits(t *testing.T) {
	// header block over the limit
	var b bytes.Buffer
	b.WriteString("Subject: big header\r\n")
	for b.Len() < maxHeader+1000 {
		b.WriteString("X-Filler: 0123456789012345678901234567890123456789\r\n")
	}
	b.WriteString("From: late@example.com\r\n\r\nbody\r\n")
	m := parseAll(b.Bytes(), Options{})
	if m.Subject != "big header" || m.From != "" || !slices.Equal(m.Anomalies, []string{string(decode.AnomalyHeaderTooLarge)}) || m.TextPreview != "body" {
		t.Errorf("big header: subject %q from %q anomalies %v preview %q", m.Subject, m.From, m.Anomalies, m.TextPreview)
	}

	// nesting deeper than MaxDepth
	b.Reset()
	b.WriteString("Subject: deep\r\nContent-Type: multipart/mixed; boundary=b00\r\n\r\n")
	for i := 1; i <= 40; i++ {
		b.WriteString("--b" + itoa(i-1) + "\r\nContent-Type: multipart/mixed; boundary=b" + itoa(i) + "\r\n\r\n")
	}
	b.WriteString("--b40\r\nContent-Type: application/octet-stream\r\n\r\nx\r\n")
	m = parseAll(b.Bytes(), Options{MaxDepth: 8})
	if !slices.Contains(m.Anomalies, string(decode.AnomalyMIMEDepthExceeded)) || len(m.Attachments) != 0 {
		t.Errorf("deep: %v %v", m.Anomalies, m.Attachments)
	}

	// a QP line far longer than maxLine, split at awkward places
	b.Reset()
	b.WriteString("Content-Type: multipart/mixed; boundary=L\r\n\r\n--L\r\nContent-Type: application/x-long\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	var want bytes.Buffer
	for i := range 30000 {
		b.WriteString("ab=3D ")
		want.WriteString("ab= ")
		if i%1000 == 999 {
			b.WriteString("   \t=\r\n")
			want.WriteString("   \t")
		}
	}
	b.WriteString("   \r\n--L--\r\n")
	wantAtt := decode.Attachment{ContentType: "application/x-long", Size: int64(want.Len()), SHA256: hexsum(want.Bytes())}
	for _, chunk := range []int{1, 2, 3, 7, 4095, 65536, 1 << 20} {
		m := parseChunks(b.Bytes(), func() int { return chunk })
		if len(m.Attachments) != 1 || m.Attachments[0] != wantAtt || len(m.Anomalies) != 0 {
			t.Fatalf("long QP line, chunk %d: %+v %v", chunk, m.Attachments, m.Anomalies)
		}
	}
}

func itoa(i int) string {
	return string(rune('0'+i/10)) + string(rune('0'+i%10))
}

// TestPathologicalHeaders: header shapes that would make a naive parser
// quadratic must stay fast (each is close to the 1 MiB header limit).
func TestPathologicalHeaders(t *testing.T) {
	const n = maxHeader - 4096
	for name, v := range map[string]string{
		"word starts":     strings.Repeat("=?", n/2),
		"bad words":       strings.Repeat("=?a?B?!?=", n/9),
		"far end":         strings.Repeat("=?xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", n/80) + "?=",
		"unended words":   strings.Repeat("=?utf-8?Q?abc ", n/14),
		"continuations":   strings.Repeat("a\r\n ", n/4),
		"address junk":    strings.Repeat("<a@b ,\"", n/7),
		"many addresses":  strings.Repeat("a@b, ", n/5),
		"parameter junk":  strings.Repeat(";a*0*=", n/6),
		"quoted nonsense": strings.Repeat(`"\`, n/2),
	} {
		start := time.Now()
		var b bytes.Buffer
		for _, h := range []string{"Subject", "To", "Content-Type"} {
			b.Reset()
			b.WriteString(h + ": " + v + "\r\n\r\n<p>body</p>\r\n")
			m := parseAll(b.Bytes(), Options{})
			checkUTF8(t, m)
		}
		// linear is ~0.1 s here; quadratic would be minutes. The bound is
		// loose so a loaded machine does not fail it.
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("%s: %v", name, d)
		}
	}
}

// TestLongLineChunking: lines longer than the line buffer, with long runs
// of trailing white space, CRs and escapes at piece edges, decode the same
// whatever the chunking.
func TestLongLineChunking(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("Content-Type: multipart/mixed; boundary=L\r\n\r\n")
	for _, cte := range []string{"quoted-printable", "7bit"} {
		b.WriteString("--L\r\nContent-Type: application/x-" + cte + "\r\nContent-Transfer-Encoding: " + cte + "\r\n\r\n")
		b.WriteString(strings.Repeat("x=41", 20000) + strings.Repeat(" ", maxQPHold+10) + "\r\n")
		b.WriteString(strings.Repeat("y", maxLine-1) + "\r\r\n")
		b.WriteString(strings.Repeat("z\t", maxLine) + "=\r\n")
		b.WriteString(strings.Repeat(" ", maxQPHold) + "=\r\n")
		b.WriteString(strings.Repeat("w", 3*maxLine) + "=4\r\n")
	}
	b.WriteString("--L--\r\n")
	want := summary(t, parseAll(b.Bytes(), Options{}))
	for _, chunk := range []int{1, 2, 3, 5, 4096, maxLine - 1, maxLine, maxLine + 1, 3 * maxLine} {
		if got := summary(t, parseChunks(b.Bytes(), func() int { return chunk })); !bytes.Equal(got, want) {
			t.Errorf("chunk %d:\n%s\nwant\n%s", chunk, got, want)
		}
	}
	raw := strings.Repeat("x=41", 20000) + strings.Repeat(" ", maxQPHold+10) + "\r\n" +
		strings.Repeat("y", maxLine-1) + "\r\r\n" +
		strings.Repeat("z\t", maxLine) + "=\r\n" +
		strings.Repeat(" ", maxQPHold) + "=\r\n" +
		strings.Repeat("w", 3*maxLine) + "=4"
	qp := strings.Repeat("xA", 20000) + strings.Repeat(" ", 10) + "\r\n" +
		strings.Repeat("y", maxLine-1) + "\r\r\n" +
		strings.Repeat("z\t", maxLine) +
		strings.Repeat(" ", maxQPHold) +
		strings.Repeat("w", 3*maxLine) + "=4"
	m := parseAll(b.Bytes(), Options{})
	wantAtt := []decode.Attachment{
		{ContentType: "application/x-quoted-printable", Size: int64(len(qp)), SHA256: hexsum([]byte(qp))},
		{ContentType: "application/x-7bit", Size: int64(len(raw)), SHA256: hexsum([]byte(raw))},
	}
	if !slices.Equal(m.Attachments, wantAtt) || !slices.Equal(m.Anomalies, []string{string(decode.AnomalyBadQuotedPrintable)}) {
		t.Errorf("attachments %+v anomalies %v", m.Attachments, m.Anomalies)
	}
}

// Folded encoded words, one glued to the text before it and two glued to
// each other, as in Arkime's smtp-subject-multi-nospace capture: the white
// space between adjacent encoded words is dropped (RFC 2047 §6.2), so the
// folds leave no double spaces (Arkime keeps them).
func TestSubjectFoldedEncodedWords(t *testing.T) {
	raw := "Subject: Note:=?UTF-8?Q?=20caf=C3=A9=20ch?=\r\n  =?UTF-8?Q?ez=20nous?=\r\n" +
		"  =?UTF-8?Q?=20today=20?==?UTF-8?Q?=2D=20ok?=\r\n\r\nbody\r\n"
	p := New(Options{})
	p.Write([]byte(raw))
	if got, want := p.Finish(false).Subject, "Note: café chez nous today - ok"; got != want {
		t.Errorf("subject %q, want %q", got, want)
	}
}
