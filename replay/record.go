package replay

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/mailtap/mailtap/capture"
	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/dispatch"
)

// Limits bound what a Recorder keeps in memory.
type Limits struct {
	// MaxClientBytes and MaxServerBytes bound one session's kept bytes;
	// a longer session is skipped. Zero means 16 MiB and 64 MiB.
	MaxClientBytes, MaxServerBytes int64
	// MaxMessages bounds the raw message bytes kept for seeding, in all;
	// zero means 64 MiB. Messages past it are seeded as placeholders.
	MaxMessages int64
}

func (l Limits) withDefaults() Limits {
	if l.MaxClientBytes <= 0 {
		l.MaxClientBytes = 16 << 20
	}
	if l.MaxServerBytes <= 0 {
		l.MaxServerBytes = 64 << 20
	}
	if l.MaxMessages <= 0 {
		l.MaxMessages = 64 << 20
	}
	return l
}

// Session is one recorded connection: its turns and its decoded records.
type Session struct {
	ID       uint64
	Proto    decode.Proto
	Conn     decode.ConnInfo
	Greeting []byte
	Turns    []Turn
	// Commands are the captured command records, in emission order.
	Commands []*decode.CommandRecord
	Record   *decode.SessionRecord
	// Skip says why the session cannot be replayed ("" when it can).
	Skip string

	mails     []*decode.SMTPMail
	pop3Msgs  []*decode.POP3Message
	imapMsgs  []*decode.IMAPMessage
	split     splitter
	closedAt  time.Time
	recording bool
}

// Recorder records sessions while a capture is decoded. Use Sink and
// Messages in the decode options of the dispatcher it wraps with Wrap, and
// run the capture engine on one worker (records arrive on one goroutine).
type Recorder struct {
	lim      Limits
	sessions map[uint64]*Session
	msgs     map[string][]byte // sha256 hex -> raw message
	msgBytes int64
}

// NewRecorder returns an empty Recorder.
func NewRecorder(lim Limits) *Recorder {
	return &Recorder{lim: lim.withDefaults(), sessions: map[uint64]*Session{}, msgs: map[string][]byte{}}
}

// Options returns decode options for the dispatcher: command records,
// secrets shown (the passwords seed the server), messages kept.
func (r *Recorder) Options(o decode.Options) decode.Options {
	o.Level = decode.LevelCommands
	o.ShowSecrets = true
	o.Messages = r
	return o
}

// Emit implements decode.Sink: records are kept with their session.
func (r *Recorder) Emit(rec decode.Record) {
	s := r.session(rec.Head().Session)
	switch v := rec.(type) {
	case *decode.CommandRecord:
		s.Commands = append(s.Commands, v)
	case *decode.SessionRecord:
		s.Record = v
		s.Proto = v.Proto
	case *decode.SMTPMail:
		s.mails = append(s.mails, v)
	case *decode.POP3Message:
		s.pop3Msgs = append(s.pop3Msgs, v)
	case *decode.IMAPMessage:
		s.imapMsgs = append(s.imapMsgs, v)
	}
}

func (r *Recorder) session(id uint64) *Session {
	s := r.sessions[id]
	if s == nil {
		s = &Session{ID: id, split: splitter{maxClient: r.lim.MaxClientBytes, maxServer: r.lim.MaxServerBytes}}
		r.sessions[id] = s
	}
	return s
}

// Create implements decode.MessageStore: message bytes are kept, up to the
// limit, and found again by their SHA-256 (the records carry it).
func (r *Recorder) Create(_ decode.ConnInfo, _ decode.Proto, _ int) decode.MessageWriter {
	return &msgWriter{r: r}
}

type msgWriter struct {
	r    *Recorder
	buf  []byte
	over bool
}

