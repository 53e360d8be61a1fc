package replay

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Compare levels (--compare).
const (
	CompareStatus = "status" // verb and status (SMTP code, +OK/-ERR, OK/NO/BAD)
	CompareCodes  = "codes"  // and response codes: enhanced status, [CODE], intermediate replies
	CompareFull   = "full"   // and every field of the answers (the default)
)

// Divergence kinds.
const (
	KindValue        = "value"        // a value differs
	KindSet          = "set"          // a set differs (added / removed)
	KindMissing      = "missing"      // a command or field on the captured side only
	KindExtra        = "extra"        // a command or field on the replayed side only
	KindTimeout      = "timeout"      // the answer did not arrive within the timeout
	KindUnverifiable = "unverifiable" // the comparison depends on content the capture did not show
)

// Divergence is one difference between the captured and the replayed
// answer to one command (index 0 is the greeting, commands from 1).
type Divergence struct {
	Session  uint64   `json:"session"`
	Index    int      `json:"index"`
	Verb     string   `json:"verb"`
	GotVerb  string   `json:"replayed_verb,omitempty"`
	Field    string   `json:"field"`
	Kind     string   `json:"kind"`
	Captured any      `json:"captured"`
	Replayed any      `json:"replayed"`
	Added    []string `json:"added,omitempty"`
	Removed  []string `json:"removed,omitempty"`
}

// Rule is one --ignore rule: [PROTO:]FIELD[:ITEM]. FIELD is a field key
// or name (case-insensitive: "CAPABILITY", "EHLO", "INTERNALDATE",
// "FETCH", "text", "code" ...); ITEM drops one keyword from a set field
// ("imap:CAPABILITY:ID"). The pseudo fields "uidvalidity-pairing" and
// "uidl-pairing" turn "same within the session/run" comparisons on, and
// "text:queue-id" etc. mask volatile parts of reply texts.
type Rule struct {
	Proto, Field, Item string
}

// ParseRule reads a --ignore value.
func ParseRule(s string) (Rule, error) {
	parts := strings.Split(s, ":")
	var r Rule
	switch strings.ToLower(parts[0]) {
	case "smtp", "pop3", "imap", "*":
		r.Proto = strings.ToLower(parts[0])
		parts = parts[1:]
	}
	if len(parts) == 0 || len(parts) > 2 || parts[0] == "" {
		return r, fmt.Errorf("ignore rule %q: want [PROTO:]FIELD[:ITEM]", s)
	}
	r.Field = parts[0]
	if len(parts) == 2 {
		if parts[1] == "" {
			return r, fmt.Errorf("ignore rule %q: empty item", s)
		}
		r.Item = parts[1]
	}
	if r.Proto == "*" {
		r.Proto = ""
	}
	return r, nil
}

func (r Rule) String() string {
	s := r.Field
	if r.Proto != "" {
		s = r.Proto + ":" + s
	}
	if r.Item != "" {
		s += ":" + r.Item
	}
	return s
}

// DefaultIgnores are the rules in force unless --no-default-ignores:
// volatile parts of reply texts are masked, UIDVALIDITY (per session) and
// POP3 UIDL values (per run) are compared as "the same where the capture
// had the same", and POP3's IMPLEMENTATION capability (a server name) is
// left out.
var DefaultIgnores = []string{
	"text:queue-id",
	"text:timestamp",
	"text:timing",
	"text:session-id",
	"pop3:text:apop-banner",
	"imap:uidvalidity-pairing",
	"pop3:uidl-pairing",
	"pop3:CAPA:IMPLEMENTATION",
}

// BuiltinDefaultIgnores are default rules in force only when the target
// is the built-in server: its capabilities (EHLO keywords, POP3 CAPA,
// IMAP CAPABILITY lists and [CAPABILITY] codes) are its own and say
// nothing about the captured traffic. Against a real target they are
// compared; --no-default-ignores compares them against the built-in
// server too.
var BuiltinDefaultIgnores = []string{
	"smtp:EHLO",
	"pop3:CAPA",
	"imap:CAPABILITY",
}

