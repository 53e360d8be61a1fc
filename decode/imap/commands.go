package imap

import (
	"strconv"
	"strings"
	"time"

	"github.com/mailtap/mailtap/decode"
)

// knownVerbs lists the command verbs recognised when resynchronising;
// other verbs are still decoded and kept as command records.
var knownVerbs = map[string]struct{}{
	"CAPABILITY": {}, "NOOP": {}, "LOGOUT": {}, "STARTTLS": {}, "AUTHENTICATE": {}, "LOGIN": {},
	"ENABLE": {}, "ID": {}, "NAMESPACE": {}, "SELECT": {}, "EXAMINE": {}, "CREATE": {}, "DELETE": {},
	"RENAME": {}, "SUBSCRIBE": {}, "UNSUBSCRIBE": {}, "LIST": {}, "LSUB": {}, "XLIST": {}, "STATUS": {},
	"APPEND": {}, "IDLE": {}, "CHECK": {}, "CLOSE": {}, "UNSELECT": {}, "EXPUNGE": {}, "SEARCH": {},
	"FETCH": {}, "STORE": {}, "COPY": {}, "MOVE": {}, "UID": {}, "COMPRESS": {}, "GETQUOTAROOT": {},
	"GETQUOTA": {}, "SETQUOTA": {}, "GETACL": {}, "SETACL": {}, "MYRIGHTS": {}, "SORT": {}, "THREAD": {},
	"GETMETADATA": {}, "SETMETADATA": {}, "NOTIFY": {}, "ESEARCH": {},
}

// command is one tagged command in flight.
type command struct {
	tag, verb string
	args      string
	toks      []Token // arguments (after the verb)
	ts        time.Time
	pipelined bool
	untagged  []string
	nuntagged int

	mailbox, target string
	set             string
	uid             bool
	op              string
	flags           []string
	auth            *authState
	appends         []*litSink
	expunged        []string
	vanished        []string
	appendUIDs      string
	srcUIDs         string
	dstUIDs         string
	select_         bool
	readOnly        bool
	idleDone        bool
}

// clientLine handles one complete client line.
func (x *Session) clientLine(l *Line) {
	if x.c.tok.Raw {
		if a := x.saslCommand(); a != nil && !strings.ContainsRune(strings.TrimSpace(string(l.First)), ' ') {
			x.saslResponse(a, strings.TrimSpace(string(l.First)))
			return
		}
		x.c.tok.Raw = false
	}
	toks := l.Tokens
	if len(toks) == 1 && strings.EqualFold(toks[0].Value, "DONE") {
		if c := x.findVerb("IDLE"); c != nil {
			c.idleDone = true
		} else {
			x.Anomaly(decode.AnomalyUnexpectedDone)
		}
		return
	}
	if len(toks) < 2 || toks[0].Kind != KindAtom || !isTag([]byte(toks[0].Value)) {
		if len(toks) > 0 || len(l.Text) > 0 {
			x.Anomaly(decode.AnomalyClientSyntax)
		}
		return
	}
	c := &command{tag: toks[0].Value, verb: strings.ToUpper(toks[1].Value), ts: x.c.lineTS}
	if c.ts.IsZero() {
		c.ts = x.now
	}
	args := toks[2:]
	if c.verb == "UID" && len(args) > 0 {
		c.verb = "UID " + strings.ToUpper(args[0].Value)
		c.uid = true
		args = args[1:]
	}
	c.toks = args
	c.pipelined = len(x.order) > 0
	if old, ok := x.inflight[c.tag]; ok {
		x.Anomaly(decode.AnomalyDuplicateTag)
		x.complete(old, "", "", nil)
	}
	if len(x.order) >= maxInFlight {
		x.Anomaly(decode.AnomalyTooManyInFlight)
		x.complete(x.order[0], "", "", nil)
	}
	x.inflight[c.tag] = c
	x.order = append(x.order, c)
	x.Commands++
	x.prepare(c, l)
	if c.args == "" {
		c.args = renderArgs(args)
	}
}