func (w *msgWriter) Write(p []byte) (int, error) {
	if w.over {
		return len(p), nil
	}
	if w.r.msgBytes+int64(len(w.buf)+len(p)) > w.r.lim.MaxMessages {
		w.over, w.buf = true, nil
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

func (w *msgWriter) Close() (string, error) {
	if w.over {
		return "", nil
	}
	sum := sha256.Sum256(w.buf)
	key := hex.EncodeToString(sum[:])
	if _, ok := w.r.msgs[key]; !ok {
		w.r.msgs[key] = w.buf
		w.r.msgBytes += int64(len(w.buf))
	}
	return "", nil
}

// Wrap returns a capture.Factory that records every connection's bytes
// and passes them on to f's decoder.
func (r *Recorder) Wrap(f capture.Factory) capture.Factory {
	return capture.FactoryFunc(func(c decode.ConnInfo) decode.Decoder {
		return r.record(c, f.NewConn(c))
	})
}

// WrapNew is Wrap for a protocol decoder's constructor: the recording
// sits right in front of the protocol decoder, behind whatever wraps the
// constructor (TLS decryption), so it records the bytes the decoder
// decodes: the plaintext of a decrypted session.
func (r *Recorder) WrapNew(f dispatch.NewFunc) dispatch.NewFunc {
	return func(c decode.ConnInfo, o decode.Options, sink decode.Sink) decode.Decoder {
		return r.record(c, f(c, o, sink))
	}
}

// record starts recording connection c in front of its decoder inner.
func (r *Recorder) record(c decode.ConnInfo, inner decode.Decoder) *recConn {
	s := r.session(c.ID)
	s.Conn = c
	s.recording = true
	d := &recConn{inner: inner, s: s}
	d.swapper, _ = inner.(decode.RoleSwapper)
	d.RolesSwapped()
	return d
}

type recConn struct {
	inner   decode.Decoder
	s       *Session
	swapper decode.RoleSwapper
	swapped bool
}

// RolesSwapped passes the inner decoder's finding on to capture, and
// keeps the session's roles as capture's.
func (d *recConn) RolesSwapped() bool {
	if !d.swapped && d.swapper != nil && d.swapper.RolesSwapped() {
		d.swapped = true
		d.s.Conn = d.s.Conn.Swapped()
	}
	return d.swapped
}

func (d *recConn) Data(dir decode.Direction, p []byte, ts time.Time) {
	d.s.split.add(dir, p, ts)
	if d.inner != nil {
		d.inner.Data(dir, p, ts)
	}
}

func (d *recConn) Gap(dir decode.Direction, n int, ts time.Time) {
	if d.inner != nil {
		d.inner.Gap(dir, n, ts)
	}
}

func (d *recConn) Close(reason decode.CloseReason, ts time.Time) {
	if d.inner != nil {
		d.inner.Close(reason, ts)
	}
	d.s.closedAt = ts
}

// Anomaly passes what capture found in the TCP stream (overlaps with
// other bytes, data on a SYN) on to the decoder, as dispatch does.
func (d *recConn) Anomaly(kind decode.Anomaly) {
	if r, ok := d.inner.(decode.AnomalyRecorder); ok {
		r.Anomaly(kind)
	}
}

// CaptureLoss passes a capture-loss mark on to the decoder.
func (d *recConn) CaptureLoss() {
	if m, ok := d.inner.(decode.LossMarker); ok {
		m.CaptureLoss()
	}
}

// Sessions returns the recorded mail sessions in connection order, with
// Skip set on those that cannot be replayed.
func (r *Recorder) Sessions() []*Session {
	var out []*Session
	for _, s := range r.sessions {
		if s.Record == nil || !s.recording {
			continue
		}
		s.Greeting, s.Turns = s.split.greeting, s.split.turns
		if s.Record.TLS != nil && s.Record.TLS.Implicit {
			// The decoder saw implicit TLS (a decrypted session was
			// recorded in plaintext behind the decryptor): replayed over
			// implicit TLS, or not at all. The connection's own flag
			// comes from capture's port map and misses sessions the
			// dispatcher recognised by their first bytes.
			s.Conn.ImplicitTLS = true
		}
		s.Skip = skipReason(s, r.lim)
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *Session) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// Decrypted reports whether the session's TLS part was decrypted with a
// key log (LoadConfig.TLSKeys): its turns after the upgrade are plaintext.
func Decrypted(s *Session) bool {
	return s.Record != nil && s.Record.TLS != nil && s.Record.TLS.Decrypted != nil && *s.Record.TLS.Decrypted
}

// message returns the raw bytes of a message seen with this SHA-256.
func (r *Recorder) message(sha string) []byte { return r.msgs[sha] }

func skipReason(s *Session, lim Limits) string {
	switch s.Record.State {
	case decode.StateEncrypted:
		// A STARTTLS/STLS session replays its cleartext part and
		// upgrades; an implicit-TLS one only its handshake. Without a
		// TLS record nothing says where the cleartext ends.
		if s.Record.TLS == nil || !(s.Record.TLS.StartTLS || s.Conn.ImplicitTLS || s.Record.TLS.Implicit) {
			return SkipEncrypted + ": the session went TLS, its client bytes are not in the capture"
		}
	case decode.StatePartial:
		return SkipPartial + ": bytes were lost in the capture"
	case decode.StateMidstream:
		return SkipMidstream + ": the capture missed the start of the connection"
	}
	if s.split.overClient {
		return fmt.Sprintf("%s: over %d client bytes", SkipTooLong, lim.MaxClientBytes)
	}
	if s.split.overServer {
		return fmt.Sprintf("%s: over %d server bytes", SkipTooLong, lim.MaxServerBytes)
	}
	if len(s.Turns) == 0 && !s.Conn.ImplicitTLS {
		return SkipNoClient
	}
	return ""
}