// textMasks are the volatile parts of reply texts, by rule item.
var textMasks = map[string]*regexp.Regexp{
	"queue-id":    regexp.MustCompile(`(?i)(queued as|queue id|id=|with id|message accepted for delivery:?)\s*<?[A-Za-z0-9][A-Za-z0-9._@-]{5,}>?`),
	"timestamp":   regexp.MustCompile(`(?i)((mon|tue|wed|thu|fri|sat|sun), )?\d{1,2} (jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]* \d{4}( \d\d:\d\d(:\d\d)?)?( [+-]\d{4})?( \([A-Z]+\))?|\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d)?(\.\d+)?(Z|[+-]\d\d:?\d\d)?|\b\d\d:\d\d:\d\d\b`),
	"timing":      regexp.MustCompile(`(?i)\(\s*\d+(\.\d+)?( \+ \d+(\.\d+)?)*\s*secs?\s*\)|\b\d+(\.\d+)?\s*(ms|msec|secs?|seconds)\b`),
	"session-id":  regexp.MustCompile(`\b[A-Za-z0-9+/=_-]*(\d[A-Za-z+/=_-]|[A-Za-z+/=_-]\d)[A-Za-z0-9+/=_-]*\b`),
	"apop-banner": regexp.MustCompile(`<[^<>\s]*@[^<>\s]*>`),
}

// CompareConfig says what to compare.
type CompareConfig struct {
	Level string
	Rules []Rule
	// Builtin are rules added when the target is the built-in server.
	Builtin []Rule
}

// NewCompareConfig builds a configuration: level, the default rules
// unless noDefaults, and the user's rules.
func NewCompareConfig(level string, ignores []string, noDefaults bool) (*CompareConfig, error) {
	switch level {
	case "":
		level = CompareFull
	case CompareStatus, CompareCodes, CompareFull:
	default:
		return nil, fmt.Errorf("--compare %q: want status, codes or full", level)
	}
	c := &CompareConfig{Level: level}
	var all []string
	if !noDefaults {
		all = append(all, DefaultIgnores...)
	}
	all = append(all, ignores...)
	for _, s := range all {
		r, err := ParseRule(s)
		if err != nil {
			return nil, err
		}
		if strings.EqualFold(r.Field, "text") && r.Item != "" {
			if _, ok := textMasks[strings.ToLower(r.Item)]; !ok {
				names := make([]string, 0, len(textMasks))
				for k := range textMasks {
					names = append(names, k)
				}
				slices.Sort(names)
				return nil, fmt.Errorf("ignore rule %q: text masks are %s", s, strings.Join(names, ", "))
			}
		}
		c.Rules = append(c.Rules, r)
	}
	if !noDefaults {
		for _, s := range BuiltinDefaultIgnores {
			r, _ := ParseRule(s)
			c.Builtin = append(c.Builtin, r)
		}
	}
	return c, nil
}

// forBuiltin returns the configuration in force against the built-in
// server: c with its Builtin rules among the others.
func (c *CompareConfig) forBuiltin() *CompareConfig {
	if len(c.Builtin) == 0 {
		return c
	}
	b := *c
	b.Rules = append(slices.Clip(c.Rules), c.Builtin...)
	b.Builtin = nil
	return &b
}

// notCompared lists the built-in-only rules that apply to proto, as the
// report names them.
func (c *CompareConfig) notCompared(proto string) []string {
	var out []string
	for _, r := range c.Builtin {
		if r.Proto == "" || r.Proto == proto {
			out = append(out, r.String())
		}
	}
	return out
}

func (c *CompareConfig) rules(proto string) []Rule {
	var out []Rule
	for _, r := range c.Rules {
		if r.Proto == "" || r.Proto == proto {
			out = append(out, r)
		}
	}
	return out
}

// has reports whether a rule with this field and item applies.
func has(rs []Rule, field, item string) bool {
	for _, r := range rs {
		if strings.EqualFold(r.Field, field) && strings.EqualFold(r.Item, item) {
			return true
		}
	}
	return false
}

// fieldRule tells whether a whole field is ignored, and which set items.
func fieldRule(rs []Rule, f Field) (drop bool, items []string) {
	first, _, _ := strings.Cut(f.Name, " ")
	for _, r := range rs {
		if !strings.EqualFold(r.Field, f.Key) && !strings.EqualFold(r.Field, f.Name) && !strings.EqualFold(r.Field, first) {
			continue
		}
		if r.Item == "" {
			return true, nil
		}
		items = append(items, r.Item)
	}
	return false, items
}

