package tlsdec

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"time"

	"github.com/mailtap/mailtap/decode"
)

// Reasons a connection (or one direction of it) could not be decrypted.
const (
	// ReasonNoKey: the key log has no secret for the connection (or the
	// handshake was not captured, so there is no client random to look up).
	ReasonNoKey = "no_key"
	// ReasonUnsupportedCipher: the negotiated version or cipher suite is
	// not one the decryptor implements.
	ReasonUnsupportedCipher = "unsupported_cipher"
	// ReasonGap: bytes of the direction were lost; record boundaries and
	// sequence numbers cannot be recovered, so decryption of it ends.
	ReasonGap = "gap"
	// ReasonBadRecordMAC: a record did not authenticate under the key (a
	// wrong key log line or a corrupted capture).
	ReasonBadRecordMAC = "bad_record_mac"
	// ReasonMalformed: the bytes are not TLS records (bad header, or a
	// record longer than the RFCs allow).
	ReasonMalformed = "malformed"
)

// Record content types (RFC 8446 B.1).
const (
	typeChangeCipherSpec = 20
	typeAlert            = 21
	typeHandshake        = 22
	typeApplicationData  = 23
	typeHeartbeat        = 24
)

// Handshake message types.
const (
	hsClientHello      = 1
	hsServerHello      = 2
	hsNewSessionTicket = 4
	hsServerHelloDone  = 14
	hsFinished         = 20
	hsKeyUpdate        = 24
)

// Record length limits: TLSCiphertext.length may not exceed 2^14+2048 in
// TLS 1.2 (RFC 5246 6.2.3) and 2^14+256 in TLS 1.3 (RFC 8446 5.2); the
// looser one applies until the version is known.
const (
	maxRecord12 = 1<<14 + 2048
	maxRecord13 = 1<<14 + 256
	// maxHandshakeKept bounds a handshake message kept to be parsed (the
	// hellos, tickets, KeyUpdate); longer ones (certificate chains) are
	// skipped over without being kept.
	maxHandshakeKept = 1 << 16
)

// DefaultHoldBytes is how many bytes a Decryptor holds while it waits for
// a key that is not (yet) in the key log.
const DefaultHoldBytes = 1 << 20

// helloRetryRandom is ServerHello.random of a HelloRetryRequest
// (RFC 8446 4.1.3).
var helloRetryRandom = [32]byte{
	0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
	0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
}

// Config tunes a Decryptor. The zero value is usable.
type Config struct {
	// HoldBytes bounds the bytes kept while waiting for a key that is not
	// in the key log yet (live capture: the key log is written after the
	// handshake). 0 means DefaultHoldBytes; negative means do not wait.
	HoldBytes int
	// HoldTimeout ends the wait after this much capture time; 0 waits
	// until Close or until HoldBytes is exceeded.
	HoldTimeout time.Duration
	// OnlyWithKeys (for Wrap) leaves a session record as the protocol
	// decoder made it when the key log is still empty when the session
	// ends: a pcapng that turned out to embed no keys decodes as without
	// a key log.
	OnlyWithKeys bool
}

// OutputFunc receives decrypted application data of one direction, in
// order, with the timestamp of the segment that completed the record. p is
// only valid during the call.
type OutputFunc func(dir decode.Direction, p []byte, ts time.Time)

// Info is what the Decryptor learnt about the connection.
type Info struct {
	// Version is the negotiated version ("TLS 1.2", "TLS 1.3"), "" when
	// no ServerHello was seen.
	Version string
	// Cipher is the IANA name of the negotiated cipher suite.
	Cipher string
	// Resumed is set for an abbreviated (resumed) TLS 1.2 handshake and a
	// TLS 1.3 handshake with a pre-shared key.
	Resumed bool
	// Decrypted is set once a record was decrypted.
	Decrypted bool
	// Reason is why decryption stopped or never started ("" when it did
	// not fail); ReasonDir is the direction it concerns (DirUnknown: both).
	Reason    string
	ReasonDir decode.Direction
	// Records counts the records decrypted.
	Records int
}

// want names the key a direction's next encrypted record needs.
type want uint8

const (
	wantNone want = iota
	wantHandshake13
	wantApp13
	want12
)

