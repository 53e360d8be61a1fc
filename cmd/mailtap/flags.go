package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/mailtap/mailtap/decode/textsafe"
)

// parsePort reads one TCP port, 1-65535, with an error that says what a
// port is rather than how strconv failed.
func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("not a port number (1-65535)")
	}
	return uint16(n), nil
}

// portListFlag is --port-filter: ports, comma-separated or repeated.
type portListFlag []uint16

func (p *portListFlag) Type() string { return "ports" }
func (p *portListFlag) String() string {
	s := make([]string, len(*p))
	for i, v := range *p {
		s[i] = strconv.Itoa(int(v))
	}
	return strings.Join(s, ",")
}
func (p *portListFlag) Set(v string) error {
	list := strings.Split(v, ",")
	for _, f := range list {
		port, err := parsePort(f)
		if err != nil && len(list) > 1 {
			return fmt.Errorf("%q: %w", f, err)
		}
		if err != nil {
			return err
		}
		*p = append(*p, port)
	}
	return nil
}

var _ pflag.Value = (*portListFlag)(nil)

// checkPortsValue validates a --ports value (PROTO=PORT[+tls],...) before
// dispatch parses it, so every mistake gets one plain sentence.
func checkPortsValue(v string) error {
	name, list, ok := strings.Cut(v, "=")
	switch {
	case !ok:
		return fmt.Errorf("want PROTO=PORTS, e.g. smtp=25,587 or imap=993+tls")
	case strings.TrimSpace(name) == "":
		return fmt.Errorf("no protocol before \"=\" (smtp, pop3, imap, or smtps, pop3s, imaps)")
	case strings.TrimSpace(list) == "":
		return fmt.Errorf("no ports after %q (e.g. %s=25,587)", name+"=", name)
	}
	for _, f := range strings.Split(list, ",") {
		if _, err := parsePort(strings.TrimSuffix(strings.TrimSpace(f), "+tls")); err != nil {
			return fmt.Errorf("%q: %w", f, err)
		}
	}
	return nil
}

// flagError rewrites pflag's "invalid argument "V" for "--F" flag: why"
// as "--F V: why", which says the value once.
func flagError(err error) error {
	var ive *pflag.InvalidValueError
	if errors.As(err, &ive) {
		return fmt.Errorf("--%s %s: %v", ive.GetFlag().Name, textsafe.String(ive.GetValue()), errors.Unwrap(ive))
	}
	return err
}

// formatFlag is -f: a string that remembers whether it was given, so that
// --credentials can honour an explicit -f json.
type formatFlag struct {
	v   *string
	set *bool
}

func (f formatFlag) Type() string { return "string" }
func (f formatFlag) String() string {
	if f.v == nil {
		return ""
	}
	return *f.v
}
func (f formatFlag) Set(s string) error {
	*f.v, *f.set = s, true
	return nil
}

// credentialsFormat is the output format of --credentials: the table,
// or JSON lines of login attempts when -f json was given.
func credentialsFormat(format string, given bool) string {
	switch {
	case given && (format == "json" || format == "jsonl"):
		return "credentials-json"
	case !given, format == "text", format == "txt", format == "credentials", format == "creds":
		return "credentials"
	}
	return format // not one of them: openOutput names it
}
