package replay

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/mailtap/mailtap/decode"
)

// ParseUser reads a --user NAME:PASSWORD value.
func ParseUser(s string) (name, password string, err error) {
	name, password, ok := strings.Cut(s, ":")
	if !ok || name == "" {
		return "", "", fmt.Errorf("user %q: want NAME:PASSWORD", s)
	}
	return name, password, nil
}

// LoadUsers reads a --users file: one NAME:PASSWORD a line; blank lines
// and lines starting with # are left out.
func LoadUsers(path string, into map[string]string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		name, pw, err := ParseUser(l)
		if err != nil {
			return fmt.Errorf("%s:%d: want NAME:PASSWORD", path, n)
		}
		into[name] = pw
	}
	return sc.Err()
}

// authSkip says why a session's authentication cannot be replayed with
// the given passwords ("" when it can): USER/PASS, LOGIN and PLAIN always
// can (with the captured password or a given one), CRAM-MD5 and APOP
// when the user's password is given; the others not.
func authSkip(s *Session, users map[string]string) string {
	if s.Record == nil {
		return ""
	}
	for _, a := range s.Record.Auths {
		switch m := strings.ToUpper(a.Mechanism); m {
		case "USER", "LOGIN", "PLAIN":
		case "CRAM-MD5", "APOP":
			if _, ok := users[a.User]; !ok {
				return fmt.Sprintf("%s: %s for %q needs the password (--user %s:PASSWORD)", SkipAuth, m, a.User, a.User)
			}
		case "SCRAM-SHA-1", "SCRAM-SHA-256":
			// The user is in the client's first message; the rewriter
			// looks it up there.
			if len(users) == 0 {
				return fmt.Sprintf("%s: %s needs the password (--user NAME:PASSWORD)", SkipAuth, m)
			}
		default:
			return fmt.Sprintf("%s: %s (not supported)", SkipAuth, m)
		}
	}
	return ""
}

// rewriter edits the client's bytes on their way to the target: the
// answers to CRAM-MD5 challenges and APOP banners are computed for the
// live challenge, the given passwords replace the captured ones in PLAIN,
// LOGIN and USER/PASS, and --skip verbs are left out. It follows the
// client's command positions (SMTP DATA/BDAT content and IMAP literals
// are passed through) and the last server line (a SASL continuation
// makes the client's next line a SASL response).
type rewriter struct {
	proto decode.Proto
	users map[string]string
	skip  map[string]bool

	partial    []byte // an unfinished client line
	inData     bool   // SMTP DATA content
	raw        int64  // BDAT chunk or IMAP literal bytes to pass through
	lastLine   []byte // the last complete server line
	sline      []byte
	banner     string // APOP timestamp from the greeting
	greeted    bool
	mech       string // SASL mechanism in progress
	user       string // user named so far (USER, LOGIN's first answer)
	challenge  []byte // the last live SASL challenge, decoded
	scramFirst string // SCRAM client-first-message-bare
	scramGS2   string // SCRAM gs2 header ("n,,")
	// auths are the captured attempts in order: only one that succeeded
	// in the capture is given the password, so a failed attempt fails
	// again.
	auths  []decode.Auth
	ai     int
	authOK bool
}

func newRewriter(p decode.Proto, users map[string]string, skip map[string]bool, auths []decode.Auth) *rewriter {
	return &rewriter{proto: p, users: users, skip: skip, auths: auths}
}

// nextAuth moves to the next captured attempt and reports whether it
// succeeded (true when the capture has no record of it).
func (w *rewriter) nextAuth() bool {
	if w.ai >= len(w.auths) {
		return true
	}
	a := w.auths[w.ai]
	w.ai++
	return a.Success == nil || *a.Success
}

var apopBanner = regexp.MustCompile(`<[^<>\s]*>`)

// server follows the live server's lines.
func (w *rewriter) server(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if len(w.sline) < 4096 {
				w.sline = append(w.sline, p...)
			}
			return
		}
		if len(w.sline) < 4096 {
			w.sline = append(w.sline, p[:i]...)
		}
		p = p[i+1:]
		line := bytes.TrimRight(w.sline, "\r")
		w.lastLine = append(w.lastLine[:0], line...)
		w.sline = w.sline[:0]
		if !w.greeted {
			w.greeted = true
			w.banner = apopBanner.FindString(string(line))
		}
		if c, ok := w.continuation(); ok {
			w.challenge, _ = base64.StdEncoding.DecodeString(strings.TrimSpace(c))
		}
	}
}