type half struct {
	dir    decode.Direction
	buf    []byte // an incomplete record
	cipher *recordCipher
	want   want
	// set by a handshake message, applied at the end of its record
	switchTo  want
	keyUpdate bool
	dead      bool
	hs        hsReader
}

type held struct {
	dir decode.Direction
	p   []byte
	gap int
	ts  time.Time
	gp  bool
}

// Decryptor decrypts the TLS records of one TCP connection. Feed it both
// directions' bytes in capture order with Data and Gap; it calls the
// OutputFunc with application data as records complete. It is a push
// parser: no goroutines, memory bounded by the record limits and the hold
// bound. Not safe for concurrent use.
type Decryptor struct {
	keys *KeyLog
	cfg  Config
	out  OutputFunc
	half [2]half

	sawCH           bool
	sawSH           bool
	hrr             bool
	clientRandom    [32]byte
	serverRandom    [32]byte
	clientSessionID []byte
	clientTicket    []byte
	serverSessionID []byte
	newTicket       []byte
	etm             bool
	serverDone      bool
	version         uint16
	suiteID         uint16
	suite           *suite
	master          []byte
	pending12       [2]*recordCipher

	holding   bool
	hold      []held
	holdBytes int
	holdStart time.Time
	holdVer   uint64

	info       Info
	scratch    []byte
	keyUpdates [2]int // per direction, for tests
}

// New returns a Decryptor that looks keys up in keys and sends plaintext
// to out.
func New(keys *KeyLog, cfg Config, out OutputFunc) *Decryptor {
	if cfg.HoldBytes == 0 {
		cfg.HoldBytes = DefaultHoldBytes
	}
	d := &Decryptor{keys: keys, cfg: cfg, out: out}
	d.half[0].dir = decode.ClientToServer
	d.half[1].dir = decode.ServerToClient
	return d
}

func (d *Decryptor) halfOf(dir decode.Direction) *half {
	switch dir {
	case decode.ClientToServer:
		return &d.half[0]
	case decode.ServerToClient:
		return &d.half[1]
	}
	return nil
}

// Info returns what is known about the connection so far.
func (d *Decryptor) Info() Info {
	in := d.info
	if d.version != 0 {
		in.Version = tls.VersionName(d.version)
	}
	if d.sawSH {
		in.Cipher = SuiteName(d.suiteID)
	}
	return in
}

// Waiting reports whether the Decryptor holds records until a key shows
// up in the key log.
func (d *Decryptor) Waiting() bool { return d.holding }

// Data feeds bytes of one direction, in order. p is not retained.
func (d *Decryptor) Data(dir decode.Direction, p []byte, ts time.Time) {
	if d.holding {
		d.enqueue(held{dir: dir, p: append([]byte(nil), p...), ts: ts})
		d.Poll(ts)
		return
	}
	d.feed(dir, p, ts)
}

// Gap reports bytes lost in dir: decryption of that direction ends.
func (d *Decryptor) Gap(dir decode.Direction, n int, ts time.Time) {
	if d.holding {
		d.enqueue(held{dir: dir, gap: n, gp: true, ts: ts})
		return
	}
	h := d.halfOf(dir)
	if h == nil || h.dead {
		return
	}
	d.fail(h, ReasonGap)
}

// Poll retries a held connection: if the key log gained secrets since the
// wait began the held bytes are decrypted; if the hold timed out (in
// capture time now) the connection fails with ReasonNoKey. Live capture
// calls it as time passes; Data calls it too.
func (d *Decryptor) Poll(now time.Time) {
	if !d.holding {
		return
	}
	if v := d.keys.Version(); v != d.holdVer {
		d.holdVer = v
		if d.keyAvailable() {
			d.release()
			return
		}
	}
	if d.cfg.HoldTimeout > 0 && now.Sub(d.holdStart) > d.cfg.HoldTimeout {
		d.giveUp()
	}
}

// Close ends the connection: a last look for a held connection's key,
// then it fails with ReasonNoKey.
func (d *Decryptor) Close() {
	if !d.holding {
		return
	}
	if d.keyAvailable() {
		d.release()
	}
	if d.holding {
		d.giveUp()
	}
}

