package sink

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/textsafe"
)

// Extractor writes every message seen, raw as transferred (dot-unstuffed),
// to DIR/<session>-<n>.eml, every attachment's decoded content to
// DIR/attachments/<sha256 prefix>-<safe name> (".partial" appended when
// not all of its bytes were decoded), and at Close an index of
// them to DIR/index.json. It is a decode.MessageStore (the decoders stream
// bodies into it, from any number of workers) and a decode.Sink wrapper
// (it learns from the records which files belong to which message).
//
// Names from the wire are never trusted: no path separators, no "..", no
// control characters, bounded length, and a collision gets a numeric
// suffix. Nothing is written outside DIR.
type Extractor struct {
	dir  string
	next decode.Sink
	keep bool // keep .eml files (false: only for --mbox)

	mu    sync.Mutex
	tmpN  int // temporary attachment files created
	taken map[string]bool
	err   error

	// index.json is written as messages come, so its size costs no
	// memory: the opening, one entry per message, the closing at Close.
	index  *bufio.Writer
	indexF *os.File
	nindex int
	mbox   *bufio.Writer
	mboxF  io.Closer // nil when the mbox writer is not ours to close

	// Files this run wrote, and those a record named: at Close the
	// others (a message a decoder abandoned, its attachments) are
	// removed, so every file in DIR is in index.json.
	written map[string]bool
	named   map[string]bool
}

// IndexEntry is one message in index.json.
type IndexEntry struct {
	Session      uint64           `json:"session"`
	Proto        decode.Proto     `json:"proto"`
	Type         string           `json:"type"`
	TS           time.Time        `json:"ts"`
	Client       string           `json:"client"`
	Server       string           `json:"server"`
	File         string           `json:"file"`
	Size         int64            `json:"size"`
	SHA256       string           `json:"sha256"`
	MessageID    string           `json:"message_id,omitempty"`
	Subject      string           `json:"subject,omitempty"`
	From         string           `json:"from,omitempty"`
	MailFrom     string           `json:"mail_from,omitempty"`
	Truncated    bool             `json:"truncated,omitempty"`
	MissingBytes int64            `json:"missing_bytes,omitempty"`
	Attachments  []IndexAttachent `json:"attachments,omitempty"`
}

// IndexAttachent is one extracted attachment.
type IndexAttachent struct {
	File        string `json:"file"`
	Filename    string `json:"filename,omitempty"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256,omitempty"`
	Truncated   bool   `json:"truncated,omitempty"`
}

// NewExtractor prepares dir (created if needed) and passes records on to
// next. With keepEML false the .eml files are removed once copied to the
// mbox (extraction only for --mbox).
func NewExtractor(dir string, next decode.Sink, keepEML bool) (*Extractor, error) {
	if err := os.MkdirAll(filepath.Join(dir, "attachments"), 0o755); err != nil {
		return nil, err
	}
	x := &Extractor{dir: dir, next: next, keep: keepEML, taken: map[string]bool{}, written: map[string]bool{}, named: map[string]bool{}}
	if keepEML {
		f, err := os.Create(filepath.Join(dir, "index.json"))
		if err != nil {
			return nil, err
		}
		x.indexF, x.index = f, bufio.NewWriter(f)
		fmt.Fprintf(x.index, "{\n  \"v\": %d,\n  \"messages\": [", decode.SchemaVersion)
	}
	return x, nil
}

// SetMbox appends every message to path in mboxrd format.
func (x *Extractor) SetMbox(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	x.mboxF, x.mbox = f, bufio.NewWriterSize(f, 64<<10)
	return nil
}

// SetMboxWriter appends every message to w (standard output for
// "--mbox -") in mboxrd format; Close flushes but does not close it.
func (x *Extractor) SetMboxWriter(w io.Writer) {
	x.mboxF, x.mbox = nil, bufio.NewWriterSize(w, 64<<10)
}

// wrote notes a file this run created.
func (x *Extractor) wrote(path string) {
	x.mu.Lock()
	x.written[path] = true
	x.mu.Unlock()
}

// claim reserves a unique path for name inside sub (relative to dir).
func (x *Extractor) claim(sub, name string) string {
	x.mu.Lock()
	defer x.mu.Unlock()
	base, ext := name, ""
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		base, ext = name[:i], name[i:]
	}
	for n := 1; ; n++ {
		cand := name
		if n > 1 {
			cand = base + "-" + strconv.Itoa(n) + ext
		}
		rel := filepath.Join(sub, cand)
		if !x.taken[rel] {
			if _, err := os.Lstat(filepath.Join(x.dir, rel)); errors.Is(err, os.ErrNotExist) {
				x.taken[rel] = true
				return rel
			}
		}
	}
}

func (x *Extractor) fail(err error) {
	x.mu.Lock()
	if x.err == nil {
		x.err = err
	}
	x.mu.Unlock()
}