// continuation returns the text of the last server line when it is a
// SASL continuation.
func (w *rewriter) continuation() (string, bool) {
	l := string(w.lastLine)
	switch w.proto {
	case decode.ProtoSMTP:
		if strings.HasPrefix(l, "334") {
			return strings.TrimPrefix(strings.TrimPrefix(l, "334"), " "), true
		}
	default:
		if strings.HasPrefix(l, "+") && !strings.HasPrefix(l, "+OK") {
			return strings.TrimPrefix(strings.TrimPrefix(l, "+"), " "), true
		}
	}
	return "", false
}

// client returns the bytes to send for a captured client turn and how
// many commands were left out.
func (w *rewriter) client(p []byte) ([]byte, int) {
	if len(w.users) == 0 && len(w.skip) == 0 {
		return p, 0
	}
	var out []byte
	dropped := 0
	sasl := false
	if _, ok := w.continuation(); ok && w.mech != "" {
		sasl = true
	}
	for len(p) > 0 {
		if w.raw > 0 {
			k := min(int64(len(p)), w.raw)
			out = append(out, p[:k]...)
			p, w.raw = p[k:], w.raw-k
			continue
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			out = append(out, p...)
			w.partial = append(w.partial, p...)
			break
		}
		line := append(w.partial, p[:i+1]...)
		w.partial = nil
		p = p[i+1:]
		switch {
		case w.inData:
			if t := bytes.TrimRight(line, "\r\n"); len(t) == 1 && t[0] == '.' {
				w.inData = false
			}
			out = append(out, line...)
		case sasl:
			sasl = false
			out = append(out, w.saslResponse(line)...)
		default:
			l, drop := w.command(line)
			if drop {
				dropped++
				continue
			}
			out = append(out, l...)
		}
	}
	return out, dropped
}

func lineEnd(line []byte) (body []byte, end string) {
	switch {
	case bytes.HasSuffix(line, []byte("\r\n")):
		return line[:len(line)-2], "\r\n"
	case bytes.HasSuffix(line, []byte("\n")):
		return line[:len(line)-1], "\n"
	}
	return line, ""
}

// command handles a line at a command position: it may be left out,
// rewritten, and may start DATA content, a BDAT chunk or a literal.
func (w *rewriter) command(line []byte) ([]byte, bool) {
	body, end := lineEnd(line)
	f := strings.Fields(string(body))
	if len(f) == 0 {
		return line, false
	}
	verbAt := 0
	if w.proto == decode.ProtoIMAP {
		verbAt = 1
	}
	if len(f) <= verbAt {
		return line, false
	}
	verb := strings.ToUpper(f[verbAt])
	if verb == "UID" && len(f) > verbAt+1 {
		verb += " " + strings.ToUpper(f[verbAt+1])
	}
	if w.skip[verb] {
		return nil, true
	}
	if n, ok := litSuffix(string(body)); ok && w.proto == decode.ProtoIMAP {
		w.raw = n
	}
	switch w.proto {
	case decode.ProtoSMTP:
		switch verb {
		case "DATA":
			w.inData = true
		case "BDAT":
			if len(f) > 1 {
				if n, err := strconv.ParseInt(f[1], 10, 64); err == nil && n > 0 {
					w.raw = n
				}
			}
		case "AUTH":
			return w.authStart(f, 1, end, line)
		}
	case decode.ProtoPOP3:
		switch verb {
		case "USER":
			if len(f) > 1 {
				w.user = f[1]
			}
		case "PASS":
			if pw, ok := w.users[w.user]; ok && w.nextAuth() {
				return []byte("PASS " + pw + end), false
			}
		case "APOP":
			if len(f) == 3 {
				if pw, ok := w.users[f[1]]; ok && w.banner != "" && w.nextAuth() {
					sum := md5.Sum([]byte(w.banner + pw))
					return []byte("APOP " + f[1] + " " + hex.EncodeToString(sum[:]) + end), false
				}
			}
		case "AUTH":
			return w.authStart(f, 1, end, line)
		}
	case decode.ProtoIMAP:
		switch verb {
		case "LOGIN":
			if len(f) == 4 && w.raw == 0 {
				user := unquote(f[2])
				if pw, ok := w.users[user]; ok && w.nextAuth() {
					return []byte(f[0] + " " + f[1] + " " + f[2] + " " + quote(pw) + end), false
				}
			}
		case "AUTHENTICATE":
			return w.authStart(f, 2, end, line)
		}
	}
	return line, false
}

// authStart notes the mechanism of an AUTH/AUTHENTICATE line (f[at]) and
// rewrites its initial response.
func (w *rewriter) authStart(f []string, at int, end string, line []byte) ([]byte, bool) {
	if len(f) <= at {
		return line, false
	}
	w.mech = strings.ToUpper(f[at])
	w.user = ""
	w.authOK = w.nextAuth()
	if len(f) > at+1 {
		ir := w.saslAnswer(f[at+1], true)
		return []byte(strings.Join(f[:at+1], " ") + " " + ir + end), false
	}
	return line, false
}