func (d *Decryptor) enqueue(e held) {
	d.hold = append(d.hold, e)
	d.holdBytes += len(e.p)
	if d.holdBytes > d.cfg.HoldBytes {
		d.giveUp()
	}
}

func (d *Decryptor) giveUp() {
	d.holding = false
	d.hold = nil
	d.holdBytes = 0
	d.failAll(ReasonNoKey)
}

// release feeds the held bytes again now that the key is there. Feeding
// may start another wait (the next key is missing): what is left is then
// kept in order behind it.
func (d *Decryptor) release() {
	q := d.hold
	d.holding = false
	d.hold = nil
	d.holdBytes = 0
	for i, e := range q {
		if d.holding {
			for _, r := range q[i:] {
				d.enqueue(r)
				if !d.holding {
					return
				}
			}
			return
		}
		if e.gp {
			d.Gap(e.dir, e.gap, e.ts)
		} else {
			d.feed(e.dir, e.p, e.ts)
		}
	}
}

// keyAvailable tells whether the secret the waiting direction needs is in
// the key log now.
func (d *Decryptor) keyAvailable() bool {
	for i := range d.half {
		h := &d.half[i]
		if h.dead || h.cipher != nil || h.want == wantNone {
			continue
		}
		if s, _ := d.secretFor(h); s != nil || (h.want == want12 && d.master12() != nil) {
			return true
		}
	}
	return false
}

func (d *Decryptor) startHold(dir decode.Direction, rec, rest []byte, ts time.Time) {
	d.holding = true
	d.holdStart = ts
	d.holdVer = d.keys.Version()
	p := make([]byte, 0, len(rec)+len(rest))
	p = append(append(p, rec...), rest...)
	d.enqueue(held{dir: dir, p: p, ts: ts})
}

func (d *Decryptor) fail(h *half, reason string) {
	if h.dead {
		return
	}
	h.dead = true
	h.buf = nil
	h.hs = hsReader{}
	if d.info.Reason == "" {
		d.info.Reason = reason
		d.info.ReasonDir = h.dir
	} else if d.info.Reason == reason && d.info.ReasonDir != h.dir {
		d.info.ReasonDir = decode.DirUnknown
	}
}

func (d *Decryptor) failAll(reason string) {
	if d.info.Reason == "" {
		d.info.Reason = reason
		d.info.ReasonDir = decode.DirUnknown
	}
	for i := range d.half {
		d.fail(&d.half[i], reason)
	}
}

func (d *Decryptor) maxRecord() int {
	if d.version == versionTLS13 {
		return maxRecord13
	}
	return maxRecord12
}

// headerOK checks a record header: a known content type, major version 3
// and a length within the limit.
func (d *Decryptor) headerOK(hdr []byte) bool {
	if hdr[0] < typeChangeCipherSpec || hdr[0] > typeHeartbeat || hdr[1] != 3 {
		return false
	}
	return int(binary.BigEndian.Uint16(hdr[3:5])) <= d.maxRecord()
}

// feed splits p into records, across calls, and handles each.
func (d *Decryptor) feed(dir decode.Direction, p []byte, ts time.Time) {
	h := d.halfOf(dir)
	if h == nil {
		return
	}
	for len(p) > 0 && !h.dead {
		if len(h.buf) == 0 && len(p) >= 5 {
			if !d.headerOK(p) {
				d.fail(h, ReasonMalformed)
				return
			}
			n := 5 + int(binary.BigEndian.Uint16(p[3:5]))
			if len(p) >= n {
				rec := p[:n]
				p = p[n:]
				if !d.record(h, rec, ts) {
					d.waitOrFail(dir, rec, p, ts)
					return
				}
				continue
			}
		}
		need := 5
		if len(h.buf) >= 5 {
			need = 5 + int(binary.BigEndian.Uint16(h.buf[3:5]))
		}
		take := min(need-len(h.buf), len(p))
		h.buf = append(h.buf, p[:take]...)
		p = p[take:]
		if len(h.buf) == 5 {
			if !d.headerOK(h.buf) {
				d.fail(h, ReasonMalformed)
				return
			}
			need = 5 + int(binary.BigEndian.Uint16(h.buf[3:5]))
		}
		if len(h.buf) == need {
			rec := h.buf
			h.buf = h.buf[:0]
			if !d.record(h, rec, ts) {
				d.waitOrFail(dir, rec, p, ts)
				return
			}
		}
	}
}

