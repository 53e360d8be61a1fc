package message

import "strings"

// addrPair is one address of a list: display name and addr-spec.
type addrPair struct{ name, addr string }

// simpleAddresses parses the common shape of an address list without
// net/mail: comma-separated "local@domain", "<local@domain>" or
// "Display Name <local@domain>", where the local part and the domain are
// ASCII dot-atoms and the display name ASCII atoms (no dots, quotes,
// comments, encoded words, groups or domain literals). For such a list it
// returns what net/mail's ParseList returns (TestSimpleAddressesSameAsNetMail);
// anything else is left to net/mail (ok false). net/mail allocates about
// thirty times per address, a third of all allocations on real traffic.
func simpleAddresses(v string) (list []addrPair, ok bool) {
	for len(v) > 0 {
		piece := v
		if i := strings.IndexByte(v, ','); i >= 0 {
			piece, v = v[:i], v[i+1:]
			if strings.Trim(v, " \t") == "" {
				return nil, false // a trailing comma: net/mail's call
			}
		} else {
			v = ""
		}
		a, ok := simpleAddress(strings.Trim(piece, " \t"))
		if !ok {
			return nil, false
		}
		list = append(list, a)
	}
	return list, len(list) > 0
}

func simpleAddress(s string) (addrPair, bool) {
	if s == "" {
		return addrPair{}, false
	}
	if s[len(s)-1] != '>' {
		return addrPair{addr: s}, isAddrSpec(s)
	}
	i := strings.IndexByte(s, '<')
	if i < 0 {
		return addrPair{}, false
	}
	addr := s[i+1 : len(s)-1]
	if !isAddrSpec(addr) {
		return addrPair{}, false
	}
	name := strings.TrimRight(s[:i], " \t")
	if name == "" {
		return addrPair{addr: addr}, true
	}
	if i == len(name) {
		return addrPair{}, false // "Name<a@b>": left to net/mail
	}
	// atoms separated by white space: net/mail joins them with one space
	var words []string
	for _, w := range strings.FieldsFunc(name, func(r rune) bool { return r == ' ' || r == '\t' }) {
		if !isAtom(w, false) {
			return addrPair{}, false
		}
		words = append(words, w)
	}
	if len(words) == 1 {
		return addrPair{name: words[0], addr: addr}, true
	}
	return addrPair{name: strings.Join(words, " "), addr: addr}, true
}

// isAddrSpec reports local@domain with both dot-atoms of ASCII atext.
func isAddrSpec(s string) bool {
	at := strings.IndexByte(s, '@')
	return at > 0 && isAtom(s[:at], true) && isAtom(s[at+1:], true)
}

// isAtom reports a non-empty run of ASCII atext (RFC 5322 §3.2.3); with
// dots, a dot-atom: atoms joined by single dots.
func isAtom(s string, dots bool) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.' && dots && s[i-1] != '.':
		case c == '=' && i+1 < len(s) && s[i+1] == '?':
			return false // an encoded word: left to net/mail and the word decoder
		case strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