// Create implements decode.MessageStore.
func (x *Extractor) Create(c decode.ConnInfo, proto decode.Proto, n int) decode.MessageWriter {
	rel := x.claim("", fmt.Sprintf("%d-%d.eml", c.ID, n))
	f, err := os.OpenFile(filepath.Join(x.dir, rel), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		x.fail(err)
		return &fileWriter{x: x}
	}
	x.wrote(filepath.Join(x.dir, rel))
	fw := &fileWriter{x: x, f: f, w: bufio.NewWriterSize(f, 32<<10), rel: rel}
	if !x.keep {
		return emlOnly{fw} // mbox only: no attachments
	}
	return fw
}

// emlOnly hides fileWriter's Attachment method.
type emlOnly struct{ w *fileWriter }

func (e emlOnly) Write(p []byte) (int, error) { return e.w.Write(p) }
func (e emlOnly) Close() (string, error)      { return e.w.Close() }

// fileWriter is one message file; it also hands out attachment writers.
type fileWriter struct {
	x   *Extractor
	f   *os.File
	w   *bufio.Writer
	rel string
}

func (w *fileWriter) Write(p []byte) (int, error) {
	if w.w == nil {
		return len(p), nil
	}
	if _, err := w.w.Write(p); err != nil {
		w.x.fail(err)
		w.w = nil
	}
	return len(p), nil
}