// waitOrFail handles a record whose key is missing: wait for it when it
// may still come, else fail.
func (d *Decryptor) waitOrFail(dir decode.Direction, rec, rest []byte, ts time.Time) {
	if d.cfg.HoldBytes < 0 || !d.sawCH || d.keys == nil {
		d.failAll(ReasonNoKey)
		return
	}
	d.startHold(dir, rec, rest, ts)
}

// record handles one whole record. It returns false when the record needs
// a key the key log does not have (yet); the record was then not consumed.
func (d *Decryptor) record(h *half, rec []byte, ts time.Time) bool {
	hdr, body := rec[:5], rec[5:]
	typ := hdr[0]
	encrypted := h.cipher != nil || h.want != wantNone
	if d.version == versionTLS13 && typ != typeApplicationData {
		// TLS 1.3 sends only application_data records encrypted; a
		// ChangeCipherSpec (middlebox compatibility) or alert in clear
		// may follow the ServerHello.
		encrypted = false
	}
	if !encrypted {
		switch typ {
		case typeChangeCipherSpec:
			if d.sawSH && !d.hrr && d.version != 0 && d.version != versionTLS13 {
				if h.dir == decode.ServerToClient && !d.serverDone {
					d.info.Resumed = true
				}
				h.want = want12
				h.cipher = d.pending12[h.dir-1]
				if h.dir == decode.ServerToClient && d.master != nil {
					d.keys.rememberSession(d.serverSessionID, d.newTicket, d.master)
				}
			}
		case typeHandshake:
			h.hs.feed(body, func(mt byte, msg []byte) { d.handshake(h, mt, msg) })
		case typeApplicationData:
			if !d.sawCH {
				// The handshake was not captured: nothing to look up.
				d.failAll(ReasonNoKey)
				return true
			}
			// TLS 1.3 early data before the ServerHello, or garbage:
			// without the early traffic secret it cannot be read.
		}
		d.afterRecord(h)
		return true
	}
	if h.cipher == nil {
		ok, reason := d.establish(h)
		if reason != "" {
			d.fail(h, reason)
			return true
		}
		if !ok {
			return false
		}
	}
	pt, ityp, err := h.cipher.open(d.scratch[:0], hdr, body)
	if err != nil {
		d.fail(h, ReasonBadRecordMAC)
		return true
	}
	d.scratch = pt[:0]
	d.info.Decrypted = true
	d.info.Records++
	switch ityp {
	case typeApplicationData:
		if len(pt) > 0 && d.out != nil {
			d.out(h.dir, pt, ts)
		}
	case typeHandshake:
		h.hs.feed(pt, func(mt byte, msg []byte) { d.handshake(h, mt, msg) })
	case typeChangeCipherSpec:
		// A TLS 1.2 renegotiation switching to keys of a new
		// handshake: not followed.
		d.fail(h, ReasonUnsupportedCipher)
		return true
	}
	d.afterRecord(h)
	return true
}

// afterRecord applies a key change that a handshake message of the
// record announced: keys change at record boundaries.
func (d *Decryptor) afterRecord(h *half) {
	if h.switchTo != wantNone {
		h.want, h.switchTo, h.cipher = h.switchTo, wantNone, nil
	}
	if h.keyUpdate {
		h.keyUpdate = false
		if h.cipher != nil {
			c, err := h.cipher.next()
			if err != nil {
				d.fail(h, ReasonUnsupportedCipher)
				return
			}
			h.cipher = c
			d.keyUpdates[h.dir-1]++
		}
	}
}

// secretFor returns the TLS 1.3 secret h needs, from the key log.
func (d *Decryptor) secretFor(h *half) ([]byte, bool) {
	s, ok := d.keys.Lookup(d.clientRandom)
	if !ok {
		return nil, false
	}
	c := h.dir == decode.ClientToServer
	switch h.want {
	case wantHandshake13:
		if c {
			return s.ClientHandshake, true
		}
		return s.ServerHandshake, true
	case wantApp13:
		if c {
			return s.ClientTraffic0, true
		}
		return s.ServerTraffic0, true
	}
	return nil, true
}