// maskText applies the text masks in force.
func maskText(rs []Rule, s string) string {
	for _, r := range rs {
		if strings.EqualFold(r.Field, "text") && r.Item != "" {
			if re := textMasks[strings.ToLower(r.Item)]; re != nil {
				s = re.ReplaceAllString(s, "*")
			}
		}
	}
	return s
}

// pairing holds "same where the capture had the same" mappings.
type pairing struct {
	fwd, back map[string]string
}

func (p *pairing) check(want, got string) bool {
	if p.fwd == nil {
		p.fwd, p.back = map[string]string{}, map[string]string{}
	}
	g, ok1 := p.fwd[want]
	w, ok2 := p.back[got]
	if !ok1 && !ok2 {
		p.fwd[want], p.back[got] = got, want
		return true
	}
	return ok1 && ok2 && g == got && w == want
}

// runState is what comparisons share across the sessions of a run
// (UIDL pairings), kept per protocol.
type runState struct {
	pairs map[string]*pairing
}

func newRunState() *runState { return &runState{pairs: map[string]*pairing{}} }

func (r *runState) pairing(key string) *pairing {
	p := r.pairs[key]
	if p == nil {
		p = &pairing{}
		r.pairs[key] = p
	}
	return p
}

// Detail is a difference that does not fail the run: the reply text.
type Detail struct {
	Index    int    `json:"index"`
	Verb     string `json:"verb"`
	Field    string `json:"field"`
	Captured string `json:"captured"`
	Replayed string `json:"replayed"`
}

// comparison is the outcome of comparing one session's observations.
type comparison struct {
	commands, matched int
	divs              []Divergence
	details           []Detail
	// unverified are the comparisons that depend on placeholders: not
	// divergences, never matches.
	unverified []Divergence
}

