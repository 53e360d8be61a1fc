package decode

import (
	"time"
)

// Base keeps what every protocol's session decoder records about its
// connection: byte counts, anomalies, auth attempts, TLS, first/last time.
// Protocol decoders embed it and call Finish to build the session record.
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

	anomalies map[Anomaly]bool
	order     []string
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

// Header builds a record header of type typ at ts.
func (b *Base) Header(typ string, ts time.Time) Header {
	return NewHeader(typ, b.Proto, b.Conn, ts)
}

// Emit sends r to the sink.
func (b *Base) Emit(r Record) {
	if b.Sink != nil {
		b.Sink.Emit(r)
	}
}

// SessionRecord builds the common part of the session record. state is
// derived: encrypted beats partial beats midstream beats the close reason.
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
		CommunityID: CommunityID(b.Conn.Client, b.Conn.Server),
		Anomalies:   b.order,
	}
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