// master12 finds the TLS 1.2 master secret: the key log line for this
// connection's client random, else (resumption) the one learnt from the
// full handshake that issued the session id or ticket.
func (d *Decryptor) master12() []byte {
	if s, ok := d.keys.Lookup(d.clientRandom); ok && s.Master != nil {
		return s.Master
	}
	if !d.serverDone {
		return d.keys.resumed(d.sessionIDForResumption(), d.clientTicket)
	}
	return nil
}

func (d *Decryptor) sessionIDForResumption() []byte {
	if len(d.serverSessionID) > 0 && bytes.Equal(d.serverSessionID, d.clientSessionID) {
		return d.serverSessionID
	}
	return nil
}

// establish sets up h's cipher. ok=false with no reason means the key is
// missing (wait for it).
func (d *Decryptor) establish(h *half) (ok bool, reason string) {
	if d.suite == nil {
		return false, ReasonUnsupportedCipher
	}
	switch h.want {
	case wantHandshake13, wantApp13:
		secret, _ := d.secretFor(h)
		if secret == nil {
			return false, ""
		}
		if len(secret) != d.suite.hashLen() {
			return false, ReasonBadRecordMAC
		}
		c, err := newCipher13(d.suite, secret)
		if err != nil {
			return false, ReasonUnsupportedCipher
		}
		h.cipher = c
		return true, ""
	case want12:
		m := d.master12()
		if m == nil {
			return false, ""
		}
		if d.master == nil {
			d.master = m
			cc, sc, err := newCiphers12(d.suite, d.version, m, d.clientRandom[:], d.serverRandom[:], d.etm)
			if err != nil {
				return false, ReasonUnsupportedCipher
			}
			d.pending12 = [2]*recordCipher{cc, sc}
			if !d.info.Resumed {
				d.keys.rememberSession(d.serverSessionID, d.newTicket, m)
			}
		}
		h.cipher = d.pending12[h.dir-1]
		return true, ""
	}
	return false, ReasonNoKey
}

// handshake handles one handshake message of h's direction.
func (d *Decryptor) handshake(h *half, mt byte, msg []byte) {
	client := h.dir == decode.ClientToServer
	switch {
	case mt == hsClientHello && client:
		if d.sawCH {
			return // the second ClientHello after a HelloRetryRequest
		}
		ch, ok := parseHello(msg, false)
		if !ok {
			return
		}
		d.sawCH = true
		d.clientRandom = ch.random
		d.clientSessionID = ch.sessionID
		d.clientTicket = ch.ticket
	case mt == hsServerHello && !client:
		if d.sawSH && !d.hrr {
			return // a renegotiation's (see record)
		}
		sh, ok := parseHello(msg, true)
		if !ok {
			return
		}
		d.version = sh.version
		d.suiteID = sh.cipher
		d.suite = suites[sh.cipher]
		if sh.random == helloRetryRandom {
			d.hrr = true
			d.sawSH = true
			return
		}
		d.hrr = false
		d.sawSH = true
		d.serverRandom = sh.random
		d.serverSessionID = sh.sessionID
		d.etm = sh.etm
		if d.version == versionTLS13 {
			d.info.Resumed = sh.psk
			if d.suite == nil || !d.suite.tls13 {
				d.suite = nil
				d.failAll(ReasonUnsupportedCipher)
				return
			}
			h.switchTo = wantHandshake13
			d.half[0].want = wantHandshake13
			return
		}
		// TLS 1.0 and 1.1 know only the CBC suites with HMAC-SHA1.
		old := d.version == versionTLS10 || d.version == versionTLS11
		if d.version != versionTLS12 && !old || d.suite == nil || d.suite.tls13 || old && (d.suite.kind != kindCBC || d.suite.macLen != 20) {
			d.suite = nil
			d.failAll(ReasonUnsupportedCipher)
			return
		}
		if id := d.sessionIDForResumption(); id != nil {
			d.info.Resumed = true
		}
	case mt == hsServerHelloDone && !client:
		d.serverDone = true
	case mt == hsNewSessionTicket && !client:
		if d.version == versionTLS12 && len(msg) >= 6 {
			n := int(binary.BigEndian.Uint16(msg[4:6]))
			if len(msg) >= 6+n {
				d.newTicket = append([]byte(nil), msg[6:6+n]...)
			}
		}
	case mt == hsFinished && d.version == versionTLS13:
		if h.want == wantHandshake13 {
			h.switchTo = wantApp13
		}
	case mt == hsKeyUpdate && d.version == versionTLS13:
		if h.want == wantApp13 {
			h.keyUpdate = true
		}
	}
}

