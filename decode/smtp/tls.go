package smtp

import (
	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/internal/tlsinfo"
)

// tlsHandshake is the content type of a TLS handshake record.
const tlsHandshake = 0x16

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
	s.Anomaly(decode.AnomalyStartTLSPlaintext)
	s.Encrypted = false
	s.cmode, s.smode = cmCommand, smReply
}

// helloBuf feeds one direction's first TLS records to the shared
// handshake reader (SNI, version, ALPN, TLS<=1.2 certificate subject).
type helloBuf struct {
	r tlsinfo.Reader
}

func (h *helloBuf) add(p []byte, s *Session) {
	if h.r.Done() {
		return
	}
	if s.tls == nil {
		s.tls = &decode.TLS{}
	}
	h.r.Add(p, s.tls)
	if h.r.NotTLS {
		s.Anomaly(decode.AnomalyNotTLS)
	}
}
