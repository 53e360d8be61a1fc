package imapd

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/mailtap/mailtap/replay/server/internal/netsrv"
	"github.com/mailtap/mailtap/replay/server/internal/sasl"
)

// handleID answers ID (RFC 2971); the client's parameters are only logged.
func (c *conn) handleID(p *parser) error {
	if !p.sp() {
		return p.err
	}
	var params []string
	if p.consume('(') {
		for !p.consume(')') {
			if len(params) > 0 && !p.sp() {
				return p.err
			}
			s, isNil, ok := p.nstring()
			if !ok {
				return p.err
			}
			if isNil {
				s = "NIL"
			}
			params = append(params, s)
			if len(params) > 60 {
				return bad("Too many ID parameters")
			}
		}
	} else if _, isNil, ok := p.nstring(); !ok || !isNil {
		p.fail("expected ID parameter list or NIL")
		return p.err
	}
	if !p.end() {
		return p.err
	}
	c.srv.opts.Logger.Printf("imap[%d] id %q", c.id, params)
	c.untagged(`ID ("name" "mailtap" "vendor" "mailtap")`)
	return nil
}

func (c *conn) handleStartTLS(tag string, p *parser) error {
	if !p.end() {
		return p.err
	}
	if c.srv.opts.TLSConfig == nil || c.tls {
		return bad("STARTTLS not available")
	}
	if err := c.need(stateNotAuthenticated); err != nil {
		return err
	}
	c.bw.WriteString(tag + " OK Begin TLS negotiation now\r\n")
	if err := c.flush(); err != nil {
		return err
	}
	if c.br.Buffered() > 0 {
		return errors.New("plaintext pipelined after STARTTLS")
	}
	tc := tls.Server(c.nc, c.srv.opts.TLSConfig)
	tc.SetDeadline(time.Now().Add(c.srv.opts.ReadTimeout))
	if err := tc.Handshake(); err != nil {
		return err
	}
	tc.SetDeadline(time.Time{})
	c.setIO(tc)
	c.tls = true
	return errDone
}

func (c *conn) handleLogin(p *parser) error {
	var user, pass string
	var ok bool
	if !p.sp() {
		return p.err
	}
	if user, ok = p.astring(); !ok || !p.sp() {
		return p.err
	}
	if pass, ok = p.astring(); !ok || !p.end() {
		return p.err
	}
	if err := c.need(stateNotAuthenticated); err != nil {
		return err
	}
	if !c.authAllowed() {
		return no("PRIVACYREQUIRED", "Use STARTTLS first")
	}
	if err := c.blocked(); err != nil {
		return err
	}
	if !c.srv.opts.Store.Authenticate(user, pass) {
		return c.authFailed(user)
	}
	return c.loggedIn(user)
}

// blocked refuses a login from an address that has spent its failure
// budget (netsrv.AuthThrottle), even with the right password.
func (c *conn) blocked() error {
	if !c.srv.opts.Throttle.Blocked(netsrv.IP(c.remote)) {
		return nil
	}
	c.srv.opts.Logger.Printf("imap[%d] login refused: too many failures from this address", c.id)
	return no("UNAVAILABLE", "Too many authentication failures from your address, try again later")
}

// authFailed waits the throttle's delay, then answers NO
// [AUTHENTICATIONFAILED], which counts as a bad command.
func (c *conn) authFailed(user string) error {
	c.srv.opts.Logger.Printf("imap[%d] auth failed user=%q", c.id, user)
	c.srv.opts.Throttle.Failed(netsrv.IP(c.remote))
	return no("AUTHENTICATIONFAILED", "Invalid credentials")
}

func (c *conn) loggedIn(user string) error {
	c.user, c.state = user, stateAuthenticated
	c.srv.opts.Logger.Printf("imap[%d] login user=%q", c.id, user)
	return &statusError{"OK", "CAPABILITY " + c.capabilities(), "Logged in"}
}

func (c *conn) handleAuthenticate(tag string, p *parser) error {
	if !p.sp() {
		return p.err
	}
	mech, ok := p.atom()
	if !ok {
		return p.err
	}
	var initial []byte
	hasInitial := false
	// "AUTHENTICATE CRAM-MD5 " with a trailing space and nothing after it
	// (mutt 2.2 through Cyrus SASL sends that) has no initial response;
	// Dovecot accepts it too.
	if p.consume(' ') && !p.eof() {
		s, ok := p.atomWith("=")
		if !ok {
			return p.err
		}
		hasInitial = true
		if s != "=" {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return bad("Invalid base64 initial response")
			}
			initial = b
		} else {
			initial = []byte{}
		}
	}
	if !p.end() {
		return p.err
	}
	if err := c.need(stateNotAuthenticated); err != nil {
		return err
	}
	if !c.authAllowed() {
		return no("PRIVACYREQUIRED", "Use STARTTLS first")
	}
	if err := c.blocked(); err != nil {
		return err
	}
	var user string
	srv := sasl.New(mech, c.srv.opts.Store, sasl.ChallengeID(c.id, c.srv.opts.Clock().Unix(), c.srv.opts.Hostname),
		func(u string) { user = u })
	if srv == nil {
		return no("", "Unsupported authentication mechanism")
	}
	resp := initial
	if !hasInitial {
		resp = nil
	}
	for {
		challenge, done, err := srv.Next(resp)
		if err != nil {
			if errors.Is(err, sasl.ErrBadResponse) {
				return bad("Malformed authentication response")
			}
			return c.authFailed(user)
		}
		if done {
			return c.loggedIn(user)
		}
		c.bw.WriteString("+ " + base64.StdEncoding.EncodeToString(challenge) + "\r\n")
		if err := c.flush(); err != nil {
			return err
		}
		line, err := c.readLine()
		if errors.Is(err, netsrv.ErrLineTooLong) {
			return bad("Line too long")
		}
		if err != nil {
			return err
		}
		if string(line) == "*" {
			return bad("Authentication cancelled")
		}
		if resp, err = base64.StdEncoding.DecodeString(string(line)); err != nil {
			return bad("Invalid base64 response")
		}
	}
}

func (c *conn) handleEnable(p *parser) error {
	var enabled []string
	for p.consume(' ') {
		a, ok := p.atom()
		if !ok {
			return p.err
		}
		switch strings.ToUpper(a) {
		case "IMAP4REV2":
			if !c.rev2 {
				c.rev2 = true
				enabled = append(enabled, "IMAP4rev2")
			}
		case "UTF8=ACCEPT":
			if !c.utf8 {
				c.utf8 = true
				enabled = append(enabled, "UTF8=ACCEPT")
			}
		}
	}
	if !p.end() {
		return p.err
	}
	c.untagged(strings.TrimSpace("ENABLED " + strings.Join(enabled, " ")))
	return nil
}
