package sink

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
//
// Files are cheap to create only if few system calls go to each: a
// message's first chunkSize bytes wait in memory, so that a small message
// is one open (O_EXCL, which also settles a name collision), one write and
// one close; an attachment is held in memory (up to attBudget bytes for
// all of them at once) until its hash names it, so that it is written
// once under its final name, and not at all when a file of that name was
// already written: the same attachment retrieved again (SMTP, then POP3 or
// IMAP) costs no system call. Only a larger one goes through a temporary
// file. The hash is the one the decoder computed for the record (see
// attWriter), so an attachment's bytes are hashed once.
type Extractor struct {
	dir    string
	prefix string // dir cleaned, with a trailing separator: prefix+rel is filepath.Join(dir, rel)
	next   decode.Sink
	keep   bool // keep .eml files (false: only for --mbox)

	mu  sync.Mutex
	err error
	// The names (relative to dir) this run claimed, and whether it
	// wrote the file and a record named it: at Close the files written
	// and not named (a message a decoder abandoned, its attachments) are
	// removed, so every file in DIR is in index.json.
	files map[string]fileState
	// Whole attachments waiting for their record (see attWriter), by
	// the provisional path their Close returned.
	pending map[string]*attContent
	pendQ   []string // pending's keys, oldest first (some resolved already)
	pendN   int
	pid     int

	tmpN atomic.Int64 // temporary attachment files created

	// mbox only (no --extract): messages that fit in one chunk wait here
	// for their record, by the path their Close returned, instead of
	// going through a file written, read back and deleted (at most
	// mboxMemMax of them; the others do).
	mboxMem map[string][]byte

	attChunks atomic.Int64 // chunks held by attachment writers and pending
	attMax    int64        // at most this many (attBudget)

	// index.json is written as messages come, so its size costs no
	// memory: the opening, one entry per message, the closing at Close.
	index  *bufio.Writer
	indexF *os.File
	nindex int
	ibuf   bytes.Buffer // one entry, as encoding/json wrote it
	ienc   *json.Encoder
	iout   []byte // the entry made safe for a terminal
	mbox   *bufio.Writer
	mboxF  io.Closer     // nil when the mbox writer is not ours to close
	mboxR  *bufio.Reader // reads the messages appended from files
}

// fileState says what became of a name claimed.
type fileState uint8

const (
	fileWritten fileState = 1 << iota // this run created the file
	fileNamed                         // a record names it
)

// chunkSize is the unit of the memory message and attachment bytes wait
// in before they are written.
const chunkSize = 32 << 10

// mboxMemMax bounds the messages held in memory for an mbox-only run
// (mboxMemMax*chunkSize bytes).
const mboxMemMax = 256

// attBudget bounds the attachment bytes held in memory at once by all the
// writers of an Extractor; an attachment that finds it spent goes to a
// temporary file.
const attBudget = 16 << 20

var chunkPool = sync.Pool{New: func() any { return new([chunkSize]byte) }}

func getChunk() []byte { return chunkPool.Get().(*[chunkSize]byte)[:0] }

func putChunk(b []byte) { chunkPool.Put((*[chunkSize]byte)(b[:chunkSize])) }

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
	prefix := filepath.Clean(dir)
	if !strings.HasSuffix(prefix, string(filepath.Separator)) {
		prefix += string(filepath.Separator)
	}
	x := &Extractor{dir: dir, prefix: prefix, next: next, keep: keepEML, pid: os.Getpid(), attMax: attBudget / chunkSize, pending: map[string]*attContent{}, files: map[string]fileState{}, mboxMem: map[string][]byte{}}
	if keepEML {
		f, err := os.Create(filepath.Join(dir, "index.json"))
		if err != nil {
			return nil, err
		}
		x.indexF, x.index = f, bufio.NewWriterSize(f, 64<<10)
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

// path is filepath.Join(x.dir, rel) for a clean rel.
func (x *Extractor) path(rel string) string { return x.prefix + rel }

// wrote notes a file this run created.
func (x *Extractor) wrote(rel string) {
	x.mu.Lock()
	x.files[rel] |= fileWritten
	x.mu.Unlock()
}

// claim reserves a unique path for name inside sub (relative to dir):
// name, or name-2, name-3, ... (before the extension) when taken. It
// knows only the names this run claimed: open the file with O_EXCL and
// claim again when one of the same name was already there.
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
		rel := cand
		if sub != "" {
			rel = sub + string(filepath.Separator) + cand
		}
		if _, taken := x.files[rel]; !taken {
			x.files[rel] = 0
			return rel
		}
	}
}