// prepare reads the arguments a command's outcome needs.
func (x *Session) prepare(c *command, l *Line) {
	a := c.toks
	str := func(i int) string {
		if i < len(a) && a[i].IsString() {
			return a[i].Value
		}
		return ""
	}
	switch strings.TrimPrefix(c.verb, "UID ") {
	case "LOGIN":
		if c.uid {
			break
		}
		user, pass := str(0), str(1)
		x.addAuth(decode.Auth{Mechanism: "LOGIN", User: user, Password: x.Redact(pass)})
		c.auth = &authState{index: len(x.Auths) - 1}
		parts := make([]Token, len(a))
		copy(parts, a)
		if len(parts) > 1 {
			parts[1] = Token{Kind: KindAtom, Value: x.Redact(pass)}
		}
		c.args = renderArgs(parts)
	case "AUTHENTICATE":
		x.startSASL(c, str(0), str(1))
	case "SELECT", "EXAMINE":
		c.mailbox = x.mbox(str(0))
		c.select_ = true
		c.readOnly = c.verb == "EXAMINE"
	case "CREATE", "DELETE", "SUBSCRIBE", "UNSUBSCRIBE", "STATUS":
		c.mailbox = x.mbox(str(0))
	case "RENAME":
		c.mailbox, c.target = x.mbox(str(0)), x.mbox(str(1))
	case "APPEND":
		c.mailbox = x.mbox(str(0))
		for _, t := range a[min(1, len(a)):] {
			if t.Kind == KindList && c.flags == nil {
				c.flags = atoms(t.List)
			}
		}
		for _, s := range x.c.sinks {
			s.mailbox = c.mailbox
			s.flags = c.flags
			c.appends = append(c.appends, s)
		}
	case "COPY", "MOVE":
		c.set = clip(str(0))
		c.mailbox, c.target = x.mailbox, x.mbox(str(1))
	case "STORE":
		c.set = clip(str(0))
		c.mailbox = x.mailbox
		i := 1
		if i < len(a) && a[i].Kind == KindList { // (UNCHANGEDSINCE n)
			i++
		}
		c.op = strings.ToUpper(str(i))
		if i+1 < len(a) {
			if a[i+1].Kind == KindList {
				c.flags = atoms(a[i+1].List)
			} else {
				c.flags = atoms(a[i+1:])
			}
		}
	case "EXPUNGE":
		c.mailbox = x.mailbox
		if c.uid {
			c.set = clip(str(0))
		}
	case "FETCH", "SEARCH", "CLOSE", "UNSELECT":
		c.mailbox = x.mailbox
	case "COMPRESS", "STARTTLS", "IDLE":
	}
}

// mbox decodes a mailbox name argument.
func (x *Session) mbox(s string) string {
	if strings.EqualFold(s, "INBOX") {
		return "INBOX"
	}
	if x.utf8 {
		return s
	}
	return DecodeMailboxName(s)
}

// serverLine handles one complete server line.
func (x *Session) serverLine(l *Line) {
	toks := l.Tokens
	first := string(l.First)
	greeting := !x.greeted
	x.greeted = true
	if len(first) > 0 && first[0] == '+' {
		x.continuation(strings.TrimSpace(first[1:]))
		return
	}
	if len(toks) == 0 {
		return
	}
	if toks[0].Value == "*" {
		x.untagged(l, greeting)
		return
	}
	tag := toks[0].Value
	status, code, text := statusText(first)
	switch status {
	case "OK", "NO", "BAD", "BYE", "PREAUTH":
	default:
		x.Anomaly(decode.AnomalyServerSyntax)
		return
	}
	if (status == "NO" || status == "BAD") && x.c.tok.Awaiting() && x.c.awaitTag == tag {
		// The server refused the synchronizing literal: it never comes.
		x.c.awaitTag = ""
		if rl := x.c.tok.Reject(); rl != nil {
			x.line(&x.c, rl)
		}
		defer x.releasePending()
	}
	c, ok := x.inflight[tag]
	if !ok {
		// A capture that starts mid-connection sees the completions of
		// commands sent before it began: that is expected, not odd.
		if !(x.Conn.Midstream && x.Commands == 0) {
			x.Anomaly(decode.AnomalyUnmatchedTag)
		}
		return
	}
	x.respCode(c, code)
	x.complete(c, status, text, &code)
}

// continuation handles "+ text".
func (x *Session) continuation(text string) {
	if x.c.tok.Awaiting() {
		x.acceptLiteral()
		return
	}
	if len(x.order) == 0 {
		x.Anomaly(decode.AnomalyUnexpectedContinuation)
		return
	}
	c := x.order[len(x.order)-1]
	switch {
	case c.auth != nil && c.auth.ex != nil:
		x.saslChallenge(c.auth, text)
	case c.verb == "IDLE":
	default:
		// A continuation for a literal the client sent at once, or for
		// an extension: nothing to do.
	}
}

