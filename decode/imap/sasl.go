package imap

import (
	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/internal/sasl"
)

// authState follows one LOGIN or AUTHENTICATE exchange.
type authState struct {
	index int // in Session.auths
	ex    *sasl.Exchange
}

func (x *Session) saslCommand() *command {
	for i := len(x.order) - 1; i >= 0; i-- {
		if c := x.order[i]; c.auth != nil && c.auth.ex != nil {
			return c
		}
	}
	return nil
}

// startSASL begins an AUTHENTICATE exchange with an optional initial
// response (SASL-IR, RFC 4959).
func (x *Session) startSASL(c *command, mech, ir string) {
	ex := sasl.New(mech)
	x.addAuth(decode.Auth{Mechanism: ex.Mech})
	c.auth = &authState{index: len(x.Auths) - 1, ex: ex}
	c.args = ex.Mech
	x.c.tok.Raw = true
	if ir != "" {
		c.args += " " + x.Redact(ir)
		ex.Response(ir, true)
		x.updateAuth(c.auth)
	}
}

func (x *Session) saslChallenge(a *authState, text string) {
	a.ex.Challenge(text)
}

// saslResponse reads one client line of c's exchange.
func (x *Session) saslResponse(c *command, line string) {
	a := c.auth
	a.ex.Response(line, false)
	if a.ex.Invalid() {
		x.Anomaly(decode.AnomalySASLBadBase64)
	}
	x.updateAuth(a)
}

func (x *Session) updateAuth(a *authState) {
	if a.index >= len(x.Auths) {
		return
	}
	au := &x.Auths[a.index]
	user, pass, ch, resp := a.ex.Credentials()
	if user != "" {
		au.User = user
	}
	au.Password = x.Redact(pass)
	au.Challenge = x.Redact(ch)
	au.Response = x.Redact(resp)
	if a.ex.Cancelled() {
		au.Success = decode.Bool(false)
	}
}