// create creates the file claimed as *rel (name in sub) exclusively; when
// a file of that name is there already (not from this run), it claims the
// next name and tries again, setting *rel.
func (x *Extractor) create(sub, name string, rel *string) (*os.File, error) {
	for {
		path := x.path(*rel)
		f, err := createExcl(path)
		if errors.Is(err, fs.ErrExist) {
			*rel = x.claim(sub, name)
			continue
		}
		if err == nil {
			x.wrote(*rel)
		}
		return f, err
	}
}

func (x *Extractor) fail(err error) {
	x.mu.Lock()
	if x.err == nil {
		x.err = err
	}
	x.mu.Unlock()
}

// Create implements decode.MessageStore. The name is claimed now; the
// file is created when its first chunk is full, or at Close.
func (x *Extractor) Create(c decode.ConnInfo, proto decode.Proto, n int) decode.MessageWriter {
	name := strconv.FormatUint(c.ID, 10) + "-" + strconv.Itoa(n) + ".eml"
	fw := &fileWriter{x: x, name: name, rel: x.claim("", name), buf: getChunk()}
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
	x      *Extractor
	name   string // <session>-<n>.eml
	rel    string // the name claimed
	buf    []byte // bytes not written yet (a pooled chunk); nil once closed
	f      *os.File
	failed bool // a write failed: the rest is dropped
}

func (w *fileWriter) Write(p []byte) (int, error) {
	if w.buf == nil || w.failed {
		return len(p), nil
	}
	if len(w.buf)+len(p) <= cap(w.buf) {
		w.buf = append(w.buf, p...)
		return len(p), nil
	}
	if err := w.spill(p); err != nil {
		w.x.fail(err)
		w.failed = true
	}
	return len(p), nil
}

// spill writes the chunk and p: the chunk is full.
func (w *fileWriter) spill(p []byte) error {
	if w.f == nil {
		f, err := w.x.create("", w.name, &w.rel)
		if err != nil {
			return err
		}
		w.f = f
	}
	if _, err := w.f.Write(w.buf); err != nil {
		return err
	}
	w.buf = w.buf[:0]
	if len(p) >= cap(w.buf) {
		_, err := w.f.Write(p)
		return err
	}
	w.buf = append(w.buf, p...)
	return nil
}

