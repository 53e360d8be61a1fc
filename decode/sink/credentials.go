package sink

import (
	"bufio"
	"fmt"
	"io"

	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/textsafe"
)

// Credentials lists every authentication attempt, one line each, like
// tshark's "-z credentials": time, protocol, client, server, mechanism,
// user, secret (redacted unless the decoders were told to show secrets),
// outcome. It reads the auths of session records and ignores the rest.
type Credentials struct {
	w   *bufio.Writer
	err error
	n   int
}

// NewCredentials returns a credentials sink on w.
func NewCredentials(w io.Writer) *Credentials {
	c := &Credentials{w: bufio.NewWriter(w)}
	c.printf("%-27s %-4s %-21s %-21s %-11s %-30s %-20s %s\n", "time", "prot", "client", "server", "mechanism", "user", "secret", "result")
	return c
}

func (c *Credentials) printf(format string, args ...any) {
	if c.err == nil {
		_, c.err = fmt.Fprintf(c.w, format, safeArgs(args)...)
	}
}

// Emit implements decode.Sink.
func (c *Credentials) Emit(r decode.Record) {
	s, ok := r.(*decode.SessionRecord)
	if !ok {
		return
	}
	for _, a := range s.Auths {
		secret := a.Password
		if a.Response != "" {
			secret = a.Response
			if a.Challenge != "" {
				secret = a.Challenge + " " + a.Response
			}
		}
		if secret == "" {
			secret = "-"
		}
		user := "-"
		if a.User != "" {
			user = textsafe.Quote(a.User)
		}
		c.printf("%-27s %-4s %-21s %-21s %-11s %-30s %-20s %s\n", stamp(s.TS), s.Proto, s.Client, s.Server, a.Mechanism, user, secret, outcomeWord(a.Success))
		c.n++
	}
}

func outcomeWord(b *bool) string {
	switch {
	case b == nil:
		return "unknown"
	case *b:
		return "success"
	}
	return "failure"
}

// Flush writes buffered output.
func (c *Credentials) Flush() error {
	if c.err != nil {
		return c.err
	}
	return c.w.Flush()
}

// Count returns the attempts listed.
func (c *Credentials) Count() int { return c.n }
