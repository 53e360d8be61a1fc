package imap

import (
	"encoding/base64"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// b64 is the modified base64 of RFC 3501 section 5.1.3 ("," for "/", no
// padding).
var b64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// DecodeMailboxName decodes a mailbox name from modified UTF-7 (RFC 3501
// section 5.1.3) to UTF-8: "&AMk-t&AOk-" becomes "Été" and "&-" becomes
// "&". A name that is not valid modified UTF-7 (already UTF-8, a bad
// shift sequence) is returned unchanged.
func DecodeMailboxName(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	var sb strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '&' {
			if c < 0x20 || c > 0x7e {
				return s // not 7-bit: not modified UTF-7
			}
			sb.WriteByte(c)
			i++
			continue
		}
		j := strings.IndexByte(s[i+1:], '-')
		if j < 0 {
			return s
		}
		enc := s[i+1 : i+1+j]
		i += j + 2
		if enc == "" {
			sb.WriteByte('&')
			continue
		}
		raw, err := b64.DecodeString(enc)
		if err != nil || len(raw)%2 != 0 {
			return s
		}
		u := make([]uint16, len(raw)/2)
		for k := range u {
			u[k] = uint16(raw[2*k])<<8 | uint16(raw[2*k+1])
		}
		for _, r := range utf16.Decode(u) {
			if r == utf8.RuneError || (r >= 0x20 && r <= 0x7e) {
				return s // printable ASCII must not be encoded
			}
			sb.WriteRune(r)
		}
	}
	return sb.String()
}