func (w *fileWriter) Close() (string, error) {
	if w.buf == nil {
		return "", nil
	}
	buf := w.buf
	w.buf = nil
	if w.f == nil && !w.failed && !w.x.keep && w.x.holdForMbox(w.rel, buf) {
		return w.x.path(w.rel), nil
	}
	defer putChunk(buf)
	if w.f == nil {
		if w.failed {
			return "", nil
		}
		f, err := w.x.create("", w.name, &w.rel)
		if err != nil {
			w.x.fail(err)
			return "", nil
		}
		w.f = f
	}
	var err error
	if !w.failed && len(buf) > 0 {
		_, err = w.f.Write(buf)
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.f = nil
	if err != nil {
		w.x.fail(err)
		return "", err
	}
	return w.x.path(w.rel), nil
}

// Attachment implements decode.AttachmentStore.
func (w *fileWriter) Attachment(a decode.Attachment) decode.MessageWriter {
	x := w.x
	aw := &attWriter{x: x, c: &attContent{name: SafeName(a.Filename, a.ContentType)}}
	// A writer the decoder drops without Close gives its memory (and
	// its share of the budget) back when it is collected.
	aw.cleanup = runtime.AddCleanup(aw, func(c *attContent) { c.drop(x) }, aw.c)
	return aw
}

// createTemp creates a temporary attachment file with the same mode as
// the .eml files (0644 before the umask; os.CreateTemp would give 0600).
func (x *Extractor) createTemp() (*os.File, error) {
	for {
		name := ".part-" + strconv.Itoa(x.pid) + "-" + strconv.FormatInt(x.tmpN.Add(1), 10)
		f, err := createExcl(filepath.Join(x.dir, "attachments", name))
		if errors.Is(err, os.ErrExist) {
			continue // left by an earlier run
		}
		return f, err
	}
}

// attContent is an attachment's bytes: in pooled chunks while they fit
// the Extractor's budget, else in a temporary file.
type attContent struct {
	name   string // safe name
	chunks [][]byte
	tmp    string // the temporary file, once spilled
}

// release gives the chunks back.
func (c *attContent) release(x *Extractor) {
	for _, b := range c.chunks {
		putChunk(b)
	}
	x.attChunks.Add(-int64(len(c.chunks)))
	c.chunks = nil
}

// drop gives the chunks back and removes the temporary file.
func (c *attContent) drop(x *Extractor) {
	c.release(x)
	if c.tmp != "" {
		os.Remove(c.tmp)
		c.tmp = ""
	}
}

// sum is the SHA-256 of the content, in hex.
func (c *attContent) sum() (string, error) {
	h := sha256.New()
	if c.tmp != "" {
		f, err := os.Open(c.tmp)
		if err != nil {
			return "", err
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", err
		}
	}
	for _, b := range c.chunks {
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// attWriter collects one attachment. Its file is named after the SHA-256
// of its content, which the decoder computes for the record: so that the
// bytes are not hashed twice, Close of a whole attachment returns a
// provisional path and leaves the content pending; Emit, given the
// record, names the file after the record's sha256, writes it and sets
// the path before passing the record on. A partial attachment has no
// hash in its record: it is hashed and written at Close.
type attWriter struct {
	x       *Extractor
	c       *attContent
	f       *os.File // the temporary file, once spilled
	w       *bufio.Writer
	partial bool
	done    bool // closed, or a write failed
	cleanup runtime.Cleanup
}

// Partial implements decode.PartialWriter: the file is named
// <hash prefix>-<name>.partial, the hash being that of the bytes kept.
func (w *attWriter) Partial() { w.partial = true }

func (w *attWriter) Write(p []byte) (int, error) {
	n := len(p)
	if w.done {
		return n, nil
	}
	if w.f != nil {
		if _, err := w.w.Write(p); err != nil {
			w.abort(err)
		}
		return n, nil
	}
	for len(p) > 0 {
		last := len(w.c.chunks) - 1
		if last < 0 || len(w.c.chunks[last]) == chunkSize {
			if w.x.attChunks.Add(1) > w.x.attMax {
				w.x.attChunks.Add(-1)
				if w.x.evict() {
					continue // an attachment waiting for its record gave memory back
				}
				if err := w.spill(p); err != nil {
					w.abort(err)
				}
				return n, nil
			}
			w.c.chunks = append(w.c.chunks, getChunk())
			last++
		}
		b := w.c.chunks[last]
		k := min(len(p), chunkSize-len(b))
		w.c.chunks[last] = append(b, p[:k]...)
		p = p[k:]
	}
	return n, nil
}

// spill moves the content to a temporary file and writes p there.
func (w *attWriter) spill(p []byte) error {
	f, err := w.x.createTemp()
	if err != nil {
		return err
	}
	w.f, w.w, w.c.tmp = f, bufio.NewWriterSize(f, chunkSize), f.Name()
	for _, b := range w.c.chunks {
		if _, err := w.w.Write(b); err != nil {
			return err
		}
	}
	w.c.release(w.x)
	_, err = w.w.Write(p)
	return err
}

// abort drops the attachment after a failure.
func (w *attWriter) abort(err error) {
	w.x.fail(err)
	w.done = true
	w.cleanup.Stop()
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	w.c.drop(w.x)
}

func (w *attWriter) Close() (string, error) {
	if w.done {
		return "", nil
	}
	w.done = true
	w.cleanup.Stop()
	if w.f != nil {
		err := w.w.Flush()
		if cerr := w.f.Close(); err == nil {
			err = cerr
		}
		w.f = nil
		if err != nil {
			w.c.drop(w.x)
			w.x.fail(err)
			return "", err
		}
	}
	if !w.partial {
		return w.x.pend(w.c), nil
	}
	sum, err := w.c.sum()
	if err != nil {
		w.c.drop(w.x)
		w.x.fail(err)
		return "", err
	}
	return w.x.place(w.c, sum[:16]+"-"+w.c.name+".partial")
}

// pend keeps a whole attachment's content until Emit names it; the
// provisional path it returns is the key.
func (x *Extractor) pend(c *attContent) string {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.pendN++
	p := x.path("attachments" + string(filepath.Separator) + ".pending-" + strconv.Itoa(x.pendN))
	x.pending[p] = c
	if len(x.pendQ) > 2*len(x.pending)+64 {
		q := x.pendQ[:0]
		for _, k := range x.pendQ {
			if x.pending[k] != nil {
				q = append(q, k)
			}
		}
		clear(x.pendQ[len(q):])
		x.pendQ = q
	}
	x.pendQ = append(x.pendQ, p)
	return p
}

// evict moves the oldest pending attachment held in memory to a
// temporary file, so that attachments whose record never comes (a
// decoder dropped it) do not keep the budget. It reports whether memory
// was given back.
func (x *Extractor) evict() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	for len(x.pendQ) > 0 {
		k := x.pendQ[0]
		x.pendQ[0] = ""
		x.pendQ = x.pendQ[1:]
		c := x.pending[k]
		if c == nil || len(c.chunks) == 0 {
			continue
		}
		f, err := x.createTemp()
		if err != nil {
			x.pendQ = append([]string{k}, x.pendQ...)
			return false
		}
		if err := writeChunks(f, c.chunks); err != nil {
			os.Remove(f.Name())
			x.pendQ = append([]string{k}, x.pendQ...)
			return false
		}
		c.tmp = f.Name()
		c.release(x)
		return true
	}
	return false
}

// place writes c to DIR/attachments/name, unless this run wrote that
// name already, or a file of that name was there before it (the name
// says the content is the same); it gives c's memory back.
func (x *Extractor) place(c *attContent, name string) (string, error) {
	defer c.drop(x)
	rel := "attachments" + string(filepath.Separator) + name
	final := x.path(rel)
	x.mu.Lock()
	_, there := x.files[rel]
	if !there {
		x.files[rel] = 0
	}
	x.mu.Unlock()
	if there {
		return final, nil
	}
	if c.tmp != "" {
		if _, err := os.Lstat(final); err == nil {
			return final, nil
		}
		if err := os.Rename(c.tmp, final); err != nil {
			x.fail(err)
			return "", err
		}
		c.tmp = ""
		x.wrote(rel)
		return final, nil
	}
	f, err := createExcl(final)
	if errors.Is(err, fs.ErrExist) {
		return final, nil
	}
	if err != nil {
		x.fail(err)
		return "", err
	}
	x.wrote(rel)
	if err := writeChunks(f, c.chunks); err != nil {
		x.fail(err)
		return "", err
	}
	return final, nil
}

// writeChunks writes chunks to f and closes it, returning the first error.
func writeChunks(f *os.File, chunks [][]byte) error {
	var err error
	for _, b := range chunks {
		if _, err = f.Write(b); err != nil {
			break
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// resolve writes the pending attachments of m, named after the sha256 of
// the record, and sets their paths.
func (x *Extractor) resolve(m *decode.Message) {
	for i := range m.Attachments {
		a := &m.Attachments[i]
		x.mu.Lock()
		c, ok := x.pending[a.File]
		delete(x.pending, a.File)
		x.mu.Unlock()
		if !ok {
			continue
		}
		sum := a.SHA256
		if !isSHA256Hex(sum) {
			// Not the decoder's: hash the content here.
			var err error
			if sum, err = c.sum(); err != nil {
				c.drop(x)
				x.fail(err)
				a.File = ""
				continue
			}
		}
		f, err := x.place(c, sum[:16]+"-"+c.name)
		if err != nil && !slices.Contains(m.Anomalies, string(decode.AnomalyExtractCloseFailed)) {
			m.Anomalies = append(m.Anomalies, string(decode.AnomalyExtractCloseFailed))
		}
		a.File = f
	}
}

func isSHA256Hex(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
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
	if m != nil && len(m.Attachments) > 0 {
		x.resolve(m)
	}
	if m != nil && m.File != "" {
		x.record(r.Head(), m, mailFrom)
	}
	if x.next != nil {
		x.next.Emit(r)
	}
}

func (x *Extractor) record(h *decode.Header, m *decode.Message, mailFrom string) {
	rel := x.rel(m.File)
	x.mu.Lock()
	x.name(rel)
	for _, a := range m.Attachments {
		if a.File != "" {
			x.name(x.rel(a.File))
		}
	}
	x.mu.Unlock()
	e := IndexEntry{
		Session: h.Session, Proto: h.Proto, Type: h.Type, TS: h.TS, Client: h.Client, Server: h.Server,
		File: rel, Size: m.Size, SHA256: m.SHA256, MessageID: m.MessageID, Subject: m.Subject, From: m.From, MailFrom: mailFrom,
		Truncated: m.Truncated, MissingBytes: m.MissingBytes,
	}
	for _, a := range m.Attachments {
		if a.File == "" {
			continue
		}
		e.Attachments = append(e.Attachments, IndexAttachent{File: x.rel(a.File), Filename: a.Filename, ContentType: a.ContentType, Size: a.Size, SHA256: a.SHA256, Truncated: a.Truncated})
	}
	if x.keep {
		if x.mbox != nil {
			if err := x.appendMboxFile(m.File, mailFrom, h.TS); err != nil {
				x.fail(err)
			}
		}
		x.indexEntry(e)
		return
	}
	// mbox only: the message is in memory or in a temporary file, which
	// the record does not name (its file field is for --extract).
	x.mu.Lock()
	b, inMem := x.mboxMem[m.File]
	delete(x.mboxMem, m.File)
	x.mu.Unlock()
	var err error
	if inMem {
		err = x.appendMboxBytes(b, mailFrom, h.TS)
		putChunk(b)
	} else {
		err = x.appendMboxFile(m.File, mailFrom, h.TS)
		os.Remove(m.File)
	}
	if err != nil {
		x.fail(err)
	}
	m.File = ""
}

// holdForMbox keeps b, a whole message, in memory under rel's path until
// its record comes, when there is room (mbox only).
func (x *Extractor) holdForMbox(rel string, b []byte) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.mbox == nil || len(x.mboxMem) >= mboxMemMax {
		return false
	}
	x.mboxMem[x.path(rel)] = b
	return true
}

// name notes that a record names rel; x.mu is held.
func (x *Extractor) name(rel string) {
	if st, ok := x.files[rel]; ok {
		x.files[rel] = st | fileNamed
	}
}

// rel is path relative to the directory (filepath.Rel, cheaper for the
// paths this Extractor made).
func (x *Extractor) rel(path string) string {
	if r, ok := strings.CutPrefix(path, x.prefix); ok {
		return r
	}
	r, _ := filepath.Rel(x.dir, path)
	return r
}

// indexEntry appends one message to index.json.
func (x *Extractor) indexEntry(e IndexEntry) {
	b, ok := appendIndexEntry(x.iout[:0], &e)
	if ok {
		x.iout = b
	} else {
		b, ok = x.indexEntryJSON(&e)
		if !ok {
			return
		}
	}
	if x.nindex > 0 {
		x.index.WriteString(",")
	}
	x.index.WriteString("\n    ")
	x.index.Write(b)
	x.nindex++
}

// indexEntryJSON is e as encoding/json writes it, made safe for a
// terminal: the reference appendIndexEntry follows, and the way an entry
// it cannot write is refused (ok false: x failed).
func (x *Extractor) indexEntryJSON(e *IndexEntry) (b []byte, ok bool) {
	if x.ienc == nil {
		x.ienc = json.NewEncoder(&x.ibuf)
		x.ienc.SetEscapeHTML(false)
		x.ienc.SetIndent("    ", "  ")
	}
	x.ibuf.Reset()
	if err := x.ienc.Encode(e); err != nil {
		x.fail(err)
		return nil, false
	}
	b = bytes.TrimRight(x.ibuf.Bytes(), "\n")
	if !plainASCII(b) {
		x.iout = textsafe.AppendJSON(x.iout[:0], b)
		b = x.iout
	}
	return b, true
}

// plainASCII reports whether b has no byte textsafe.AppendJSON would
// change (it passes ASCII but DEL through as it is).
func plainASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x7f {
			return false
		}
	}
	return true
}

// appendMboxFile copies the message in the file at path to the mbox in
// mboxrd format: a "From " separator line, line ends as LF, and every line
// matching ^>*From  quoted with one more ">".
func (x *Extractor) appendMboxFile(path, sender string, ts time.Time) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	x.mboxFrom(sender, ts)
	// One reader for all the messages (records come to Emit one at a
	// time, as the mbox writer relies on): 64 KiB for each was most of
	// what --mbox allocated.
	if x.mboxR == nil {
		x.mboxR = bufio.NewReaderSize(f, 64<<10)
	} else {
		x.mboxR.Reset(f)
	}
	defer x.mboxR.Reset(nil)
	last := byte('\n')
	for {
		line, err := x.mboxR.ReadSlice('\n')
		last = x.mboxLine(line, last)
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
	return x.mboxEnd(last)
}

// appendMboxBytes copies the message b (see appendMboxFile).
func (x *Extractor) appendMboxBytes(b []byte, sender string, ts time.Time) error {
	x.mboxFrom(sender, ts)
	last := byte('\n')
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line = b[:i+1]
		}
		b = b[len(line):]
		last = x.mboxLine(line, last)
	}
	return x.mboxEnd(last)
}

