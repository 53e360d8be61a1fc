package decode

import (
	"time"
)

// Base keeps what every protocol's session decoder records about its
// connection: byte counts, anomalies, the greeting, capabilities, login
// attempts, TLS, command and transaction counts, first/last time. Protocol
// decoders embed it, fill the exported fields as they learn them, send
// the bytes of a TLS stream to TLSData, and call SessionRecord to build
// the session record.
type Base struct {
	Conn  ConnInfo
	Proto Proto
	Opts  Options
	Sink  Sink

	BytesClient, BytesServer int64
	Last                     time.Time
	Gaps                     int
	Encrypted                bool
	Closed                   bool

	// What the session record reports, filled by the decoder.
	Greeting     string
	Caps         []string // capabilities: EHLO keywords, CAPA lines, IMAP CAPABILITY
	Auths        []Auth   // login attempts in order; the last one is the session's
	TLS          *TLS     // nil until STARTTLS/STLS or implicit TLS
	Commands     int
	Transactions int

	// MissingBytes sums the known sizes of the gaps (LostBytes).
	MissingBytes int64

	anomalies map[Anomaly]bool
	order     []string
	ends      *headerEnds // the connection's fields of every header, computed once

	hello    [2]tlsHello // TLS handshake readers: client, server
	helloCut [2]bool     // a gap hit that direction's handshake
}

// TLSData takes bytes of one direction of a TLS stream — after a
// STARTTLS/STLS go-ahead, or on an implicit-TLS port — in capture order.
// It is the one place where a decoder hands over encrypted bytes: today it
// reads the clear part of the handshake (SNI, versions, ALPN, a TLS 1.2
// certificate subject) into b.TLS, created if nil. It reports whether that
// direction did not start with a TLS handshake record.
func (b *Base) TLSData(dir Direction, p []byte) (notTLS bool) {
	i := helloIndex(dir)
	h := &b.hello[i]
	if b.helloCut[i] || h.Done() {
		return h.NotTLS
	}
	if b.TLS == nil {
		b.TLS = &TLS{}
	}
	h.Add(p, b.TLS)
	return h.NotTLS
}

// TLSGap tells that bytes of dir's TLS stream were lost: its handshake is
// read no further.
func (b *Base) TLSGap(dir Direction) { b.helloCut[helloIndex(dir)] = true }

// TLSBuffered returns the most bytes a direction's handshake reader holds
// (at most MaxTLSBuffered).
func (b *Base) TLSBuffered() int { return max(b.hello[0].Buffered(), b.hello[1].Buffered()) }

func helloIndex(dir Direction) int {
	if dir == ServerToClient {
		return 1
	}
	return 0
}

// NewBase fills a Base.
func NewBase(c ConnInfo, p Proto, o Options, s Sink) Base {
	return Base{Conn: c, Proto: p, Opts: o.WithDefaults(), Sink: s, Last: c.Start}
}

// Count adds n bytes seen in dir at ts.
func (b *Base) Count(dir Direction, n int, ts time.Time) {
	if dir == ClientToServer {
		b.BytesClient += int64(n)
	} else {
		b.BytesServer += int64(n)
	}
	if ts.After(b.Last) {
		b.Last = ts
	}
}

// Anomaly records an anomaly kind once per session.
func (b *Base) Anomaly(kind Anomaly) {
	if b.anomalies == nil {
		b.anomalies = make(map[Anomaly]bool)
	}
	if !b.anomalies[kind] {
		b.anomalies[kind] = true
		b.order = append(b.order, string(kind))
	}
}

// HasAnomaly reports whether kind was recorded.
func (b *Base) HasAnomaly(kind Anomaly) bool { return b.anomalies[kind] }

// Anomalies returns the recorded anomalies in first-seen order.
func (b *Base) Anomalies() []string { return b.order }

// CaptureLoss implements LossMarker: the capture dropped packets while
// the connection was open.
func (b *Base) CaptureLoss() { b.Anomaly(AnomalyCaptureLoss) }

// LostBytes counts n bytes lost in a gap (n < 0: unknown, not counted).
func (b *Base) LostBytes(n int) {
	if n > 0 {
		b.MissingBytes += int64(n)
	}
}

// Header builds a record header of type typ at ts.
func (b *Base) Header(typ string, ts time.Time) Header {
	if b.ends == nil {
		b.ends = newHeaderEnds(b.Conn)
	}
	return b.ends.header(typ, b.Proto, b.Conn.ID, ts)
}

// Emit sends r to the sink.
func (b *Base) Emit(r Record) {
	if b.Sink != nil {
		b.Sink.Emit(r)
	}
}

// SessionRecord builds the session record from what Base holds; the
// decoder adds its protocol's fields. state is derived: encrypted beats
// partial beats midstream beats the close reason.
func (b *Base) SessionRecord(reason CloseReason, ts time.Time) *SessionRecord {
	end := b.Last
	if reason == CloseEvicted {
		b.Anomaly(AnomalyEvicted)
	}
	if ts.After(end) && reason != CloseEOF && reason != CloseTimeout && reason != CloseEvicted {
		end = ts
	}
	r := &SessionRecord{
		Header:      b.Header(TypeSession, b.Conn.Start),
		Start:       b.Conn.Start.UTC(),
		End:         end.UTC(),
		BytesClient: b.BytesClient,
		BytesServer: b.BytesServer,
		CloseReason: reason.String(),
		Anomalies:   b.order,

		Greeting:     b.Greeting,
		Capabilities: b.Caps,
		Commands:     b.Commands,
		Transactions: b.Transactions,
	}
	if len(b.Auths) > 0 {
		last := b.Auths[len(b.Auths)-1]
		r.Auth, r.Auths = &last, b.Auths
	}
	if b.TLS != nil {
		t := *b.TLS
		r.TLS = &t
	}
	r.MissingBytes = b.MissingBytes
	switch {
	case b.Encrypted:
		r.State = StateEncrypted
	case b.Gaps > 0, b.BytesServer == 0 && b.BytesClient > 0:
		// Bytes were lost, or the client spoke and the server never did
		// (all three protocols have the server speak first): a one-sided
		// capture.
		r.State = StatePartial
	case b.Conn.Midstream:
		r.State = StateMidstream
	case reason == CloseRST:
		r.State = StateAborted
	case reason == CloseTimeout, reason == CloseEOF, reason == CloseEvicted:
		// Idle, or still open when the capture ended.
		r.State = StateTimeout
	default:
		r.State = StateComplete
	}
	return r
}

// Redact returns s, or "<redacted>" when secrets are hidden and s is not empty.
func (b *Base) Redact(s string) string {
	if b.Opts.ShowSecrets || s == "" {
		return s
	}
	return "<redacted>"
}

// Bool returns a pointer to v (for optional JSON booleans).
func Bool(v bool) *bool { return &v }
