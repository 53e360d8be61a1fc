package tui

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"

	"github.com/mailtap/mailtap/decode"
)

// DefaultSpillMax bounds the spill file (NewSpill with max <= 0).
const DefaultSpillMax = 1 << 30

// spillChunk is the buffer each message in flight holds before its bytes
// go to the spill file.
const spillChunk = 64 << 10

// Spill keeps the raw bytes of every message the decoders stream into a
// temporary file (bounded: past max bytes, messages are no longer kept),
// so that the model holds only summaries and the message view re-reads a
// body on demand. It is a decode.MessageStore; an optional next store
// (the --extract Extractor) gets the same bytes and its paths.
//
// Safe for concurrent use by several decoding workers: each message in
// flight buffers at most spillChunk bytes and appends them to the file as
// extents under the mutex.
type Spill struct {
	next decode.MessageStore

	mu      sync.Mutex
	f       *os.File
	size    int64
	max     int64
	full    int // messages (or their tails) not kept: spill full
	seq     uint64
	pending map[string]BodyRef // closed, not yet claimed by a record
	err     error
}

// BodyRef locates one message's raw bytes in the spill.
type BodyRef struct {
	extents []extent
	Size    int64
	// Cut is set when the spill filled up before the message ended.
	Cut bool
}

// Kept reports whether any byte of the body is in the spill.
func (b BodyRef) Kept() bool { return len(b.extents) > 0 || b.Size > 0 && !b.Cut }

type extent struct{ off, n int64 }

// NewSpill creates the spill file in dir ("" for the system's temporary
// directory), removed by Close. max <= 0 takes DefaultSpillMax.
func NewSpill(dir string, max int64, next decode.MessageStore) (*Spill, error) {
	if max <= 0 {
		max = DefaultSpillMax
	}
	f, err := os.CreateTemp(dir, "mailtap-tui-spill-")
	if err != nil {
		return nil, err
	}
	// Unlinked at once where the system allows it: nothing is left
	// behind however the process ends.
	// Elsewhere Close removes it.
	os.Remove(f.Name())
	return &Spill{next: next, f: f, max: max, pending: map[string]BodyRef{}}, nil
}

// Close removes the spill file.
func (sp *Spill) Close() error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.f == nil {
		return nil
	}
	err := sp.f.Close()
	os.Remove(sp.f.Name())
	sp.f = nil
	return err
}

// Size returns the bytes in the spill file.
func (sp *Spill) Size() int64 {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.size
}

// Create implements decode.MessageStore.
func (sp *Spill) Create(c decode.ConnInfo, proto decode.Proto, n int) decode.MessageWriter {
	w := &spillWriter{sp: sp}
	if sp.next != nil {
		w.next = sp.next.Create(c, proto, n)
	}
	if _, ok := w.next.(decode.AttachmentStore); ok {
		return &spillAttWriter{w}
	}
	return w
}

type spillWriter struct {
	sp   *Spill
	next decode.MessageWriter
	buf  []byte
	ref  BodyRef
}

// spillAttWriter passes attachments to the next store's writer.
type spillAttWriter struct{ *spillWriter }

func (w *spillAttWriter) Attachment(a decode.Attachment) decode.MessageWriter {
	return w.next.(decode.AttachmentStore).Attachment(a)
}

func (w *spillWriter) Write(p []byte) (int, error) {
	n0 := len(p)
	if w.next != nil {
		w.next.Write(p)
	}
	w.ref.Size += int64(len(p))
	for len(p) > 0 && !w.ref.Cut {
		n := min(len(p), spillChunk-len(w.buf))
		w.buf = append(w.buf, p[:n]...)
		p = p[n:]
		if len(w.buf) == spillChunk {
			w.flush()
		}
	}
	return n0, nil
}

// flush appends the buffer to the spill file as one extent.
func (w *spillWriter) flush() {
	if len(w.buf) == 0 {
		return
	}
	sp := w.sp
	sp.mu.Lock()
	defer sp.mu.Unlock()
	defer func() { w.buf = w.buf[:0] }()
	if sp.f == nil || sp.err != nil || sp.size+int64(len(w.buf)) > sp.max {
		if !w.ref.Cut {
			sp.full++
		}
		w.ref.Cut = true
		return
	}
	if _, err := sp.f.WriteAt(w.buf, sp.size); err != nil {
		sp.err = err
		w.ref.Cut = true
		return
	}
	if k := len(w.ref.extents) - 1; k >= 0 && w.ref.extents[k].off+w.ref.extents[k].n == sp.size {
		w.ref.extents[k].n += int64(len(w.buf))
	} else {
		w.ref.extents = append(w.ref.extents, extent{sp.size, int64(len(w.buf))})
	}
	sp.size += int64(len(w.buf))
}

func (w *spillWriter) Close() (string, error) {
	w.flush()
	w.buf = nil
	var path string
	var err error
	if w.next != nil {
		path, err = w.next.Close()
	}
	sp := w.sp
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.seq++
	if path == "" {
		path = "spill:" + strconv.FormatUint(sp.seq, 10)
	}
	// Bounded: a record claims its body at once; an entry that no
	// record claims (a decoder that closes a writer it did not report)
	// is dropped past 4096.
	if len(sp.pending) >= 4096 {
		clear(sp.pending)
	}
	sp.pending[path] = w.ref
	return path, err
}

// take returns and forgets the body closed under key.
func (sp *Spill) take(key string) BodyRef {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	ref := sp.pending[key]
	delete(sp.pending, key)
	return ref
}

// ErrNotKept is returned by Read for a body the spill does not hold.
var ErrNotKept = errors.New("message body not kept")

// Read returns up to limit bytes of the body at ref.
func (sp *Spill) Read(ref BodyRef, limit int64) ([]byte, error) {
	if sp == nil || len(ref.extents) == 0 {
		if ref.Size == 0 && !ref.Cut && sp != nil {
			return nil, nil
		}
		return nil, ErrNotKept
	}
	sp.mu.Lock()
	f := sp.f
	sp.mu.Unlock()
	if f == nil {
		return nil, ErrNotKept
	}
	var out []byte
	for _, e := range ref.extents {
		n := min(e.n, limit-int64(len(out)))
		if n <= 0 {
			break
		}
		b := make([]byte, n)
		if _, err := f.ReadAt(b, e.off); err != nil && err != io.EOF {
			return out, fmt.Errorf("spill: %w", err)
		}
		out = append(out, b...)
	}
	return out, nil
}

// Full returns the messages not kept whole because the spill was full.
func (sp *Spill) Full() int {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.full
}
