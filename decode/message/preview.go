package message

import (
	"html"
	"strings"
	"unicode"
	"unicode/utf8"
)

// preview collects the decoded bytes of the body part a preview may come
// from. It keeps the first previewKeep bytes at most, and fewer when the
// preview is settled early: see add.
type preview struct {
	charset string
	html    bool
	data    []byte
	next    int    // len(data) at which add looks again whether the preview is settled
	done    bool   // text is the preview; nothing more is kept
	text    string // the preview, once done
}

// add keeps b (up to previewKeep bytes in all). For plain text in UTF-8,
// US-ASCII or no declared charset it checks, at doubling sizes, whether
// the bytes kept already settle the preview: previewChars characters
// produced from a prefix that the rest of the body cannot change (valid
// UTF-8 for a UTF-8 part; only ASCII bytes for an ASCII or undeclared one,
// whose charset is decided on all kept bytes). Then it stops keeping.
func (k *preview) add(b []byte) {
	if !k.done && len(k.data) == 0 && k.next == 0 && len(b) >= 512 && k.look(b[:512]) {
		return // settled by the first look, on b itself: nothing to keep
	}
	for !k.done && len(b) > 0 && len(k.data) < previewKeep {
		if cap(k.data) == 0 {
			// one allocation for what settles most previews, not one
			// per doubling (none when the parser lends one: see
			// startLeaf)
			k.data = make([]byte, 0, 1024)
		}
		// keep no more than the next look needs: most previews settle at
		// the first, and a big b is then not copied
		look := max(k.next, 512) // first look at 512 bytes: 200 characters take at least 200
		n := min(len(b), previewKeep-len(k.data))
		if !k.html && len(k.data) < look {
			n = min(n, look-len(k.data))
		}
		k.data = append(k.data, b[:n]...)
		b = b[n:]
		if k.html || len(k.data) < look || len(k.data) >= previewKeep {
			continue
		}
		k.next = 2 * len(k.data)
		k.look(k.data)
	}
}

// look settles the preview on data, the bytes kept so far, if they can:
// see add.
func (k *preview) look(data []byte) bool {
	if k.html {
		return false
	}
	utf8Part := isUTF8Name(k.charset)
	if !utf8Part && !isASCIIName(k.charset) {
		return false
	}
	var scratch [foldScratch]byte
	out, runes, ascii, valid := foldClip(data, previewChars, utf8.DecodeRune, scratch[:0])
	if runes == previewChars && (ascii || utf8Part && valid) {
		k.done, k.text, k.data = true, string(out), nil
		return true
	}
	return false
}

// previewText is the first previewChars characters of the first text/plain
// body part, else of the first text/html one with its tags removed; runs of
// white space are folded to one space.
func (p *impl) previewText() string {
	for _, pv := range []*preview{p.plain, p.html} {
		if pv == nil {
			continue
		}
		if pv.done {
			if pv.text != "" {
				return pv.text
			}
			continue
		}
		s := p.convert(pv.charset, pv.data)
		if pv.html {
			s = stripHTML(s)
		}
		var scratch [foldScratch]byte
		if out, _, _, _ := foldClip(s, previewChars, utf8.DecodeRuneInString, scratch[:0]); out != "" {
			return string(out)
		}
	}
	return ""
}

// foldScratch is the scratch foldClip needs for a preview: previewChars
// characters of at most utf8.UTFMax bytes.
const foldScratch = previewChars * utf8.UTFMax

// asciiWord tells the ASCII bytes that are not white space.
var asciiWord = func() (t [256]bool) {
	for c := 0; c < utf8.RuneSelf; c++ {
		t[c] = !strings.ContainsRune(" \t\n\r\v\f", rune(c))
	}
	return t
}()

