package tui

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/textproto"
	"strings"

	"golang.org/x/text/encoding/htmlindex"
)

// maxParts and maxDepth bound the MIME tree of one message.
const (
	maxParts = 500
	maxDepth = 20
)

// Parsed is one message re-read from the spill: its header fields, its
// MIME tree and the decoded content of every leaf part.
type Parsed struct {
	Header []Field
	Parts  []Part
	// Text indexes the part shown as the message text (-1: none).
	Text int
	Err  error // what stopped the parse early, if anything
}

// Field is one header field, its value with encoded words decoded.
type Field struct{ Name, Value string }

// Part is one node of the MIME tree.
type Part struct {
	Path        string // "1", "1.2", ...
	Depth       int
	ContentType string // media type, lower case
	Charset     string
	Encoding    string // content-transfer-encoding, lower case
	Filename    string
	Disposition string
	Multipart   bool
	// Size and SHA256 of the decoded content (leaves only).
	Size   int64
	SHA256 string
	Data   []byte
	// Bad is set when the transfer encoding did not decode cleanly.
	Bad bool
}

var wordDecoder = &mime.WordDecoder{CharsetReader: func(cs string, r io.Reader) (io.Reader, error) {
	e, err := htmlindex.Get(cs)
	if err != nil {
		return nil, err
	}
	return e.NewDecoder().Reader(r), nil
}}

// decodeHeader decodes RFC 2047 encoded words; on failure it keeps the
// raw value.
func decodeHeader(v string) string {
	if d, err := wordDecoder.DecodeHeader(v); err == nil {
		return d
	}
	return v
}

// ParseMessage reads raw (one message as transferred) into its header
// and MIME tree. It never fails as a whole: what could not be parsed is
// in Err and the parts read until then are kept.
func ParseMessage(raw []byte) *Parsed {
	p := &Parsed{Text: -1}
	br := bufio.NewReader(bytes.NewReader(raw))
	tp := textproto.NewReader(br)
	hdr, err := readHeader(tp, &p.Header)
	if err != nil {
		p.Err = fmt.Errorf("header: %w", err)
	}
	p.part(hdr, br, "1", 0)
	for i, pt := range p.Parts {
		if pt.Multipart || pt.Disposition == "attachment" {
			continue
		}
		if pt.ContentType == "text/plain" {
			p.Text = i
			break
		}
		if strings.HasPrefix(pt.ContentType, "text/") && p.Text < 0 {
			p.Text = i
		}
	}
	return p
}

// readHeader reads one header block keeping the fields in order.
func readHeader(tp *textproto.Reader, fields *[]Field) (textproto.MIMEHeader, error) {
	h := textproto.MIMEHeader{}
	for {
		line, err := tp.ReadContinuedLine()
		if line == "" {
			if err == io.EOF {
				err = nil
			}
			return h, err
		}
		name, val, ok := strings.Cut(line, ":")
		if ok {
			name = textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(name))
			val = strings.TrimSpace(val)
			h.Add(name, val)
			if fields != nil && len(*fields) < 1000 {
				*fields = append(*fields, Field{name, decodeHeader(val)})
			}
		}
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return h, err
		}
	}
}