// statusText splits "tag OK [CODE args] text".
func statusText(line string) (status string, code respCode, text string) {
	f := strings.SplitN(line, " ", 3)
	if len(f) < 2 {
		return "", code, ""
	}
	status = strings.ToUpper(f[1])
	if len(f) < 3 {
		return status, code, ""
	}
	text = f[2]
	if strings.HasPrefix(text, "[") {
		if e := strings.IndexByte(text, ']'); e > 0 {
			code = parseCode(text[1:e])
			text = strings.TrimLeft(text[e+1:], " ")
		}
	}
	return status, code, text
}

// respCode is a parsed response code.
type respCode struct {
	name string
	args string
	raw  string
}

func parseCode(s string) respCode {
	name, args, _ := strings.Cut(s, " ")
	return respCode{name: strings.ToUpper(name), args: args, raw: s}
}

// respCode applies a response code to the session and command c (nil:
// none in flight).
func (x *Session) respCode(c *command, code respCode) {
	switch code.name {
	case "":
	case "CAPABILITY":
		x.setCaps(strings.Fields(code.args))
	case "READ-ONLY":
		if c != nil {
			c.readOnly = true
		}
	case "READ-WRITE":
		if c != nil {
			c.readOnly = false
		}
	case "APPENDUID":
		if f := strings.Fields(code.args); c != nil && len(f) == 2 {
			c.appendUIDs = clip(f[1])
		}
	case "COPYUID":
		if f := strings.Fields(code.args); c != nil && len(f) == 3 {
			c.srcUIDs, c.dstUIDs = clip(f[1]), clip(f[2])
		}
	case "ALERT":
		if c != nil {
			x.attach(c, "ALERT")
		}
	}
}

// expandUIDs lists at most n UIDs of an RFC 4315 uid-set ("4", "4:6,9").
func expandUIDs(set string, n int) []uint32 {
	var out []uint32
	for _, part := range strings.Split(set, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		a, err := strconv.ParseUint(lo, 10, 32)
		if err != nil {
			return out
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 32); err != nil {
				return out
			}
		}
		if b < a {
			a, b = b, a
		}
		for u := a; u <= b && len(out) < n; u++ {
			out = append(out, uint32(u))
		}
		if len(out) >= n {
			break
		}
	}
	return out
}

func (x *Session) setCaps(caps []string) {
	if len(caps) > 256 {
		caps = caps[:256]
	}
	x.Caps = append([]string(nil), caps...)
}

// untagged handles "* ..." responses.
func (x *Session) untagged(l *Line, greeting bool) {
	toks := l.Tokens
	first := string(l.First)
	var c *command
	if len(x.order) > 0 {
		c = x.order[len(x.order)-1]
	}
	if len(toks) < 2 {
		x.Anomaly(decode.AnomalyServerSyntax)
		return
	}
	kw := strings.ToUpper(toks[1].Value)
	if n, err := strconv.ParseUint(toks[1].Value, 10, 32); err == nil && len(toks) >= 3 {
		kw = strings.ToUpper(toks[2].Value)
		switch kw {
		case "FETCH":
			x.fetch(uint32(n), l, c)
		case "EXPUNGE":
			if c != nil && len(c.expunged) < 1000 {
				c.expunged = append(c.expunged, toks[1].Value)
			}
		}
		x.attach(c, toks[1].Value+" "+kw)
		return
	}
	if greeting {
		switch kw {
		case "OK", "PREAUTH", "BYE":
			x.Greeting = first
			if kw == "PREAUTH" {
				x.state = StateAuthenticated
			}
			_, code, _ := statusText(first)
			x.respCode(nil, code)
			return
		}
	}
	switch kw {
	case "OK", "NO", "BAD", "BYE", "PREAUTH":
		_, code, text := statusText(first)
		x.respCode(c, code)
		if kw == "BYE" {
			x.state = StateLogout
			x.attach(c, "BYE")
		} else if code.name != "" {
			x.attach(c, kw+" "+code.name)
		} else if kw != "OK" {
			x.attach(c, kw+" "+clipText(text, 80))
		}
	case "CAPABILITY":
		var caps []string
		for _, t := range toks[2:] {
			caps = append(caps, t.Value)
		}
		x.setCaps(caps)
		x.attach(c, kw)
	case "ENABLED":
		for _, t := range toks[2:] {
			if strings.EqualFold(t.Value, "UTF8=ACCEPT") {
				x.utf8 = true
			}
		}
		x.attach(c, kw)
	case "LIST", "LSUB", "XLIST":
		// * LIST (flags) delim name [ext]
		name := ""
		if len(toks) >= 5 {
			name = x.mbox(toks[4].Value)
		}
		x.attach(c, kw+" "+clipText(name, 200))
	case "STATUS":
		name := ""
		if len(toks) >= 3 {
			name = x.mbox(toks[2].Value)
		}
		x.attach(c, kw+" "+clipText(name, 200))
	case "VANISHED":
		if c != nil && len(toks) >= 3 {
			set := toks[len(toks)-1].Value
			if len(c.vanished) < 100 {
				c.vanished = append(c.vanished, set)
			}
		}
		x.attach(c, kw)
	case "SEARCH", "SORT":
		x.attach(c, kw+" "+strconv.Itoa(len(toks)-2))
	default:
		x.attach(c, kw)
	}
}