type hello struct {
	version   uint16
	random    [32]byte
	sessionID []byte
	cipher    uint16
	ticket    []byte
	etm       bool
	psk       bool
}

// parseHello reads the fields the decryptor needs from a ClientHello or
// ServerHello body (RFC 8446 4.1.2, 4.1.3; RFC 5246 7.4.1).
func parseHello(b []byte, server bool) (hello, bool) {
	var h hello
	r := reader(b)
	v, ok := r.u16()
	if !ok {
		return h, false
	}
	h.version = v
	rnd, ok := r.bytes(32)
	if !ok {
		return h, false
	}
	copy(h.random[:], rnd)
	sid, ok := r.vec8()
	if !ok || len(sid) > 32 {
		return h, false
	}
	h.sessionID = append([]byte(nil), sid...)
	if server {
		if h.cipher, ok = r.u16(); !ok {
			return h, false
		}
		if _, ok = r.bytes(1); !ok {
			return h, false
		}
	} else {
		if _, ok = r.vec16(); !ok {
			return h, false
		}
		if _, ok = r.vec8(); !ok {
			return h, false
		}
	}
	if len(r) == 0 {
		return h, true // no extensions
	}
	exts, ok := r.vec16()
	if !ok {
		return h, false
	}
	e := reader(exts)
	for len(e) > 0 {
		typ, ok1 := e.u16()
		data, ok2 := e.vec16()
		if !ok1 || !ok2 {
			return h, false
		}
		switch typ {
		case 0x0016: // encrypt_then_mac
			h.etm = true
		case 0x0023: // session_ticket
			if !server {
				h.ticket = append([]byte(nil), data...)
			}
		case 0x0029: // pre_shared_key
			h.psk = true
		case 0x002b: // supported_versions
			if server && len(data) == 2 {
				h.version = binary.BigEndian.Uint16(data)
			}
		}
	}
	return h, true
}

type reader []byte

func (r *reader) bytes(n int) ([]byte, bool) {
	if len(*r) < n {
		return nil, false
	}
	b := (*r)[:n]
	*r = (*r)[n:]
	return b, true
}

func (r *reader) u16() (uint16, bool) {
	b, ok := r.bytes(2)
	if !ok {
		return 0, false
	}
	return binary.BigEndian.Uint16(b), true
}

func (r *reader) vec8() ([]byte, bool) {
	n, ok := r.bytes(1)
	if !ok {
		return nil, false
	}
	return r.bytes(int(n[0]))
}

func (r *reader) vec16() ([]byte, bool) {
	n, ok := r.u16()
	if !ok {
		return nil, false
	}
	return r.bytes(int(n))
}

// hsReader splits one direction's handshake stream into messages, across
// records. Messages up to maxHandshakeKept are passed whole; longer ones
// are skipped (none the decryptor reads can be that long).
type hsReader struct {
	hdr  [4]byte
	hn   int
	left int
	keep bool
	msg  []byte
}

func (r *hsReader) feed(p []byte, fn func(mt byte, msg []byte)) {
	for len(p) > 0 {
		if r.hn < 4 {
			n := copy(r.hdr[r.hn:], p)
			r.hn += n
			p = p[n:]
			if r.hn < 4 {
				return
			}
			r.left = int(r.hdr[1])<<16 | int(r.hdr[2])<<8 | int(r.hdr[3])
			r.keep = r.left <= maxHandshakeKept
			r.msg = r.msg[:0]
		}
		n := min(r.left, len(p))
		if r.keep {
			r.msg = append(r.msg, p[:n]...)
		}
		r.left -= n
		p = p[n:]
		if r.left == 0 {
			r.hn = 0
			if r.keep {
				fn(r.hdr[0], r.msg)
			}
		}
	}
}