// mboxFrom writes the separator line of a message from sender.
func (x *Extractor) mboxFrom(sender string, ts time.Time) {
	if sender == "" {
		sender = "MAILER-DAEMON"
	}
	fmt.Fprintf(x.mbox, "From %s %s\n", strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return '_'
		}
		return r
	}, sender), ts.UTC().Format("Mon Jan _2 15:04:05 2006"))
}

// mboxLine writes one line of a message (or a piece of a long one, when
// last, the byte before it, is not a line end), quoted and with its CRLF
// as LF, and returns its last byte.
func (x *Extractor) mboxLine(line []byte, last byte) byte {
	if len(line) == 0 {
		return last
	}
	if last == '\n' && bytes.HasPrefix(bytes.TrimLeft(line, ">"), []byte("From ")) {
		x.mbox.WriteByte('>')
	}
	if bytes.HasSuffix(line, []byte("\r\n")) {
		x.mbox.Write(line[:len(line)-2])
		x.mbox.WriteByte('\n')
	} else {
		x.mbox.Write(line)
	}
	return line[len(line)-1]
}

// mboxEnd ends a message whose last byte was last.
func (x *Extractor) mboxEnd(last byte) error {
	if last != '\n' {
		x.mbox.WriteByte('\n')
	}
	_, err := x.mbox.WriteString("\n")
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
	x.mu.Lock()
	pending := x.pending
	x.pending = map[string]*attContent{}
	x.mu.Unlock()
	for _, c := range pending {
		c.drop(x) // its record never came
	}
	x.mu.Lock()
	for k, b := range x.mboxMem {
		putChunk(b) // its record never came
		delete(x.mboxMem, k)
	}
	x.mu.Unlock()
	if x.keep {
		for rel, st := range x.files {
			if st&fileWritten != 0 && st&fileNamed == 0 {
				os.Remove(x.path(rel)) // abandoned: no record names it
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