// compareObs compares the captured and replayed observations of one
// session. timedOut marks the replayed commands whose answer came after
// the timeout or never; notSent is the replayed index from which nothing
// was sent (the session was abandoned), len(got) when everything was.
func (c *CompareConfig) compareObs(sess uint64, proto string, want, got []Obs, timedOut map[int]bool, notSent int, run *runState) comparison {
	rs := c.rules(proto)
	var out comparison
	sessPairs := map[string]*pairing{}
	pairFor := func(scope, key string) *pairing {
		if scope == "run" {
			return run.pairing(proto + ":" + key)
		}
		p := sessPairs[key]
		if p == nil {
			p = &pairing{}
			sessPairs[key] = p
		}
		return p
	}
	pairOn := func(f Field) bool {
		switch f.Pair {
		case "session":
			return has(rs, f.Key+"-pairing", "")
		case "run":
			return has(rs, f.Key+"-pairing", "")
		}
		return false
	}
	n := max(len(want), len(got))
	for i := 0; i < n; i++ {
		var w, g *Obs
		if i < len(want) && want[i].Verb != "" {
			w = &want[i]
		}
		if i < len(got) && got[i].Verb != "" {
			g = &got[i]
		}
		if w == nil && g == nil {
			continue
		}
		if i >= notSent && g == nil {
			continue // never sent: the session was abandoned before
		}
		out.commands++
		before := len(out.divs)
		div := func(field, kind string, cv, rv any) *Divergence {
			d := Divergence{Session: sess, Index: i, Field: field, Kind: kind, Captured: cv, Replayed: rv}
			if w != nil {
				d.Verb, d.Index = w.Verb, w.Index
			} else {
				d.Verb = g.Verb
			}
			if w != nil && g != nil && w.Verb != g.Verb {
				d.GotVerb = g.Verb
			}
			out.divs = append(out.divs, d)
			return &out.divs[len(out.divs)-1]
		}
		switch {
		case w == nil:
			div("command", KindExtra, nil, g.Verb)
			continue
		case g == nil:
			div("command", KindMissing, w.Verb, nil)
			continue
		case timedOut[i]:
			div("status", KindTimeout, w.Status, g.Status)
			continue
		case w.Verb != g.Verb:
			div("verb", KindValue, w.Verb, g.Verb)
			continue
		case statusKey(w.Status) != statusKey(g.Status):
			div("status", KindValue, w.Status, g.Status)
			continue
		}
		if c.Level != CompareStatus {
			// A response code whose field is ignored ([CAPABILITY] with
			// imap:CAPABILITY) counts as absent.
			wc, gc := w.Code, g.Code
			if wc != "" && ignored(rs, wc) {
				wc = ""
			}
			if gc != "" && ignored(rs, gc) {
				gc = ""
			}
			if wc != gc && !ignored(rs, "code") {
				div("code", KindValue, nilIfEmpty(wc), nilIfEmpty(gc))
			}
			if !slices.Equal(w.Intermediate, g.Intermediate) && !ignored(rs, "intermediate") {
				div("intermediate", KindValue, w.Intermediate, g.Intermediate)
			}
		}
		if c.Level == CompareFull {
			wf, gf := filterFields(rs, w.Fields), filterFields(rs, g.Fields)
			gm := map[string]Field{}
			for _, f := range gf {
				gm[f.Name] = f
			}
			seen := map[string]bool{}
			for _, f := range wf {
				seen[f.Name] = true
				h, ok := gm[f.Name]
				switch {
				case ok && h.Unverifiable:
					out.unverified = append(out.unverified, Divergence{Session: sess, Index: w.Index, Verb: w.Verb,
						Field: f.Name, Kind: KindUnverifiable, Captured: fieldValue(f), Replayed: fieldValue(h)})
				case !ok:
					div(f.Name, KindMissing, fieldValue(f), nil)
				case f.IsSet:
					added, removed := setDiff(f.Set, h.Set)
					if len(added)+len(removed) > 0 {
						d := div(f.Name, KindSet, f.Value, h.Value)
						d.Added, d.Removed = added, removed
					}
				case f.Pair != "" && pairOn(f):
					if !pairFor(f.Pair, f.Key).check(f.Value, h.Value) {
						div(f.Name, KindValue, f.Value, h.Value)
					}
				case f.Value != h.Value:
					div(f.Name, KindValue, f.Value, h.Value)
				}
			}
			for _, h := range gf {
				if !seen[h.Name] {
					div(h.Name, KindExtra, nil, fieldValue(h))
				}
			}
		}
		if len(out.divs) == before && !slices.ContainsFunc(out.unverified, func(d Divergence) bool { return d.Index == w.Index }) {
			out.matched++
		}
		if !ignored(rs, "text") {
			if w.Text != g.Text && maskText(rs, w.Text) != maskText(rs, g.Text) {
				out.details = append(out.details, Detail{Index: w.Index, Verb: w.Verb, Field: "text", Captured: w.Text, Replayed: g.Text})
			}
		}
	}
	return out
}

func ignored(rs []Rule, field string) bool {
	for _, r := range rs {
		if strings.EqualFold(r.Field, field) && r.Item == "" {
			return true
		}
	}
	return false
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func fieldValue(f Field) any {
	if f.IsSet {
		return f.Value
	}
	return f.Value
}

// filterFields drops ignored fields and set items.
func filterFields(rs []Rule, fs []Field) []Field {
	var out []Field
	for _, f := range fs {
		drop, items := fieldRule(rs, f)
		if drop {
			continue
		}
		if f.Key == "untagged" {
			// The kinds of untagged responses leave out the ignored ones
			// (an untagged CAPABILITY with imap:CAPABILITY).
			var kept []string
			for _, part := range strings.Split(f.Value, ", ") {
				if kind, _, _ := strings.Cut(part, " "); !ignored(rs, kind) {
					kept = append(kept, part)
				}
			}
			if len(kept) == 0 {
				continue
			}
			f.Value = strings.Join(kept, ", ")
		}
		if f.IsSet && len(items) > 0 {
			var keep []string
			for _, e := range f.Set {
				kw, _, _ := strings.Cut(e, " ")
				if !slices.ContainsFunc(items, func(it string) bool { return strings.EqualFold(it, kw) || strings.EqualFold(it, e) }) {
					keep = append(keep, e)
				}
			}
			f = setField(f.Name, f.Key, keep)
		}
		out = append(out, f)
	}
	return out
}

// setDiff returns what got has that want has not, and the reverse.
func setDiff(want, got []string) (added, removed []string) {
	for _, g := range got {
		if !slices.Contains(want, g) {
			added = append(added, g)
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			removed = append(removed, w)
		}
	}
	return added, removed
}