// attach records a short summary of an untagged response on the command
// in flight.
func (x *Session) attach(c *command, s string) {
	if c == nil {
		return
	}
	c.nuntagged++
	if len(c.untagged) < maxUntagged {
		c.untagged = append(c.untagged, s)
	}
}

// findVerb returns the newest in-flight command with that verb.
func (x *Session) findVerb(verb string) *command {
	for i := len(x.order) - 1; i >= 0; i-- {
		if x.order[i].verb == verb {
			return x.order[i]
		}
	}
	return nil
}

// complete ends command c with its tagged status ("" when unanswered).
func (x *Session) complete(c *command, status, text string, code *respCode) {
	if _, ok := x.inflight[c.tag]; !ok || x.inflight[c.tag] != c {
		return
	}
	delete(x.inflight, c.tag)
	for i, o := range x.order {
		if o == c {
			x.order = append(x.order[:i], x.order[i+1:]...)
			break
		}
	}
	ok := status == "OK"
	base := strings.TrimPrefix(c.verb, "UID ")
	switch base {
	case "LOGIN", "AUTHENTICATE":
		if c.auth != nil && c.auth.index < len(x.Auths) && status != "" {
			x.Auths[c.auth.index].Success = decode.Bool(ok)
		}
		if ok {
			x.state = StateAuthenticated
		}
		x.c.tok.Raw = false
	case "SELECT", "EXAMINE":
		if ok {
			x.state = StateSelected
			x.mailbox = c.mailbox
			x.readOnly = c.readOnly
			x.addMailbox(c.mailbox)
		} else if status != "" {
			// A failed SELECT leaves no mailbox selected.
			if x.state == StateSelected {
				x.state = StateAuthenticated
			}
			x.mailbox = ""
		}
	case "CLOSE", "UNSELECT":
		if ok {
			x.state = StateAuthenticated
			x.mailbox = ""
		}
	case "LOGOUT":
		if status != "" {
			x.state = StateLogout
		}
	case "STARTTLS":
		if ok {
			x.TLS = &decode.TLS{StartTLS: true}
			x.Encrypted = true
			x.c.tlsCheck, x.s.tlsCheck = true, true
		}
	case "COMPRESS":
		if ok && !x.compressed {
			x.compressed = true
			x.startCompress()
		}
	case "CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE":
		x.mailboxRecord(c, strings.ToLower(base), status)
	case "COPY", "MOVE":
		x.mailboxRecord(c, strings.ToLower(base), status)
	case "STORE":
		x.mailboxRecord(c, "store", status)
	case "EXPUNGE":
		x.mailboxRecord(c, "expunge", status)
	case "APPEND":
		uids := expandUIDs(c.appendUIDs, len(c.appends))
		for i, s := range c.appends {
			if i < len(uids) && s.uid == 0 {
				s.uid = uids[i] // from APPENDUID (RFC 4315), in order
			}
			s.emit(status)
		}
		x.mailboxRecord(c, "append", status)
	}
	x.c.sinks = removeSinks(x.c.sinks, c.appends)
	if x.Opts.Level != decode.LevelCommands {
		return
	}
	r := &decode.CommandRecord{
		Header:    x.Header(decode.TypeCommand, c.ts),
		Tag:       c.tag,
		Verb:      c.verb,
		Args:      c.args,
		Text:      clipText(text, 512),
		Pipelined: c.pipelined,
		Untagged:  c.untagged,
	}
	if code != nil && code.name != "" {
		r.Code = clipText(code.name, 64)
	}
	if c.nuntagged > len(c.untagged) {
		r.Untagged = append(r.Untagged, "+"+strconv.Itoa(c.nuntagged-len(c.untagged))+" more")
	}
	if status != "" {
		r.Status = status
		ms := float64(x.now.Sub(c.ts).Microseconds()) / 1000
		if ms < 0 {
			ms = 0
		}
		r.LatencyMS = &ms
	}
	x.Emit(r)
}

