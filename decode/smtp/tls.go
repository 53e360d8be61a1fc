package smtp

import (
	"fmt"

	"github.com/mailtap/mailtap/decode"
)

// TLS record and handshake constants (RFC 8446, RFC 5246).
const (
	tlsHandshake   = 0x16
	tlsClientHello = 1
	tlsServerHello = 2
	extServerName  = 0
	extSupportedV  = 43
	maxTLSRecord   = 5 + 16384 + 256
)

// beginTLS handles the 220 reply to STARTTLS.
func (s *Session) beginTLS() {
	if s.tls == nil {
		s.tls = &decode.TLS{StartTLS: true}
	}
	s.Encrypted = true
	s.endCur()
	if s.cmode == cmTLS {
		// The client already started its handshake.
		s.smode = smTLS
		return
	}
	s.cl.Reset()
	s.cmode, s.smode = cmTLSCheck, smTLSCheck
}

// enterTLS confirms that the bytes after STARTTLS are TLS.
func (s *Session) enterTLS() {
	if s.tls == nil {
		s.tls = &decode.TLS{StartTLS: true}
	}
	s.Encrypted = true
	s.cmode = cmTLS
	if s.smode == smTLSCheck {
		s.smode = smTLS
	}
}

// tlsPlaintext handles plaintext after STARTTLS's 220: the capture holds
// the decrypted session, so decoding goes on.
func (s *Session) tlsPlaintext() {
	s.Anomaly("starttls_plaintext")
	s.Encrypted = false
	s.cmode, s.smode = cmCommand, smReply
}

// helloBuf collects the first TLS record of one direction and parses the
// hello in it.
type helloBuf struct {
	buf  []byte
	done bool
}

func (h *helloBuf) add(p []byte, s *Session) {
	if h.done {
		return
	}
	if len(h.buf) == 0 && p[0] != tlsHandshake {
		s.Anomaly("not_tls")
		h.done = true
		return
	}
	room := maxTLSRecord - len(h.buf)
	h.buf = append(h.buf, p[:min(room, len(p))]...)
	if len(h.buf) < 5 {
		return
	}
	n := int(h.buf[3])<<8 | int(h.buf[4])
	if len(h.buf) < 5+n && len(h.buf) < maxTLSRecord {
		return
	}
	h.done = true
	body := h.buf[5:min(len(h.buf), 5+n)]
	h.buf = nil
	hello, ok := parseHello(body)
	if !ok {
		return
	}
	if s.tls == nil {
		s.tls = &decode.TLS{}
	}
	if hello.sni != "" {
		s.tls.SNI = hello.sni
	}
	// The server's choice wins over the client's best offer.
	if hello.version != 0 && (hello.server || s.tls.Version == "") {
		s.tls.Version = tlsVersion(hello.version)
	}
}

// hello is what parseHello extracts from a ClientHello or ServerHello.
type hello struct {
	server  bool
	sni     string
	version uint16 // ClientHello: highest offered; ServerHello: selected
}

// parseHello parses the handshake message at the start of a TLS record's
// body. It tolerates a message cut at the record's end as long as the
// fields it needs are inside.
func parseHello(b []byte) (h hello, ok bool) {
	r := reader{b: b}
	typ := r.u8()
	r.u24()
	if typ != tlsClientHello && typ != tlsServerHello {
		return h, false
	}
	h.server = typ == tlsServerHello
	legacy := r.u16()
	r.skip(32) // random
	r.vec8()   // session id
	if h.server {
		r.u16() // cipher suite
		r.u8()  // compression
	} else {
		r.vec16() // cipher suites
		r.vec8()  // compressions
	}
	if r.bad {
		return h, false
	}
	h.version = legacy
	exts := reader{b: r.rest16()}
	for !exts.bad && len(exts.b) >= 4 {
		typ := exts.u16()
		data := reader{b: exts.vec16()}
		switch typ {
		case extServerName:
			if h.server {
				break
			}
			list := reader{b: data.vec16()}
			for !list.bad && len(list.b) > 0 {
				nt := list.u8()
				name := list.vec16()
				if nt == 0 && !list.bad && h.sni == "" {
					h.sni = printable(name)
				}
			}
		case extSupportedV:
			if h.server {
				if v := data.u16(); !data.bad {
					h.version = v
				}
				break
			}
			vs := reader{b: data.vec8()}
			best := uint16(0)
			for !vs.bad && len(vs.b) >= 2 {
				v := vs.u16()
				if v&0x0f0f == 0x0a0a { // GREASE
					continue
				}
				best = max(best, v)
			}
			if best != 0 {
				h.version = best
			}
		}
	}
	return h, true
}

func tlsVersion(v uint16) string {
	switch v {
	case 0x0300:
		return "SSLv3"
	case 0x0301:
		return "TLSv1.0"
	case 0x0302:
		return "TLSv1.1"
	case 0x0303:
		return "TLSv1.2"
	case 0x0304:
		return "TLSv1.3"
	}
	return fmt.Sprintf("0x%04x", v)
}

// printable keeps a host name printable ASCII.
func printable(b []byte) string {
	if len(b) > 255 {
		b = b[:255]
	}
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c > ' ' && c < 0x7f {
			out = append(out, c)
		}
	}
	return string(out)
}

// reader is a bounds-checked big-endian reader with a sticky error.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) take(n int) []byte {
	if r.bad || n > len(r.b) {
		r.bad = true
		r.b = nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) skip(n int) { r.take(n) }

func (r *reader) u8() int {
	v := r.take(1)
	if v == nil {
		return 0
	}
	return int(v[0])
}

func (r *reader) u16() uint16 {
	v := r.take(2)
	if v == nil {
		return 0
	}
	return uint16(v[0])<<8 | uint16(v[1])
}

func (r *reader) u24() int {
	v := r.take(3)
	if v == nil {
		return 0
	}
	return int(v[0])<<16 | int(v[1])<<8 | int(v[2])
}

func (r *reader) vec8() []byte { return r.take(r.u8()) }

// rest16 reads a 16-bit length vector, or what is left of it when the
// message was cut short.
func (r *reader) rest16() []byte { return r.take(min(int(r.u16()), len(r.b))) }
func (r *reader) vec16() []byte  { return r.take(int(r.u16())) }
