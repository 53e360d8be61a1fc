package smtp

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"unicode/utf16"

	"github.com/mailtap/mailtap/decode"
)

// authAttempt follows one AUTH exchange (RFC 4954).
type authAttempt struct {
	mech      string
	initial   string // initial response as sent (base64), "" if none
	user      string
	pass      string
	challenge string // CRAM-MD5 challenge
	digest    string // CRAM-MD5 response digest
	prompt    string // last 334 text, decoded
	n334      int    // 334 replies seen
	nresp     int    // client blobs seen (initial response included)
	cancelled bool
}

// maxSecret bounds decoded user names and secrets.
const maxSecret = 1024

func newAuth(args string, s *Session) *authAttempt {
	f := strings.Fields(args)
	a := &authAttempt{}
	if len(f) == 0 {
		s.Anomaly("auth_invalid")
		return a
	}
	a.mech = bound(strings.ToUpper(f[0]), 64)
	if len(f) > 1 {
		a.initial = f[1]
		a.blob(f[1], s)
	}
	return a
}

// redactedArgs returns the AUTH arguments for a command record.
func (a *authAttempt) redactedArgs(s *Session) string {
	if a.initial == "" {
		return a.mech
	}
	return a.mech + " " + s.Redact(bound(a.initial, maxArgs))
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
func (a *authAttempt) onChallenge(text string, s *Session) {
	a.n334++
	dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil {
		a.prompt = ""
		return
	}
	a.prompt = bound(string(dec), maxSecret)
	if a.mech == "CRAM-MD5" && a.challenge == "" {
		a.challenge = a.prompt
	}
}

// response handles one client continuation line.
func (a *authAttempt) response(line string, s *Session) {
	line = strings.TrimSpace(line)
	if line == "*" {
		a.cancelled = true
		a.nresp++
		return
	}
	a.blob(line, s)
}

// blob decodes one client blob (initial response or continuation).
func (a *authAttempt) blob(b64 string, s *Session) {
	idx := a.nresp
	a.nresp++
	var dec []byte
	if b64 != "=" {
		var err error
		dec, err = base64.StdEncoding.DecodeString(b64)
		if err != nil {
			s.Anomaly("auth_invalid")
			return
		}
	}
	switch a.mech {
	case "PLAIN":
		// authzid NUL authcid NUL passwd (RFC 4616).
		parts := bytes.SplitN(dec, []byte{0}, 3)
		if len(parts) != 3 {
			if len(dec) > 0 {
				s.Anomaly("auth_invalid")
			}
			return
		}
		a.user = bound(string(parts[1]), maxSecret)
		if a.user == "" {
			a.user = bound(string(parts[0]), maxSecret)
		}
		a.pass = bound(string(parts[2]), maxSecret)
	case "LOGIN":
		v := bound(string(dec), maxSecret)
		p := strings.ToLower(a.prompt)
		switch {
		case strings.Contains(p, "pass"):
			a.pass = v
		case strings.Contains(p, "user"):
			a.user = v
		case idx == 0:
			a.user = v
		case idx == 1:
			a.pass = v
		}
	case "CRAM-MD5":
		// "user hexdigest" (RFC 2195).
		v := string(dec)
		if i := strings.LastIndexByte(v, ' '); i >= 0 {
			a.user, a.digest = bound(v[:i], maxSecret), bound(v[i+1:], maxSecret)
		}
	case "XOAUTH2", "OAUTHBEARER":
		a.oauth(string(dec))
	case "NTLM":
		if u := ntlmUser(dec); u != "" {
			a.user = bound(u, maxSecret)
		}
	default:
		if strings.HasPrefix(a.mech, "SCRAM-") && idx == 0 {
			// client-first-message: gs2-header "n=" user "," "r=" nonce (RFC 5802).
			for _, kv := range strings.Split(string(dec), ",") {
				if strings.HasPrefix(kv, "n=") {
					a.user = bound(strings.NewReplacer("=2C", ",", "=3D", "=").Replace(kv[2:]), maxSecret)
					break
				}
			}
		}
	}
}

// oauth parses XOAUTH2 ("user=U^Aauth=Bearer T^A^A") and OAUTHBEARER
// ("n,a=U,^Ahost=...^Aauth=Bearer T^A^A", RFC 7628) responses.
func (a *authAttempt) oauth(v string) {
	if a.pass != "" {
		return // the empty response after an error challenge
	}
	for _, kv := range strings.Split(v, "\x01") {
		switch {
		case strings.HasPrefix(kv, "user="):
			a.user = bound(kv[5:], maxSecret)
		case strings.HasPrefix(kv, "auth="):
			tok := kv[5:]
			if len(tok) > 7 && strings.EqualFold(tok[:7], "Bearer ") {
				tok = tok[7:]
			}
			a.pass = bound(tok, maxSecret)
		case strings.HasPrefix(kv, "n,") || strings.HasPrefix(kv, "y,") || strings.HasPrefix(kv, "p="):
			for _, f := range strings.Split(kv, ",") {
				if strings.HasPrefix(f, "a=") {
					a.user = bound(f[2:], maxSecret)
				}
			}
		}
	}
}

// record builds the session's view of the attempt.
func (a *authAttempt) record(success *bool, s *Session) decode.Auth {
	if a.cancelled && success != nil && *success {
		success = decode.Bool(false)
	}
	return decode.Auth{
		Mechanism: a.mech,
		User:      a.user,
		Password:  s.Redact(a.pass),
		Challenge: s.Redact(a.challenge),
		Response:  s.Redact(a.digest),
		Success:   success,
	}
}

// ntlmUser returns the user name (without its domain, as Arkime reports
// it) from an NTLM AUTHENTICATE message ([MS-NLMP] 2.2.1.3), or "" for
// other messages.
func ntlmUser(b []byte) string {
	if len(b) < 64 || string(b[:8]) != "NTLMSSP\x00" || binary.LittleEndian.Uint32(b[8:]) != 3 {
		return ""
	}
	unicode := binary.LittleEndian.Uint32(b[60:])&1 != 0
	field := func(off int) string {
		n := int(binary.LittleEndian.Uint16(b[off:]))
		at := int(binary.LittleEndian.Uint32(b[off+4:]))
		if n == 0 || at < 0 || at > len(b) || n > len(b)-at {
			return ""
		}
		v := b[at : at+n]
		if !unicode {
			return string(v)
		}
		u := make([]uint16, len(v)/2)
		for i := range u {
			u[i] = binary.LittleEndian.Uint16(v[2*i:])
		}
		return string(utf16.Decode(u))
	}
	return field(36)
}
