package smtp

import (
	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/internal/sasl"
)

// authAttempt follows one AUTH exchange (RFC 4954). The SASL decoding is
// shared with POP3 and IMAP; this keeps what SMTP needs to tell client
// continuation lines from new commands.
type authAttempt struct {
	ex      *sasl.Exchange
	initial string // initial response as sent (base64), "" if none
	n334    int    // 334 replies seen
	nresp   int    // client blobs seen (initial response included)
}

func newAuth(args string, s *Session) *authAttempt {
	mech, rest := nextField(args)
	if mech == "" {
		s.Anomaly(decode.AnomalyAuthInvalid)
		return &authAttempt{ex: sasl.New("")}
	}
	a := &authAttempt{ex: sasl.New(mech)}
	if ir, _ := nextField(rest); ir != "" {
		a.initial = ir
		a.blob(ir, true, s)
	}
	return a
}

// redactedArgs returns the AUTH arguments for a command record.
func (a *authAttempt) redactedArgs(s *Session) string {
	if a.initial == "" {
		return a.ex.Mech
	}
	return a.ex.Mech + " " + s.Redact(bound(a.initial, maxArgs))
}

// isAuthResponse tells whether a client line sent while AUTH is unanswered
// is a response to the server rather than a new command.
func (s *Session) isAuthResponse(line []byte) bool {
	a := s.authCmd.auth
	return a.n334 > a.nresp-boolInt(a.initial != "") || !isKnownCommand(line)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// onChallenge handles a 334 reply.
func (a *authAttempt) onChallenge(text string, _ *Session) {
	a.n334++
	a.ex.Challenge(text)
}

// response handles one client continuation line.
func (a *authAttempt) response(line string, s *Session) {
	a.blob(line, false, s)
}

func (a *authAttempt) blob(line string, initial bool, s *Session) {
	a.nresp++
	a.ex.Response(line, initial)
	if a.ex.Invalid() {
		s.Anomaly(decode.AnomalyAuthInvalid)
	}
}

// record builds the session's view of the attempt.
func (a *authAttempt) record(success *bool, s *Session) decode.Auth {
	return a.ex.Auth(success, s.Redact)
}