// foldClip returns the first n characters of s with leading and trailing
// white space removed and every run of white space inside folded to one
// space (what clipping strings.Join(strings.Fields(s), " ") to n runes
// gives), in one pass that stops as soon as n characters are produced. It
// also returns how many characters it produced, whether the bytes it read
// to produce them were all ASCII and whether they were valid UTF-8. An
// invalid byte counts as one character, as in utf8.DecodeRune.
//
// When the output cannot be a slice of s it is built in scratch (grown if
// it is too small): the caller copies it out before reusing scratch.
func foldClip[T string | []byte](s T, n int, decode func(T) (rune, int), scratch []byte) (out T, runes int, ascii, valid bool) {
	ascii, valid = true, true
	first := true
	space := false // a folded space is pending
	start, end := 0, 0
	var b []byte // the output once it is not a plain slice of s
	for i := 0; i < len(s) && runes < n; {
		c := s[i]
		if !first && !space && asciiWord[c] {
			// Inside a word of ASCII: take the run at once.
			j, lim := i+1, min(len(s), i+n-runes)
			for j < lim && asciiWord[s[j]] {
				j++
			}
			if b == nil {
				end = j
			} else {
				b = append(b, s[i:j]...)
			}
			runes += j - i
			i = j
			continue
		}
		var r rune
		w := 1
		if c < utf8.RuneSelf {
			r = rune(c)
		} else {
			ascii = false
			r, w = decode(s[i:])
			if r == utf8.RuneError && w == 1 {
				valid = false
			}
		}
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || c >= utf8.RuneSelf && unicode.IsSpace(r) {
			space = !first
			i += w
			continue
		}
		if first {
			start, end, first = i, i, false
		} else if space {
			if b == nil && end+1 == i && s[end] == ' ' {
				end++ // a single ASCII space in s: the output is still a slice of s
			} else {
				if b == nil {
					b = append(scratch[:0], s[start:end]...)
				}
				b = append(b, ' ')
			}
			space = false
			if runes++; runes == n {
				break // the space is the last character
			}
		}
		if b == nil {
			end = i + w
		} else {
			b = append(b, s[i:i+w]...)
		}
		runes++
		i += w
	}
	if b != nil {
		return T(b), runes, ascii, valid
	}
	return s[start:end], runes, ascii, valid
}

// stripHTML reduces HTML to its text: tags and comments are removed, the
// content of head, script and style elements is dropped, block elements
// become spaces and character references are decoded.
func stripHTML(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		s = s[i:]
		if strings.HasPrefix(s, "<!--") {
			if j := strings.Index(s[4:], "-->"); j >= 0 {
				s = s[4+j+3:]
			} else {
				s = ""
			}
			continue
		}
		if len(s) < 2 || !(isLetter(s[1]) || s[1] == '/' || s[1] == '!' || s[1] == '?') {
			b.WriteByte('<')
			s = s[1:]
			continue
		}
		j := strings.IndexByte(s, '>')
		if j < 0 {
			break
		}
		name := tagName(s[1:j])
		s = s[j+1:]
		switch name {
		case "script", "style", "head", "title":
			end := "</" + name
			if k := indexFold(s, end); k >= 0 {
				s = s[k:]
				if m := strings.IndexByte(s, '>'); m >= 0 {
					s = s[m+1:]
				} else {
					s = ""
				}
			} else {
				s = ""
			}
		case "br", "p", "/p", "div", "/div", "tr", "/tr", "td", "th", "li", "h1", "h2", "h3",
			"h4", "h5", "h6", "/h1", "/h2", "/h3", "/h4", "/h5", "/h6", "table", "/table", "hr", "blockquote", "/blockquote":
			b.WriteByte(' ')
		}
	}
	return html.UnescapeString(b.String())
}

func isLetter(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }

func tagName(t string) string {
	end := 0
	for end < len(t) && t[end] != ' ' && t[end] != '\t' && t[end] != '\r' && t[end] != '\n' && t[end] != '/' || end == 0 && end < len(t) && t[end] == '/' {
		end++
	}
	return strings.ToLower(t[:end])
}

func indexFold(s, sub string) int {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		if strings.EqualFold(s[i:i+n], sub) {
			return i
		}
	}
	return -1
}
