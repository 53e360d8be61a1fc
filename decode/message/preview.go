package message

import (
	"html"
	"strings"
	"unicode/utf8"
)

// previewText is the first previewChars characters of the first text/plain
// body part, else of the first text/html one with its tags removed; runs of
// white space are folded to one space.
func (p *impl) previewText() string {
	for _, pv := range []*preview{p.plain, p.html} {
		if pv == nil {
			continue
		}
		s := p.convert(pv.charset, pv.data)
		if pv.html {
			s = stripHTML(s)
		}
		if s = clip(strings.Join(strings.Fields(s), " "), previewChars); s != "" {
			return s
		}
	}
	return ""
}

func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for n > 0 {
		_, w := utf8.DecodeRuneInString(s[i:])
		i += w
		n--
	}
	return s[:i]
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
