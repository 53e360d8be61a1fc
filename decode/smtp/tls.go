package smtp

import (
	"github.com/mailtap/mailtap/decode"
)

// tlsHandshake is the content type of a TLS handshake record.
const tlsHandshake = 0x16

// beginTLS handles the 220 reply to STARTTLS.
func (s *Session) beginTLS() {
	if s.TLS == nil {
		s.TLS = &decode.TLS{StartTLS: true}
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
	if s.TLS == nil {
		s.TLS = &decode.TLS{StartTLS: true}
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

// tlsData hands bytes of the TLS stream to decode.Base.
func (s *Session) tlsData(dir decode.Direction, p []byte) {
	if s.TLSData(dir, p) {
		s.Anomaly(decode.AnomalyNotTLS)
	}
}