func (p *Parsed) part(h textproto.MIMEHeader, body io.Reader, path string, depth int) {
	if len(p.Parts) >= maxParts {
		return
	}
	ct := h.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil {
		mt, params = "text/plain", map[string]string{}
	}
	pt := Part{Path: path, Depth: depth, ContentType: strings.ToLower(mt), Charset: params["charset"],
		Encoding: strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))}
	if d, dp, err := mime.ParseMediaType(h.Get("Content-Disposition")); err == nil {
		pt.Disposition = strings.ToLower(d)
		pt.Filename = dp["filename"]
	}
	if pt.Filename == "" {
		pt.Filename = params["name"]
	}
	pt.Filename = decodeHeader(pt.Filename)
	if strings.HasPrefix(pt.ContentType, "multipart/") && params["boundary"] != "" && depth < maxDepth {
		pt.Multipart = true
		p.Parts = append(p.Parts, pt)
		data, err := io.ReadAll(body)
		if err != nil && p.Err == nil {
			p.Err = fmt.Errorf("part %s: %w", path, err)
		}
		for n, sub := range splitMultipart(data, params["boundary"]) {
			br := bufio.NewReader(bytes.NewReader(sub))
			sh, _ := readHeader(textproto.NewReader(br), nil)
			p.part(sh, br, fmt.Sprintf("%s.%d", path, n+1), depth+1)
		}
		return
	}
	if pt.ContentType == "message/rfc822" && depth < maxDepth {
		// Shown as one leaf (its bytes can be saved as .eml); the inner
		// tree follows it.
		data, _ := io.ReadAll(body)
		pt.Data = data
		pt.Size = int64(len(data))
		sum := sha256.Sum256(data)
		pt.SHA256 = hex.EncodeToString(sum[:])
		p.Parts = append(p.Parts, pt)
		br := bufio.NewReader(bytes.NewReader(data))
		ih, _ := readHeader(textproto.NewReader(br), nil)
		p.part(ih, br, path+".1", depth+1)
		return
	}
	raw, err := io.ReadAll(body)
	if err != nil && p.Err == nil {
		p.Err = fmt.Errorf("part %s: %w", path, err)
	}
	pt.Data, pt.Bad = decodeTransfer(pt.Encoding, raw)
	pt.Size = int64(len(pt.Data))
	sum := sha256.Sum256(pt.Data)
	pt.SHA256 = hex.EncodeToString(sum[:])
	p.Parts = append(p.Parts, pt)
}

// decodeTransfer undoes a content-transfer-encoding, leniently as mail
// readers do: base64 ignores whitespace and stops at the first bad
// character; quoted-printable keeps what it cannot read.
func decodeTransfer(enc string, raw []byte) ([]byte, bool) {
	switch enc {
	case "base64":
		clean := make([]byte, 0, len(raw))
		for _, c := range raw {
			switch {
			case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/':
				clean = append(clean, c)
			case c == '=':
				// padding: the rest is ignored
				goto done
			}
		}
	done:
		clean = clean[:len(clean)/4*4+keepTail(len(clean)%4)]
		out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
		n, err := base64.RawStdEncoding.Decode(out, clean)
		return out[:n], err != nil
	case "quoted-printable":
		out, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return raw, true
		}
		return out, false
	}
	return raw, false
}

// keepTail is how many base64 characters past the last full quantum can
// still decode (1 cannot).
func keepTail(n int) int {
	if n == 1 {
		return 0
	}
	return n
}

// TextOf returns the decoded text of part pt: its charset converted to
// UTF-8 (unknown charsets are shown as they are, invalid bytes escaped
// later by the renderer).
func TextOf(pt *Part) string {
	cs := strings.ToLower(pt.Charset)
	if cs == "" || cs == "utf-8" || cs == "us-ascii" || cs == "utf8" {
		return string(pt.Data)
	}
	e, err := htmlindex.Get(cs)
	if err != nil {
		return string(pt.Data)
	}
	out, err := e.NewDecoder().Bytes(pt.Data)
	if err != nil {
		return string(pt.Data)
	}
	return string(out)
}

// splitMultipart returns the body parts between the delimiter lines of
// boundary, leniently (as mail readers do): a missing close delimiter
// ends the last part at the end of data, and header bytes that
// net/textproto would refuse (controls in a filename) are kept for the
// renderer to escape.
func splitMultipart(data []byte, boundary string) [][]byte {
	delim := []byte("--" + boundary)
	var parts [][]byte
	start := -1 // start of the current part's bytes
	for off := 0; off < len(data); {
		end := bytes.IndexByte(data[off:], '\n')
		next := len(data)
		if end >= 0 {
			next = off + end + 1
		}
		ln := bytes.TrimRight(data[off:next], "\r\n")
		if bytes.HasPrefix(ln, delim) {
			rest := bytes.TrimRight(ln[len(delim):], " \t")
			closing := bytes.Equal(rest, []byte("--"))
			if len(rest) == 0 || closing {
				if start >= 0 {
					// The line break before the delimiter belongs to it.
					parts = append(parts, trimEOL(data[start:off]))
				}
				if closing || len(parts) >= maxParts {
					return parts
				}
				start = next
			}
		}
		off = next
	}
	if start >= 0 && start < len(data) {
		parts = append(parts, data[start:])
	}
	return parts
}

func trimEOL(b []byte) []byte {
	if bytes.HasSuffix(b, []byte("\r\n")) {
		return b[:len(b)-2]
	}
	return bytes.TrimSuffix(b, []byte("\n"))
}