func removeSinks(list, drop []*litSink) []*litSink {
	if len(drop) == 0 {
		return list
	}
	out := list[:0]
	for _, s := range list {
		keep := true
		for _, d := range drop {
			if s == d {
				keep = false
			}
		}
		if keep {
			out = append(out, s)
		}
	}
	return out
}

// mailboxRecord emits an imap.mailbox record for a mailbox-changing
// action.
func (x *Session) mailboxRecord(c *command, action, status string) {
	r := &decode.IMAPMailbox{
		Header:  x.Header(decode.TypeIMAPMailbox, c.ts),
		Action:  action,
		Mailbox: c.mailbox,
		Target:  c.target,
		Flags:   c.flags,
		Op:      c.op,
		Status:  status,
	}
	if r.Status == "" {
		r.Status = "unanswered"
	}
	switch action {
	case "copy", "move", "store":
		if c.uid {
			r.UIDs = c.set
		} else {
			r.Seqs = c.set
			r.UIDs = c.srcUIDs
		}
		r.TargetUIDs = c.dstUIDs
		if c.uid && c.srcUIDs != "" {
			r.UIDs = c.srcUIDs
		}
	case "expunge":
		if len(c.expunged) > 0 {
			r.Seqs = clip(strings.Join(c.expunged, ","))
		}
		if c.uid {
			r.UIDs = c.set
		}
		if len(c.vanished) > 0 {
			r.UIDs = clip(strings.Join(c.vanished, ","))
		}
	case "append":
		r.UIDs = c.appendUIDs
	}
	x.Emit(r)
}

// fetchMailbox returns the mailbox message data belongs to: the selected
// one or, when none is known to be, the one a SELECT/EXAMINE in flight
// opens. A server sends FETCH responses only in the selected state (RFC
// 9051 §6.3.2, §7.5.2), so data arriving before that command's completion
// (or without one, as in Arkime's arkime_synthetic capture) is about the
// mailbox being selected.
func (x *Session) fetchMailbox() string {
	if x.mailbox != "" {
		return x.mailbox
	}
	for i := len(x.order) - 1; i >= 0; i-- {
		if c := x.order[i]; (c.verb == "SELECT" || c.verb == "EXAMINE") && c.mailbox != "" {
			x.addMailbox(c.mailbox)
			return c.mailbox
		}
	}
	return ""
}

func (x *Session) addMailbox(name string) {
	if x.seenMbox == nil {
		x.seenMbox = make(map[string]bool)
	}
	if x.seenMbox[name] || len(x.mailboxes) >= maxMailboxes {
		return
	}
	x.seenMbox[name] = true
	x.mailboxes = append(x.mailboxes, name)
}

func (x *Session) addAuth(a decode.Auth) {
	if len(x.Auths) >= maxAuths {
		x.Auths = x.Auths[1:]
	}
	x.Auths = append(x.Auths, a)
}

// atoms returns the string values of tokens (flags).
func atoms(ts []Token) []string {
	var out []string
	for _, t := range ts {
		if t.IsString() && len(out) < 64 {
			out = append(out, clipText(t.Value, 256))
		}
	}
	return out
}

func clip(s string) string { return clipText(s, maxSetLen) }

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// renderArgs renders arguments for a command record: literals are
// summarised, never dumped.
func renderArgs(ts []Token) string {
	var sb strings.Builder
	renderTokens(&sb, ts)
	return clipText(sb.String(), 1024)
}

func renderTokens(sb *strings.Builder, ts []Token) {
	for i, t := range ts {
		if sb.Len() > 2048 {
			return
		}
		if i > 0 {
			sb.WriteByte(' ')
		}
		switch t.Kind {
		case KindAtom, KindNil:
			sb.WriteString(t.Value)
		case KindQuoted:
			sb.WriteString(strconv.Quote(t.Value))
		case KindLiteral:
			if t.Lit != nil && t.Lit.Inline && len(t.Value) <= 64 && printable(t.Value) {
				sb.WriteString(strconv.Quote(t.Value))
			} else if t.Lit != nil {
				sb.WriteString("{" + strconv.FormatInt(t.Lit.Size, 10) + "}")
			}
		case KindList:
			sb.WriteByte('(')
			renderTokens(sb, t.List)
			if !t.Open {
				sb.WriteByte(')')
			}
		}
	}
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