func (w *fileWriter) Close() (string, error) {
	if w.f == nil {
		return "", nil
	}
	var err error
	if w.w != nil {
		err = w.w.Flush()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.f = nil
	if err != nil {
		w.x.fail(err)
		return "", err
	}
	return filepath.Join(w.x.dir, w.rel), nil
}

// Attachment implements decode.AttachmentStore.
func (w *fileWriter) Attachment(a decode.Attachment) decode.MessageWriter {
	f, err := w.x.createTemp()
	if err != nil {
		w.x.fail(err)
		return &attWriter{}
	}
	return &attWriter{x: w.x, f: f, w: bufio.NewWriterSize(f, 32<<10), h: sha256.New(), name: SafeName(a.Filename, a.ContentType)}
}

// createTemp creates a temporary attachment file with the same mode as
// the .eml files (0644 before the umask; os.CreateTemp would give 0600).
func (x *Extractor) createTemp() (*os.File, error) {
	for {
		x.mu.Lock()
		x.tmpN++
		name := fmt.Sprintf(".part-%d-%d", os.Getpid(), x.tmpN)
		x.mu.Unlock()
		f, err := os.OpenFile(filepath.Join(x.dir, "attachments", name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if errors.Is(err, os.ErrExist) {
			continue // left by an earlier run
		}
		return f, err
	}
}

// attWriter writes an attachment to a temporary file and renames it to
// its content-addressed name when done.
type attWriter struct {
	x       *Extractor
	f       *os.File
	w       *bufio.Writer
	h       hash.Hash
	name    string
	partial bool
}

// Partial implements decode.PartialWriter: the file is named
// <hash prefix>-<name>.partial, the hash being that of the bytes kept.
func (w *attWriter) Partial() { w.partial = true }

func (w *attWriter) Write(p []byte) (int, error) {
	if w.f == nil {
		return len(p), nil
	}
	w.h.Write(p)
	if _, err := w.w.Write(p); err != nil {
		w.x.fail(err)
		w.abort()
	}
	return len(p), nil
}

func (w *attWriter) abort() {
	if w.f != nil {
		w.f.Close()
		os.Remove(w.f.Name())
		w.f = nil
	}
}

func (w *attWriter) Close() (string, error) {
	if w.f == nil {
		return "", nil
	}
	tmp := w.f.Name()
	err := w.w.Flush()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.f = nil
	if err != nil {
		os.Remove(tmp)
		w.x.fail(err)
		return "", err
	}
	sum := hex.EncodeToString(w.h.Sum(nil))
	name := sum[:16] + "-" + w.name
	if w.partial {
		name += ".partial"
	}
	final := filepath.Join(w.x.dir, "attachments", name)
	w.x.mu.Lock()
	_, statErr := os.Lstat(final)
	w.x.mu.Unlock()
	if statErr == nil {
		// Same content under the same name: already there.
		os.Remove(tmp)
		return final, nil
	}
	rel := w.x.claim("attachments", name)
	final = filepath.Join(w.x.dir, rel)
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		w.x.fail(err)
		return "", err
	}
	w.x.wrote(final)
	return final, nil
}

// maxName bounds a file name from the wire, in bytes.
const maxName = 100

// SafeName turns a file name from the wire into one component that is
// safe on any file system: the last path element only, no control or
// reserved characters, no leading dots, at most maxName bytes (cut on a
// rune boundary, extension kept). An empty result becomes "attachment"
// with an extension guessed from the content type.
func SafeName(name, contentType string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	var b strings.Builder
	for _, r := range name {
		switch {
		case r == utf8.RuneError, textsafe.Unsafe(r), strings.ContainsRune(`<>:"|?*`, r):
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
	}
	name = strings.TrimLeft(strings.TrimSpace(b.String()), ".")
	name = strings.TrimRight(name, ". ")
	if name == "" {
		name = "attachment"
		if _, sub, ok := strings.Cut(strings.ToLower(contentType), "/"); ok {
			if sub, _, _ = strings.Cut(sub, ";"); sub != "" {
				name += "." + SafeName(sub, "")
			}
		}
	}
	if len(name) > maxName {
		ext := ""
		if i := strings.LastIndexByte(name, '.'); i > 0 && len(name)-i <= 16 {
			ext = name[i:]
		}
		cut := maxName - len(ext)
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		name = name[:cut] + ext
	}
	return name
}

// Emit implements decode.Sink: it indexes messages, appends them to the
// mbox, then passes the record on.
func (x *Extractor) Emit(r decode.Record) {
	var m *decode.Message
	mailFrom := ""
	switch r := r.(type) {
	case *decode.SMTPMail:
		m, mailFrom = r.Message, r.MailFrom
	case *decode.POP3Message:
		m = r.Message
	case *decode.IMAPMessage:
		m = r.Message
	}
	if m != nil && m.File != "" {
		x.record(r.Head(), m, mailFrom)
	}
	if x.next != nil {
		x.next.Emit(r)
	}
}

func (x *Extractor) record(h *decode.Header, m *decode.Message, mailFrom string) {
	x.mu.Lock()
	x.named[m.File] = true
	for _, a := range m.Attachments {
		x.named[a.File] = true
	}
	x.mu.Unlock()
	rel, _ := filepath.Rel(x.dir, m.File)
	e := IndexEntry{
		Session: h.Session, Proto: h.Proto, Type: h.Type, TS: h.TS, Client: h.Client, Server: h.Server,
		File: rel, Size: m.Size, SHA256: m.SHA256, MessageID: m.MessageID, Subject: m.Subject, From: m.From, MailFrom: mailFrom,
		Truncated: m.Truncated, MissingBytes: m.MissingBytes,
	}
	for _, a := range m.Attachments {
		if a.File == "" {
			continue
		}
		arel, _ := filepath.Rel(x.dir, a.File)
		e.Attachments = append(e.Attachments, IndexAttachent{File: arel, Filename: a.Filename, ContentType: a.ContentType, Size: a.Size, SHA256: a.SHA256, Truncated: a.Truncated})
	}
	if x.mbox != nil {
		if err := x.appendMbox(m.File, mailFrom, h.TS); err != nil {
			x.fail(err)
		}
	}
	if x.keep {
		x.indexEntry(e)
	} else {
		os.Remove(m.File)
	}
}

// indexEntry appends one message to index.json.
func (x *Extractor) indexEntry(e IndexEntry) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("    ", "  ")
	if err := enc.Encode(e); err != nil {
		x.fail(err)
		return
	}
	if x.nindex > 0 {
		x.index.WriteString(",")
	}
	x.index.WriteString("\n    ")
	x.index.Write(textsafe.AppendJSON(nil, bytes.TrimRight(b.Bytes(), "\n")))
	x.nindex++
}

// appendMbox copies one message in mboxrd format: a "From " separator
// line, line ends as LF, and every line matching ^>*From  quoted with one
// more ">".
func (x *Extractor) appendMbox(path, sender string, ts time.Time) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if sender == "" {
		sender = "MAILER-DAEMON"
	}
	fmt.Fprintf(x.mbox, "From %s %s\n", strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return '_'
		}
		return r
	}, sender), ts.UTC().Format("Mon Jan _2 15:04:05 2006"))
	br := bufio.NewReaderSize(f, 64<<10)
	last := byte('\n')
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if bytes.HasPrefix(bytes.TrimLeft(line, ">"), []byte("From ")) && last == '\n' {
				x.mbox.WriteByte('>')
			}
			out := line
			if bytes.HasSuffix(out, []byte("\r\n")) {
				out = append(out[:len(out)-2:len(out)-2], '\n')
			}
			x.mbox.Write(out)
			last = line[len(line)-1]
		}
		if err == bufio.ErrBufferFull {
			// A very long line: the rest is not at a line start.
			last = 0
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if last != '\n' {
		x.mbox.WriteByte('\n')
	}
	_, err = x.mbox.WriteString("\n")
	return err
}

// Close writes index.json and finishes the mbox. It reports the first
// error met while extracting.
func (x *Extractor) Close() error {
	if x.mbox != nil {
		if err := x.mbox.Flush(); err != nil {
			x.fail(err)
		}
		if x.mboxF != nil {
			if err := x.mboxF.Close(); err != nil {
				x.fail(err)
			}
		}
	}
	if x.keep {
		for path := range x.written {
			if !x.named[path] {
				os.Remove(path) // abandoned: no record names it
			}
		}
	}
	if x.index != nil {
		if x.nindex > 0 {
			x.index.WriteString("\n  ")
		}
		x.index.WriteString("]\n}\n")
		if err := x.index.Flush(); err != nil {
			x.fail(err)
		}
		if err := x.indexF.Close(); err != nil {
			x.fail(err)
		}
		x.index = nil
	}
	return x.err
}
