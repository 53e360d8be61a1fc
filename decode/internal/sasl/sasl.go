// Package sasl decodes the client side of SASL exchanges as SMTP AUTH
// (RFC 4954), POP3 AUTH (RFC 5034) and IMAP AUTHENTICATE (RFC 3501,
// SASL-IR RFC 4959) carry them: base64 lines, an optional initial
// response, "=" for an empty one and "*" to cancel. It extracts the user
// and the secret of PLAIN (RFC 4616), LOGIN, CRAM-MD5 (RFC 2195), XOAUTH2,
// OAUTHBEARER (RFC 7628), EXTERNAL and the user of SCRAM-* (RFC 5802),
// DIGEST-MD5 (RFC 2831) and NTLM ([MS-NLMP]). Every kept string is bounded.
package sasl

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"unicode/utf16"

	"github.com/mailtap/mailtap/decode"
)

// MaxSecret bounds each decoded user name, password or token.
const MaxSecret = 1024

// maxSteps bounds the client responses kept.
const maxSteps = 8

// Exchange follows one authentication exchange.
type Exchange struct {
	Mech      string // upper case
	prompts   []string
	responses [][]byte
	challenge string
	cancelled bool
	invalid   bool
	steps     int
}

// New starts an exchange for mech.
func New(mech string) *Exchange {
	return &Exchange{Mech: bound(strings.ToUpper(strings.TrimSpace(mech)), 64)}
}

// Challenge records a server challenge (the base64 text of a 334 or "+ "
// line).
func (e *Exchange) Challenge(b64 string) {
	dec, ok := decodeB64(b64)
	text := ""
	if ok {
		text = bound(string(dec), MaxSecret)
	}
	if len(e.prompts) < maxSteps {
		e.prompts = append(e.prompts, text)
	}
	if e.challenge == "" && (e.Mech == "CRAM-MD5" || e.Mech == "DIGEST-MD5") {
		e.challenge = text
	}
}

// Response records one client line: the initial response (initial=true)
// or an answer to a challenge.
func (e *Exchange) Response(line string, initial bool) {
	line = strings.TrimSpace(line)
	e.steps++
	switch {
	case line == "*" && !initial:
		e.cancelled = true
		return
	case line == "=":
		line = ""
	}
	dec, ok := decodeB64(line)
	if !ok {
		e.invalid = true
	}
	if len(e.responses) < maxSteps {
		e.responses = append(e.responses, dec)
	}
}

// Steps returns the client lines seen (initial response included).
func (e *Exchange) Steps() int { return e.steps }

// Cancelled reports whether the client answered "*".
func (e *Exchange) Cancelled() bool { return e.cancelled }

// Invalid reports a client line that was not base64.
func (e *Exchange) Invalid() bool { return e.invalid }

// decodeB64 decodes standard base64, padding optional. Undecodable input
// is returned as it is, with ok=false.
func decodeB64(s string) ([]byte, bool) {
	s = strings.TrimSpace(s)
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, true
	}
	if b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "=")); err == nil {
		return b, true
	}
	return []byte(s), false
}

func (e *Exchange) resp(i int) []byte {
	if i < len(e.responses) {
		return e.responses[i]
	}
	return nil
}