// saslResponse rewrites a line answering a SASL challenge.
func (w *rewriter) saslResponse(line []byte) []byte {
	body, end := lineEnd(line)
	return []byte(w.saslAnswer(string(body), false) + end)
}

// saslAnswer rewrites one base64 SASL response for the mechanism in
// progress; initial says it is an initial response (no challenge).
func (w *rewriter) saslAnswer(b64 string, initial bool) string {
	if b64 == "*" || b64 == "=" {
		return b64
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || !w.authOK {
		return b64
	}
	enc := base64.StdEncoding.EncodeToString
	switch w.mech {
	case "PLAIN":
		parts := strings.Split(string(raw), "\x00")
		if len(parts) == 3 {
			if pw, ok := w.users[parts[1]]; ok {
				return enc([]byte(parts[0] + "\x00" + parts[1] + "\x00" + pw))
			}
		}
	case "LOGIN":
		prompt := strings.ToLower(string(w.challenge))
		if initial || w.user == "" && !strings.Contains(prompt, "pass") {
			w.user = string(raw)
			return b64
		}
		if pw, ok := w.users[w.user]; ok {
			return enc([]byte(pw))
		}
	case "SCRAM-SHA-1", "SCRAM-SHA-256":
		return w.scram(b64, raw)
	case "CRAM-MD5":
		user, _, ok := strings.Cut(string(raw), " ")
		if pw, found := w.users[user]; ok && found && !initial {
			m := hmac.New(md5.New, []byte(pw))
			m.Write(w.challenge)
			return enc([]byte(user + " " + hex.EncodeToString(m.Sum(nil))))
		}
	}
	return b64
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = strings.ReplaceAll(strings.ReplaceAll(s[1:len(s)-1], `\"`, `"`), `\\`, `\`)
	}
	return s
}

func quote(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}

// scram follows a SCRAM exchange (RFC 5802, 7677): the client's first
// message is kept as it is; its final message is computed again for the
// live server-first message (nonce, salt, iterations) with the given
// password of the user the first message names.
func (w *rewriter) scram(b64 string, raw []byte) string {
	msg := string(raw)
	switch {
	case strings.HasPrefix(msg, "n,") || strings.HasPrefix(msg, "y,") || strings.HasPrefix(msg, "p="):
		// client-first: gs2-header "n,," then the bare message.
		i := strings.Index(msg, ",")
		j := strings.Index(msg[i+1:], ",")
		if i < 0 || j < 0 {
			return b64
		}
		w.scramGS2, w.scramFirst = msg[:i+j+2], msg[i+j+2:]
		for _, attr := range strings.Split(w.scramFirst, ",") {
			if v, ok := strings.CutPrefix(attr, "n="); ok {
				w.user = strings.NewReplacer("=2C", ",", "=3D", "=").Replace(v)
			}
		}
		return b64
	case strings.HasPrefix(msg, "c="):
		pw, ok := w.users[w.user]
		if !ok || w.scramFirst == "" {
			return b64
		}
		out, err := scramFinal(w.mech, pw, w.scramGS2, w.scramFirst, string(w.challenge))
		if err != nil {
			return b64
		}
		return base64.StdEncoding.EncodeToString([]byte(out))
	}
	return b64
}

// scramFinal computes the client-final-message for a server-first
// message.
func scramFinal(mech, password, gs2, clientFirstBare, serverFirst string) (string, error) {
	var nonce, salt64 string
	iter := 0
	for _, attr := range strings.Split(serverFirst, ",") {
		k, v, _ := strings.Cut(attr, "=")
		switch k {
		case "r":
			nonce = v
		case "s":
			salt64 = v
		case "i":
			iter, _ = strconv.Atoi(v)
		}
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil || nonce == "" || iter < 1 || iter > 1<<20 {
		return "", fmt.Errorf("bad SCRAM server-first message")
	}
	newHash := sha1.New
	if mech == "SCRAM-SHA-256" {
		newHash = sha256.New
	}
	salted, err := pbkdf2.Key(newHash, password, salt, iter, newHash().Size())
	if err != nil {
		return "", err
	}
	mac := func(key []byte, s string) []byte {
		m := hmac.New(newHash, key)
		m.Write([]byte(s))
		return m.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	h := newHash()
	h.Write(clientKey)
	stored := h.Sum(nil)
	without := "c=" + base64.StdEncoding.EncodeToString([]byte(gs2)) + ",r=" + nonce
	sig := mac(stored, clientFirstBare+","+serverFirst+","+without)
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ sig[i]
	}
	return without + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}
