package decode

// This file reads what is visible of a TLS handshake from the bytes that
// follow STARTTLS/STLS (or start an implicit-TLS connection): the
// ClientHello's SNI, offered versions and ALPN, the ServerHello's chosen
// version, and, for TLS 1.2 and older where it travels in clear, the
// server certificate's subject. Every buffer is bounded; malformed input
// just ends the reading. Base.TLSData feeds it.

import (
	"crypto/x509"
	"fmt"
)

const (
	recHandshake = 0x16
	hsClient     = 1
	hsServer     = 2
	hsCert       = 11
	extSNI       = 0
	extALPN      = 16
	extVersions  = 43
	// maxHandshake bounds the handshake bytes collected per direction:
	// enough for a hello and a typical certificate chain.
	maxHandshake = 64 << 10
	maxRecords   = 16
	maxRecord    = 16384 + 2048
	// MaxTLSBuffered bounds what a tlsHello holds at any time.
	MaxTLSBuffered = 5 + maxRecord + maxHandshake + maxRecord
)

// IsTLSRecordStart reports whether p begins like a TLS handshake record (so a
// decoder can tell TLS from plaintext after a STARTTLS go-ahead). It needs
// at least 3 bytes to say yes.
func IsTLSRecordStart(p []byte) bool {
	return len(p) >= 3 && p[0] == recHandshake && p[1] == 3 && p[2] <= 4
}

// tlsHello collects one direction's handshake messages from TLS records.
// The zero value is ready. Feed it bytes in order with Add.
type tlsHello struct {
	rec     []byte // partial record header/body
	hs      []byte // handshake message bytes across records
	records int
	done    bool
	NotTLS  bool // the bytes did not start with a handshake record
}

// Buffered returns the bytes held (for tests of the bounds).
func (r *tlsHello) Buffered() int { return len(r.rec) + len(r.hs) }

// Done reports whether the reader wants no more bytes.
func (r *tlsHello) Done() bool { return r.done }

// Add feeds bytes and updates t with what it learns. It returns true once
// nothing more will be read.
func (r *tlsHello) Add(p []byte, t *TLS) bool {
	for len(p) > 0 && !r.done {
		if len(r.rec) < 5 {
			n := min(5-len(r.rec), len(p))
			r.rec = append(r.rec, p[:n]...)
			p = p[n:]
			if len(r.rec) >= 1 && r.rec[0] != recHandshake {
				if r.records == 0 {
					r.NotTLS = true
				}
				r.done = true
				break
			}
			continue
		}
		size := int(r.rec[3])<<8 | int(r.rec[4])
		if size > maxRecord {
			r.done = true // not a valid TLS record (RFC 8446 §5.1)
			break
		}
		have := len(r.rec) - 5
		n := min(size-have, len(p))
		r.rec = append(r.rec, p[:n]...)
		p = p[n:]
		if len(r.rec)-5 < size {
			continue
		}
		r.records++
		if len(r.hs)+size > maxHandshake+maxRecord {
			r.done = true
			break
		}
		r.hs = append(r.hs, r.rec[5:]...)
		r.rec = r.rec[:0]
		r.parse(t)
		if r.records >= maxRecords || len(r.hs) > maxHandshake {
			r.done = true
		}
	}
	return r.done
}

// parse consumes complete handshake messages from r.hs.
func (r *tlsHello) parse(t *TLS) {
	for len(r.hs) >= 4 && !r.done {
		typ := r.hs[0]
		n := int(r.hs[1])<<16 | int(r.hs[2])<<8 | int(r.hs[3])
		if n > maxHandshake {
			r.done = true
			return
		}
		if len(r.hs) < 4+n {
			return
		}
		body := r.hs[4 : 4+n]
		switch typ {
		case hsClient:
			clientHello(body, t)
			r.done = true // the client's next messages are encrypted or uninteresting
		case hsServer:
			if serverHello(body, t) {
				r.done = true // TLS 1.3: the rest is encrypted
			}
		case hsCert:
			certificate(body, t)
			r.done = true
		default:
			r.done = true
		}
		r.hs = r.hs[4+n:]
	}
}

type reader struct {
	b   []byte
	bad bool
}

func (r *reader) take(n int) []byte {
	if r.bad || n < 0 || len(r.b) < n {
		r.bad = true
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() int {
	b := r.take(1)
	if b == nil {
		return 0
	}
	return int(b[0])
}

func (r *reader) u16() int {
	b := r.take(2)
	if b == nil {
		return 0
	}
	return int(b[0])<<8 | int(b[1])
}

func (r *reader) u24() int {
	b := r.take(3)
	if b == nil {
		return 0
	}
	return int(b[0])<<16 | int(b[1])<<8 | int(b[2])
}

func (r *reader) vec8() []byte  { return r.take(r.u8()) }
func (r *reader) vec16() []byte { return r.take(r.u16()) }
func (r *reader) vec24() []byte { return r.take(r.u24()) }

func clientHello(b []byte, t *TLS) {
	r := reader{b: b}
	version := r.u16()
	r.take(32)
	r.vec8()
	r.vec16()
	r.vec8()
	if r.bad {
		return
	}
	best := version
	exts := reader{b: r.vec16()}
	for !exts.bad && len(exts.b) >= 4 {
		typ := exts.u16()
		data := reader{b: exts.vec16()}
		switch typ {
		case extSNI:
			list := reader{b: data.vec16()}
			for !list.bad && len(list.b) > 0 {
				nt := list.u8()
				name := list.vec16()
				if nt == 0 && !list.bad && t.SNI == "" {
					t.SNI = tlsPrintable(name)
				}
			}
		case extALPN:
			list := reader{b: data.vec16()}
			for !list.bad && len(list.b) > 0 && len(t.ALPN) < 16 {
				if p := list.vec8(); !list.bad {
					t.ALPN = append(t.ALPN, tlsPrintable(p))
				}
			}
		case extVersions:
			vs := reader{b: data.vec8()}
			for !vs.bad && len(vs.b) >= 2 {
				v := vs.u16()
				if v&0x0f0f != 0x0a0a && v > best { // skip GREASE
					best = v
				}
			}
		}
	}
	if t.Version == "" {
		t.Version = tlsVersion(best)
	}
}

// serverHello records the chosen version; it returns true for TLS 1.3.
func serverHello(b []byte, t *TLS) bool {
	r := reader{b: b}
	version := r.u16()
	r.take(32)
	r.vec8()
	r.u16()
	r.u8()
	if r.bad {
		return false
	}
	exts := reader{b: r.vec16()}
	for !exts.bad && len(exts.b) >= 4 {
		typ := exts.u16()
		data := reader{b: exts.vec16()}
		if typ == extVersions {
			if v := data.u16(); !data.bad {
				version = v
			}
		}
	}
	t.Version = tlsVersion(version)
	return version >= 0x0304
}

func certificate(b []byte, t *TLS) {
	r := reader{b: b}
	list := reader{b: r.vec24()}
	der := list.vec24()
	if list.bad || len(der) == 0 {
		return
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return
	}
	t.Subject = c.Subject.String()
	t.Issuer = c.Issuer.String()
}

// Version names a TLS protocol version.
func tlsVersion(v int) string {
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

func tlsPrintable(b []byte) string {
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
