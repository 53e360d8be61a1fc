// Package sasl implements the server side of the SASL mechanisms the
// built-in servers offer: PLAIN (RFC 4616), LOGIN (draft-murchison-sasl-login)
// and CRAM-MD5 (RFC 2195).
//
// A Server has the same method set as go-sasl's sasl.Server, so the SMTP
// server can hand it to go-smtp unchanged; POP3 and IMAP drive it themselves
// with Exchange.
package sasl

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrAuthFailed is returned when the credentials do not match.
var ErrAuthFailed = errors.New("sasl: authentication failed")

// ErrBadResponse is returned for a response that does not parse.
var ErrBadResponse = errors.New("sasl: malformed response")

// Credentials looks up users. Authenticate checks a password; Password
// returns the clear-text password (needed by CRAM-MD5).
type Credentials interface {
	Authenticate(user, password string) bool
	Password(user string) (string, bool)
}

// Server is one authentication exchange. Next receives the client's
// response (nil on the first call without an initial response) and returns
// the next challenge, or done. On success User tells who logged in.
type Server interface {
	Next(response []byte) (challenge []byte, done bool, err error)
}

// Mechanisms lists the supported mechanism names.
var Mechanisms = []string{"PLAIN", "LOGIN", "CRAM-MD5"}

// New returns a server for a mechanism (case-insensitive), or nil if the
// mechanism is unknown. onSuccess is called with the user name when the
// exchange succeeds. challengeID is the unique part of a CRAM-MD5 challenge,
// e.g. "<123.456@host>".
func New(mech string, creds Credentials, challengeID string, onSuccess func(user string)) Server {
	switch strings.ToUpper(mech) {
	case "PLAIN":
		return &plain{creds: creds, ok: onSuccess}
	case "LOGIN":
		return &login{creds: creds, ok: onSuccess}
	case "CRAM-MD5":
		return &cram{creds: creds, ok: onSuccess, challenge: challengeID}
	}
	return nil
}

type plain struct {
	creds Credentials
	ok    func(string)
	asked bool
}

func (p *plain) Next(resp []byte) ([]byte, bool, error) {
	if resp == nil && !p.asked {
		p.asked = true
		return []byte{}, false, nil
	}
	parts := bytes.Split(resp, []byte{0})
	if len(parts) != 3 {
		return nil, true, ErrBadResponse
	}
	authz, user, pass := string(parts[0]), string(parts[1]), string(parts[2])
	if authz != "" && authz != user {
		return nil, true, ErrAuthFailed
	}
	if !p.creds.Authenticate(user, pass) {
		return nil, true, ErrAuthFailed
	}
	p.ok(user)
	return nil, true, nil
}

type login struct {
	creds Credentials
	ok    func(string)
	step  int
	user  string
}

func (l *login) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step = 1
		if resp == nil {
			return []byte("Username:"), false, nil
		}
		fallthrough
	case 1:
		l.user = string(resp)
		l.step = 2
		return []byte("Password:"), false, nil
	default:
		if !l.creds.Authenticate(l.user, string(resp)) {
			return nil, true, ErrAuthFailed
		}
		l.ok(l.user)
		return nil, true, nil
	}
}

type cram struct {
	creds     Credentials
	ok        func(string)
	challenge string
	sent      bool
}

func (c *cram) Next(resp []byte) ([]byte, bool, error) {
	if !c.sent {
		c.sent = true
		if len(resp) > 0 {
			return nil, true, ErrBadResponse // CRAM-MD5 has no initial response
		}
		return []byte(c.challenge), false, nil
	}
	user, digest, ok := strings.Cut(string(resp), " ")
	if !ok {
		return nil, true, ErrBadResponse
	}
	pass, found := c.creds.Password(user)
	if !found {
		return nil, true, ErrAuthFailed
	}
	want := CRAMDigest(pass, c.challenge)
	if !hmac.Equal([]byte(strings.ToLower(digest)), []byte(want)) {
		return nil, true, ErrAuthFailed
	}
	c.ok(user)
	return nil, true, nil
}

// CRAMDigest is the hex HMAC-MD5 of challenge keyed by password (RFC 2195).
func CRAMDigest(password, challenge string) string {
	m := hmac.New(md5.New, []byte(password))
	m.Write([]byte(challenge))
	return hex.EncodeToString(m.Sum(nil))
}

// ChallengeID builds a CRAM-MD5/APOP style challenge "<n.t@host>".
func ChallengeID(n uint64, t int64, host string) string {
	return fmt.Sprintf("<%d.%d@%s>", n, t, host)
}
