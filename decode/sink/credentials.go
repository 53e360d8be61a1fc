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

// AuthRecord is one authentication attempt as a JSON line
// (`--credentials -f json`): the session's common fields with type "auth"
// and ts the session's start, then the attempt's fields as in a session
// record's "auths" (docs/schema.md).
type AuthRecord struct {
	decode.Header
	decode.Auth
}

// CredentialsJSON writes one AuthRecord per authentication attempt of
// every session record, as JSON lines, and ignores other records.
type CredentialsJSON struct {
	j *JSONL
	n int
}

// NewCredentialsJSON returns a JSON-lines credentials sink on w.
func NewCredentialsJSON(w io.Writer) *CredentialsJSON {
	return &CredentialsJSON{j: NewJSONL(w)}
}

// Emit implements decode.Sink.
func (c *CredentialsJSON) Emit(r decode.Record) {
	s, ok := r.(*decode.SessionRecord)
	if !ok {
		return
	}
	for _, a := range s.Auths {
		h := s.Header
		h.Type = TypeAuth
		c.j.Emit(&AuthRecord{Header: h, Auth: a})
		c.n++
	}
}

// TypeAuth is the type of an AuthRecord.
const TypeAuth = "auth"

// Flush writes buffered output.
func (c *CredentialsJSON) Flush() error { return c.j.Flush() }

// Count returns the attempts written.
func (c *CredentialsJSON) Count() int { return c.n }
