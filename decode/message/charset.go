package message

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"

	"github.com/mailtap/mailtap/decode"
)

// lookupCharset finds a decoder for a MIME charset name. The WHATWG index
// comes first (it knows the labels mailers actually write: gb2312 is read as
// GBK, iso-8859-1 and us-ascii as Windows-1252, ks_c_5601-1987 as EUC-KR),
// then the IANA registry. nil means unknown.
func lookupCharset(name string) encoding.Encoding {
	name = strings.ToLower(strings.Trim(name, " \t\"'"))
	if name == "" {
		return nil
	}
	if e, err := htmlindex.Get(name); err == nil && e != encoding.Replacement {
		return e
	}
	if e, err := ianaindex.MIME.Encoding(name); err == nil && e != nil {
		return e
	}
	if strings.HasPrefix(name, "x-") {
		return lookupCharset(name[2:])
	}
	return nil
}

// charsetReader is the mime.WordDecoder hook (used by net/mail).
func charsetReader(cs string, r io.Reader) (io.Reader, error) {
	e := lookupCharset(cs)
	if e == nil {
		return nil, fmt.Errorf("unknown charset %q", cs)
	}
	return e.NewDecoder().Reader(r), nil
}

func isUTF8Name(cs string) bool {
	cs = strings.ToLower(strings.Trim(cs, " \t\"'"))
	return cs == "utf-8" || cs == "utf8"
}

func isASCIIName(cs string) bool {
	cs = strings.ToLower(strings.Trim(cs, " \t\"'"))
	return cs == "" || cs == "us-ascii" || cs == "ascii"
}

// convert returns b, written in charset cs, as UTF-8. An empty or ASCII
// charset takes UTF-8 when the bytes are valid UTF-8 (mailers often send
// 8-bit text undeclared) and Windows-1252 otherwise; an unknown charset is
// reported and read the same way.
func (p *impl) convert(cs string, b []byte) string {
	switch {
	case isUTF8Name(cs):
		return strings.ToValidUTF8(string(b), "\uFFFD")
	case isASCIIName(cs):
	default:
		if e := lookupCharset(cs); e != nil {
			s, err := e.NewDecoder().Bytes(b)
			if err == nil {
				return strings.ToValidUTF8(string(s), "\uFFFD")
			}
		}
		p.anomaly(decode.AnomalyUnknownCharset)
	}
	if utf8.Valid(b) {
		return string(b)
	}
	return decodeWindows1252(b)
}

func decodeWindows1252(b []byte) string {
	s, err := charmap.Windows1252.NewDecoder().Bytes(b)
	if err != nil {
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	return string(s)
}