// Credentials returns what the exchange revealed, secrets in clear.
func (e *Exchange) Credentials() (user, password, challenge, response string) {
	switch e.Mech {
	case "PLAIN":
		parts := bytes.SplitN(e.resp(0), []byte{0}, 3)
		if len(parts) == 3 {
			user = string(parts[1])
			if user == "" {
				user = string(parts[0])
			}
			password = string(parts[2])
		}
	case "LOGIN":
		// Answers follow "Username:" / "Password:" prompts; some clients
		// send the user name as an initial response.
		for i, r := range e.responses {
			prompt := ""
			if off := len(e.responses) - len(e.prompts); i-off >= 0 && i-off < len(e.prompts) {
				prompt = strings.ToLower(e.prompts[i-off])
			}
			switch {
			case strings.Contains(prompt, "pass"):
				password = string(r)
			case strings.Contains(prompt, "user"):
				user = string(r)
			case i == 0:
				user = string(r)
			case i == 1:
				password = string(r)
			}
		}
	case "CRAM-MD5":
		r := string(e.resp(0))
		if i := strings.LastIndexByte(r, ' '); i > 0 {
			user, response = r[:i], r[i+1:]
		}
		challenge = e.challenge
	case "XOAUTH2", "OAUTHBEARER":
		for _, r := range e.responses {
			u, tok := oauth(string(r))
			if u != "" {
				user = u
			}
			if tok != "" {
				password = tok
			}
		}
	case "EXTERNAL":
		user = string(e.resp(0))
	case "NTLM":
		for _, r := range e.responses {
			if u := ntlmUser(r); u != "" {
				user = u
			}
		}
	case "DIGEST-MD5":
		// username="..." in the client's response (RFC 2831 §2.1.2).
		r := string(e.resp(0))
		if i := strings.Index(r, `username="`); i >= 0 {
			u := r[i+10:]
			if j := strings.IndexByte(u, '"'); j >= 0 {
				user = u[:j]
			}
		}
		challenge = e.challenge
		response = r
	default:
		if strings.HasPrefix(e.Mech, "SCRAM-") {
			for _, kv := range strings.Split(string(e.resp(0)), ",") {
				if v, ok := strings.CutPrefix(kv, "n="); ok {
					user = strings.NewReplacer("=2C", ",", "=3D", "=").Replace(v)
					break
				}
			}
		}
	}
	return bound(user, MaxSecret), bound(password, MaxSecret), bound(challenge, MaxSecret), bound(response, MaxSecret)
}

// ntlmUser returns the user name (without its domain, as Arkime reports
// it) from an NTLM AUTHENTICATE message ([MS-NLMP] 2.2.1.3), or "" for
// the other NTLM messages.
func ntlmUser(b []byte) string {
	if len(b) < 64 || string(b[:8]) != "NTLMSSP\x00" || binary.LittleEndian.Uint32(b[8:]) != 3 {
		return ""
	}
	unicode := binary.LittleEndian.Uint32(b[60:])&1 != 0
	n := int(binary.LittleEndian.Uint16(b[36:]))
	at := int(binary.LittleEndian.Uint32(b[40:]))
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

// oauth parses XOAUTH2 ("user=U^Aauth=Bearer T^A^A") and OAUTHBEARER
// ("n,a=U,^Ahost=H^Aauth=Bearer T^A^A").
func oauth(v string) (user, token string) {
	for _, kv := range strings.Split(v, "\x01") {
		switch {
		case strings.HasPrefix(kv, "user="):
			user = kv[5:]
		case strings.HasPrefix(kv, "auth="):
			token = kv[5:]
			if len(token) > 7 && strings.EqualFold(token[:7], "Bearer ") {
				token = token[7:]
			}
		case strings.HasPrefix(kv, "n,") || strings.HasPrefix(kv, "y,") || strings.HasPrefix(kv, "p="):
			for _, f := range strings.Split(kv, ",") {
				if u, ok := strings.CutPrefix(f, "a="); ok {
					user = u
				}
			}
		}
	}
	return user, token
}

// Auth builds the record of the attempt; redact hides secrets unless the
// user asked for them (decode.Base.Redact). A cancelled exchange never
// counts as a success.
func (e *Exchange) Auth(success *bool, redact func(string) string) decode.Auth {
	if e.cancelled && success != nil && *success {
		success = decode.Bool(false)
	}
	user, password, challenge, response := e.Credentials()
	return decode.Auth{
		Mechanism: e.Mech,
		User:      user,
		Password:  redact(password),
		Challenge: redact(challenge),
		Response:  redact(response),
		Success:   success,
	}
}

func bound(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
