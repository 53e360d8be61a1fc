package tlsdec

import (
	"bytes"
	"slices"
	"time"

	"github.com/mailtap/mailtap/decode"
)

// tlsDataTaker is decode.Base's TLSData, which reads the clear part of a
// handshake (SNI, ALPN, TLS 1.2 certificate) into the session's tls.
type tlsDataTaker interface {
	TLSData(dir decode.Direction, p []byte) bool
}

// NewFunc creates a protocol decoder (dispatch.NewFunc).
type NewFunc = func(c decode.ConnInfo, o decode.Options, s decode.Sink) decode.Decoder

// Wrap returns a NewFunc whose decoders decrypt TLS with the secrets of
// keys before the protocol decoder sees the bytes: on an implicit-TLS
// connection from the first byte, otherwise from a TLS ClientHello that
// follows a STARTTLS or STLS command. The protocol decoder gets the
// plaintext in the same order and with the same timestamps as it would
// get a cleartext session, so its records are as for cleartext. When a
// connection cannot be decrypted from its start, the protocol decoder gets
// the TLS bytes as it would without a key log.
//
// The session record's tls gains decrypted, cipher, version and resumed;
// a failure is recorded as an anomaly (tls_no_key, tls_unsupported_cipher,
// tls_gap, tls_bad_record_mac, tls_malformed). Byte counts stay those of
// the wire.
func Wrap(f NewFunc, keys *KeyLog, cfg Config) NewFunc {
	return func(c decode.ConnInfo, o decode.Options, s decode.Sink) decode.Decoder {
		w := &conn{c: c, o: o, sink: s, keys: keys, cfg: cfg, make: f}
		if !c.ImplicitTLS {
			w.newInner(c)
		} else {
			w.startTLS()
		}
		return w
	}
}

// The raw bytes kept until decryption is known to work (to give the
// protocol decoder if it does not) are bounded by the decryptor's hold
// bound plus room for a handshake.
const queueSlack = 64 << 10

type queued struct {
	dir decode.Direction
	p   []byte
	n   int // gap length when gap
	gap bool
	ts  time.Time
}

type conn struct {
	c    decode.ConnInfo
	o    decode.Options
	sink decode.Sink
	keys *KeyLog
	cfg  Config
	make NewFunc

	inner decode.Decoder
	d     *Decryptor
	// committed: the decryptor decrypted a record, so the protocol
	// decoder gets plaintext from now on; failed: it could not from the
	// start, so the protocol decoder got (and gets) the TLS bytes.
	committed, failed bool
	queue             []queued
	queueBytes        int
	starttls          bool
	// the last bytes of client cleartext, to see a STARTTLS/STLS
	tail []byte
	wire [2]int64
	// anomalies capture reported before there was a protocol decoder
	notes []decode.Anomaly
}

var _ decode.Decoder = (*conn)(nil)

func (w *conn) newInner(c decode.ConnInfo) {
	w.inner = w.make(c, w.o, decode.SinkFunc(w.emit))
	for _, k := range w.notes {
		w.Anomaly(k)
	}
	w.notes = nil
}

// Anomaly passes an anomaly capture found in the TCP stream on to the
// protocol decoder (decode.AnomalyRecorder), or holds it until there is
// one.
func (w *conn) Anomaly(kind decode.Anomaly) {
	if w.inner == nil {
		if !slices.Contains(w.notes, kind) {
			w.notes = append(w.notes, kind)
		}
		return
	}
	if r, ok := w.inner.(decode.AnomalyRecorder); ok {
		r.Anomaly(kind)
	}
}

// startTLS begins decryption at the current point of the stream.
func (w *conn) startTLS() {
	w.d = New(w.keys, w.cfg, w.plaintext)
}

// RolesSwapped passes a protocol decoder's role swap on (decode.RoleSwapper).
func (w *conn) RolesSwapped() bool {
	if rs, ok := w.inner.(decode.RoleSwapper); ok {
		return rs.RolesSwapped()
	}
	return false
}

func (w *conn) Data(dir decode.Direction, p []byte, ts time.Time) {
	if dir == decode.ClientToServer || dir == decode.ServerToClient {
		w.wire[dir-1] += int64(len(p))
	}
	if w.d == nil && w.inner != nil && dir == decode.ClientToServer && len(p) > 0 && p[0] == typeHandshake && w.afterStartTLS() {
		w.starttls = true
		w.startTLS()
	}
	if w.d == nil || w.failed {
		if w.d == nil && dir == decode.ClientToServer {
			w.keepTail(p)
		}
		w.inner.Data(dir, p, ts)
		return
	}
	if !w.committed {
		w.enqueue(queued{dir: dir, p: append([]byte(nil), p...), ts: ts})
	} else {
		w.tlsData(dir, p)
	}
	w.d.Data(dir, p, ts)
	w.check()
}

func (w *conn) Gap(dir decode.Direction, n int, ts time.Time) {
	if w.d == nil || w.failed {
		w.tail = w.tail[:0]
		w.inner.Gap(dir, n, ts)
		return
	}
	if !w.committed {
		w.enqueue(queued{dir: dir, n: n, gap: true, ts: ts})
	}
	w.d.Gap(dir, n, ts)
	if w.committed {
		w.inner.Gap(dir, n, ts)
	}
	w.check()
}

