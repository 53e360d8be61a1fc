package message

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// Limits on what the summary keeps of the Received, Reply-To and
// X-Originating-IP fields (the header block is bounded already; these keep
// the record small).
const (
	maxReceivedIPs = 32   // received_ips entries
	maxKeptValue   = 4096 // bytes of reply_to, first_received, second_received
)

// ipInText matches IPv4 and IPv6 address text the way Zeek's
// base/utils/addrs.zeek ip_addr_regex does (the same alternatives, so
// the same matches, leftmost-longest), so that the addresses taken from
// Received and X-Originating-IP fields are those Zeek's smtp.log shows.
var ipInText = func() *regexp.Regexp {
	const (
		dec = `(?:[0-9]{1}|[0-9]{2}|0[0-9]{2}|1[0-9]{2}|2[0-4][0-9]|25[0-5])`
		v4  = dec + `\.` + dec + `\.` + dec + `\.` + dec
		hx  = `[0-9A-Fa-f]{1,4}`
	)
	rep := func(lo, hi int) string { return `{` + strconv.Itoa(lo) + `,` + strconv.Itoa(hi) + `}` }
	alts := []string{
		v4,
		`(?:` + hx + `:){7}` + hx,
		`(?:` + hx + `:){6}` + v4,
		`::(?:` + hx + `(?::` + hx + `)` + rep(0, 6) + `)?`,
		hx + `(?::` + hx + `){6}::`,
		`::(?:` + hx + `(?::` + hx + `)` + rep(0, 4) + `)?` + v4,
		hx + `(?::` + hx + `){4}::` + v4,
	}
	for k := 1; k <= 6; k++ {
		alts = append(alts, hx+`(?::`+hx+`)`+rep(k-1, k-1)+`::(?:`+hx+`(?::`+hx+`)`+rep(0, 6-k)+`)?`)
	}
	for k := 1; k <= 4; k++ {
		alts = append(alts, hx+`(?::`+hx+`)`+rep(k-1, k-1)+`::(?:`+hx+`(?::`+hx+`)`+rep(0, 4-k)+`)?`+v4)
	}
	re := regexp.MustCompile(`(?:` + strings.Join(alts, `|`) + `)`)
	re.Longest()
	return re
}()

// ipMatches returns what ipInText.FindAllStringIndex(s, -1) returns,
// without running the regexp over all of s: every match is made only of
// hex digits, '.' and ':', and needs three dots after digits (IPv4),
// "::" or six colons (IPv6), so the regexp runs only on the maximal runs
// of those bytes that could hold one. The regexp has no anchors or look-around, so its leftmost-longest
// matches in a run are those it finds in s (TestIPMatchesSameAsRegexp,
// FuzzIPMatches). Received fields are mostly words, and running the
// regexp over all of them cost a fifth of the read path's CPU time.
func ipMatches(s string) [][]int {
	var locs [][]int
	for i := 0; i < len(s); {
		if !isIPByte(s[i]) {
			i++
			continue
		}
		j, colons, dotDigits, double := i, 0, 0, false
		for ; j < len(s) && isIPByte(s[j]); j++ {
			switch c := s[j]; {
			case c == ':':
				colons++
				double = double || j > i && s[j-1] == ':'
			case c == '.' && j > i && isDigit(s[j-1]):
				dotDigits++
			}
		}
		// An IPv4 address has three dots after digits; an IPv6 one
		// has "::" or at least six colons (times such as 12:30:45,
		// common in Received fields, have neither).
		switch {
		case colons == 0 && isDottedQuad(s[i:j]):
			// the common case, a plain IPv4 address: the regexp
			// would match the whole run
			locs = append(locs, []int{i, j})
		case dotDigits >= 3 || double || colons >= 6:
			for _, l := range ipInText.FindAllStringIndex(s[i:j], -1) {
				locs = append(locs, []int{i + l[0], i + l[1]})
			}
		}
		i = j
	}
	return locs
}

// isDottedQuad reports whether s is four decimal numbers of one to three
// digits, each at most 255, joined by dots: what ipInText's IPv4
// alternative matches whole.
func isDottedQuad(s string) bool {
	for part := 0; part < 4; part++ {
		n, v := 0, 0
		for n < len(s) && n < 4 && isDigit(s[n]) {
			v = v*10 + int(s[n]-'0')
			n++
		}
		if n == 0 || n > 3 || v > 255 {
			return false
		}
		s = s[n:]
		if part < 3 {
			if len(s) == 0 || s[0] != '.' {
				return false
			}
			s = s[1:]
		}
	}
	return s == ""
}

func isIPByte(c byte) bool {
	return isDigit(c) || c == '.' || c == ':' || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// ipAddresses returns the valid IP addresses in s, in order, as Zeek's
// extract_ip_addresses does. wrapped keeps only those between matching
// spaces, brackets, braces or parentheses (or alone in s).
func ipAddresses(s string, wrapped bool) []netip.Addr {
	locs := ipMatches(s)
	var out []netip.Addr
	for i, l := range locs {
		a, err := netip.ParseAddr(s[l[0]:l[1]])
		if err != nil {
			continue
		}
		if wrapped {
			prevEnd, nextStart := 0, len(s)
			if i > 0 {
				prevEnd = locs[i-1][1]
			}
			if i+1 < len(locs) {
				nextStart = locs[i+1][0]
			}
			before, after := s[prevEnd:l[0]], s[l[1]:nextStart]
			ok := before == "" && after == ""
			if before != "" && after != "" {
				switch before[len(before)-1:] + after[:1] {
				case "[]", "()", "{}", "  ":
					ok = true
				}
			}
			if !ok {
				continue
			}
		}
		out = append(out, a.Unmap())
	}
	return out
}

// receivedIP is the address Zeek's smtp.log path takes from a Received
// field: of the wrapped addresses in it, the second when there are
// several, else the first; "" when there is none.
func receivedIP(v string) string {
	ips := ipAddresses(v, true)
	switch {
	case len(ips) > 1:
		return ips[1].String()
	case len(ips) == 1:
		return ips[0].String()
	}
	return ""
}

// capValue cuts s to maxKeptValue bytes, on a character boundary.
func capValue(s string) string {
	if len(s) <= maxKeptValue {
		return s
	}
	return strings.ToValidUTF8(s[:maxKeptValue], "")
}
