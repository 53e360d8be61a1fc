package tui

import (
	"strings"
)

// Filter is a parsed filter expression: words that must all match a
// session. A free word matches anywhere in the session's text (id,
// protocol, addresses, state, users, HELO, envelope and header addresses,
// subjects, anomalies); key:value words match one field:
//
//	proto:imap  user:alice  from:x@y  to:z  subject:word  auth:fail|ok|none
//	state:partial  has:attachment|auth|anomaly|rejected  anomaly:gap
//
// "-" before a word negates it; "quoted values" may hold spaces. Matching
// is case-insensitive and by substring, except proto and auth (exact).
type Filter struct {
	terms []term
	// Errs lists the words with an unknown key or value; they match as
	// free text instead.
	Errs []string
}

type term struct {
	key, val string
	neg      bool
}

// filterKeys are the keys a word may have.
var filterKeys = map[string]bool{
	"proto": true, "user": true, "from": true, "to": true, "subject": true, "auth": true,
	"state": true, "has": true, "anomaly": true,
}

// ParseFilter parses a filter expression (see Filter). It never fails:
// words it cannot read as key:value are free text.
func ParseFilter(s string) *Filter {
	f := &Filter{}
	for _, w := range splitWords(s) {
		t := term{}
		if strings.HasPrefix(w, "-") && len(w) > 1 {
			t.neg, w = true, w[1:]
		}
		k, v, ok := strings.Cut(w, ":")
		k = strings.ToLower(k)
		if ok && filterKeys[k] && v != "" {
			t.key, t.val = k, strings.ToLower(strings.Trim(v, `"`))
			if !validValue(t.key, t.val) {
				f.Errs = append(f.Errs, w)
			}
		} else {
			t.val = strings.ToLower(strings.Trim(w, `"`))
		}
		if t.val != "" {
			f.terms = append(f.terms, t)
		}
	}
	return f
}

func validValue(key, val string) bool {
	switch key {
	case "auth":
		return val == "fail" || val == "ok" || val == "none"
	case "has":
		return val == "attachment" || val == "auth" || val == "anomaly" || val == "rejected"
	}
	return true
}

// splitWords splits on spaces outside double quotes.
func splitWords(s string) []string {
	var out []string
	var b strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			b.WriteRune(r)
		case r == ' ' && !quoted:
			if b.Len() > 0 {
				out = append(out, b.String())
				b.Reset()
			}
		default:
			b.WriteRune(r)
		}
	}
	if b.Len() > 0 {
		out = append(out, b.String())
	}
	return out
}

// Empty reports whether f matches everything.
func (f *Filter) Empty() bool { return f == nil || len(f.terms) == 0 }

// Match reports whether s matches every word of f. The caller holds the
// model's mutex (s is one of its sessions or a copy).
func (f *Filter) Match(s *Session) bool {
	if f == nil {
		return true
	}
	for _, t := range f.terms {
		if t.match(s) == t.neg {
			return false
		}
	}
	return true
}

func (t term) match(s *Session) bool {
	switch t.key {
	case "":
		return strings.Contains(s.search, t.val) || strings.Contains(strings.ToLower(s.State), t.val) ||
			strings.Contains(s.from, t.val) || strings.Contains(s.to, t.val) || strings.Contains(strings.ToLower(s.Subject), t.val)
	case "proto":
		return string(s.Proto) == t.val
	case "user":
		return strings.Contains(strings.ToLower(s.User), t.val) || strings.Contains(s.users, t.val)
	case "from":
		return strings.Contains(s.from, t.val)
	case "to":
		return strings.Contains(s.to, t.val)
	case "subject":
		return strings.Contains(strings.ToLower(s.Subject), t.val) || strings.Contains(s.search, t.val)
	case "auth":
		switch t.val {
		case "fail":
			return s.AuthFailed
		case "ok":
			return s.AuthOK != nil && *s.AuthOK
		case "none":
			return s.AuthOK == nil && !s.AuthFailed
		}
	case "state":
		return strings.Contains(strings.ToLower(s.State), t.val)
	case "has":
		switch t.val {
		case "attachment":
			return s.HasAttachment
		case "auth":
			return s.User != "" || s.AuthOK != nil
		case "anomaly":
			return s.NAnomalies > 0
		case "rejected":
			return s.Rejected
		}
	case "anomaly":
		return anomalyMatch(s, t.val)
	}
	return false
}

// anomalyMatch looks for val in the session's anomalies.
func anomalyMatch(s *Session, val string) bool {
	for a := range s.anomSet {
		if strings.Contains(strings.ToLower(a), val) {
			return true
		}
	}
	return false
}