func (w *conn) Close(r decode.CloseReason, ts time.Time) {
	if w.d != nil && !w.failed {
		w.d.Close()
		w.check()
	}
	if w.inner == nil { // implicit TLS, nothing decided
		w.fail()
	}
	w.inner.Close(r, ts)
}

// plaintext receives the decryptor's output.
func (w *conn) plaintext(dir decode.Direction, p []byte, ts time.Time) {
	w.commit()
	w.inner.Data(dir, p, ts)
}

// check commits or fails once the decryptor knows.
func (w *conn) check() {
	if w.committed || w.failed {
		return
	}
	in := w.d.Info()
	switch {
	case in.Decrypted:
		w.commit()
	case in.Reason != "":
		w.fail()
	}
}

func (w *conn) commit() {
	if w.committed {
		return
	}
	w.committed = true
	if w.inner == nil {
		w.newInner(w.c.WithImplicitTLS(false))
	}
	// The handshake so far, for the session's tls (SNI, ALPN...).
	for _, e := range w.queue {
		if !e.gap {
			w.tlsData(e.dir, e.p)
		}
	}
	w.queue, w.queueBytes = nil, 0
}

// tlsData gives the protocol decoder the TLS bytes to read the clear part
// of the handshake from, when it can.
func (w *conn) tlsData(dir decode.Direction, p []byte) {
	if t, ok := w.inner.(tlsDataTaker); ok {
		t.TLSData(dir, p)
	}
}

// fail gives the protocol decoder the TLS bytes it would have had without
// a key log, and those that follow.
func (w *conn) fail() {
	if w.failed {
		return
	}
	w.failed = true
	if w.inner == nil {
		w.newInner(w.c)
	}
	q := w.queue
	w.queue, w.queueBytes = nil, 0
	for _, e := range q {
		if e.gap {
			w.inner.Gap(e.dir, e.n, e.ts)
		} else {
			w.inner.Data(e.dir, e.p, e.ts)
		}
	}
}

func (w *conn) enqueue(e queued) {
	w.queue = append(w.queue, e)
	w.queueBytes += len(e.p)
	if w.queueBytes > max(w.cfg.HoldBytes, DefaultHoldBytes)+queueSlack {
		// Too long without a decrypted record: give up on it.
		w.fail()
	}
}

// afterStartTLS tells whether the client's last line was a STARTTLS
// (SMTP, IMAP with its tag) or STLS (POP3) command.
func (w *conn) afterStartTLS() bool {
	t := bytes.TrimRight(w.tail, "\r\n")
	if len(t) == len(w.tail) {
		return false
	}
	if i := bytes.LastIndexAny(t, "\r\n"); i >= 0 {
		t = t[i+1:]
	}
	if i := bytes.LastIndexByte(t, ' '); i >= 0 {
		t = t[i+1:] // IMAP tag
	}
	return bytes.EqualFold(t, []byte("STARTTLS")) || bytes.EqualFold(t, []byte("STLS"))
}

func (w *conn) keepTail(p []byte) {
	const max = 64
	if len(p) >= max {
		w.tail = append(w.tail[:0], p[len(p)-max:]...)
		return
	}
	w.tail = append(w.tail, p...)
	if len(w.tail) > max {
		w.tail = append(w.tail[:0], w.tail[len(w.tail)-max:]...)
	}
}

// emit completes the protocol decoder's session record with what the
// decryptor knows.
func (w *conn) emit(r decode.Record) {
	sr, ok := r.(*decode.SessionRecord)
	if !ok || w.d == nil {
		w.sink.Emit(r)
		return
	}
	if lines, _ := w.keys.Stats(); w.cfg.OnlyWithKeys && lines == 0 && !w.committed {
		w.sink.Emit(r)
		return
	}
	in := w.d.Info()
	if sr.TLS == nil {
		sr.TLS = &decode.TLS{}
	}
	t := sr.TLS
	if w.committed {
		// The protocol decoder saw plaintext where it expected TLS.
		sr.Anomalies = slices.DeleteFunc(slices.Clone(sr.Anomalies), func(a string) bool { return a == string(decode.AnomalyStartTLSPlaintext) })
		t.StartTLS = t.StartTLS || w.starttls
		t.Implicit = t.Implicit || w.c.ImplicitTLS
		sr.BytesClient, sr.BytesServer = w.wire[0], w.wire[1]
	}
	decrypted := w.committed
	t.Decrypted = &decrypted
	t.Cipher = in.Cipher
	if v := w.d.version; v >= versionTLS10 && v <= versionTLS13 {
		// As the handshake reader names them (TLSv1.2).
		t.Version = "TLSv1." + string(rune('0'+v-versionTLS10))
	}
	t.Resumed = in.Resumed
	if in.Reason != "" {
		a := "tls_" + in.Reason
		if !slices.Contains(sr.Anomalies, a) {
			sr.Anomalies = append(slices.Clip(sr.Anomalies), a)
		}
	}
	w.sink.Emit(sr)
}
