package message

import (
	"bytes"
	"mime"
	"net/mail"
	"slices"
	"strings"
	"sync"

	"github.com/mailtap/mailtap/decode"
)

// Internal limits.
const (
	maxHeader       = 1 << 20  // top-level header block
	maxPartHeader   = 64 << 10 // header block of a part or embedded message
	maxLine         = 64 << 10 // longer lines are passed on in pieces
	maxBoundaryLine = 1024     // longer lines are never boundaries
	maxParts        = 10000
	maxAttachments  = 1000
	maxAddresses    = 1000
	previewKeep     = 64 << 10 // decoded bytes of a body part kept for the preview
	previewChars    = 200
	maxKeptFields   = 256 // a released parser keeps its field slice up to this capacity
)

// Entity states.
const (
	stHeader    = iota // reading the header block
	stLeaf             // body decoded by leaf
	stPreamble         // multipart, before the first boundary
	stParts            // multipart, a part is open (the entity above it)
	stEpilogue         // multipart, after the close delimiter
	stEmbedded         // message/rfc822: the embedded message is the entity above
	stSkip             // body ignored
	stUndecided        // message/rfc822 with a transfer encoding: see decide
)

// How an entity ended.
const (
	endBoundary = iota // a boundary of an enclosing multipart
	endEOF             // the end of the message
	endStopped         // MaxParse reached
)

// entity is one node of the MIME tree being parsed: the message, a part of
// a multipart, or a message embedded in a message/rfc822 part.
type entity struct {
	depth    int
	top      bool
	defType  string // media type when Content-Type is absent
	hdr      []byte
	hdrBuf   *[2048]byte // from hdrPool: hdr's first buffer
	hdrCap   int
	hdrOver  bool
	state    int
	sawBody  bool
	boundary string
	digest   bool
	leaf     *leaf // stLeaf
	raw      *leaf // stEmbedded listed as an attachment: hashes the raw part
	att      int   // index in Attachments, or -1
	part     *part // from the header, once parsed
}

type impl struct {
	o         Options
	h         *decode.MultiHash
	n         int64
	parsed    int64
	w         decode.MessageWriter
	wfail     bool
	stop      bool
	truncated bool
	done      *decode.Message

	msg   decode.Message
	anoms []string

	line []byte // bytes of an unfinished line
	cont bool   // the next line dispatched continues a line already passed on in pieces

	stack []*entity
	raws  int // entities in stack with raw != nil
	parts int

	// what most messages need, without an allocation each
	top      entity
	stackBuf [4]*entity
	lineBuf  [128]byte
	leafBuf  leaf // the first leaf
	leafUsed bool
	plainBuf preview // p.plain's storage
	topPart  part    // p.top.part's storage
	fields   []field // parseHeader's result, reused
	keepBuf  []byte  // lent to p.plain for its data, reused
	htmlBuf  preview // p.html's storage

	plain, html *preview
	ap          mail.AddressParser
}

// hdrPool holds buffers for header blocks.
var hdrPool = sync.Pool{New: func() any { return new([2048]byte) }}

// parsers keeps released parsers for reuse: a Parser is large (about
// 1 KB, what most messages need inline) and a busy server sees one per
// message.
var parsers sync.Pool

// wordDecoder is shared: a mime.WordDecoder holds no state but its hook.
var wordDecoder = &mime.WordDecoder{CharsetReader: charsetReader}

func newParser(o Options) *Parser {
	if o.MaxMemory <= 0 {
		o.MaxMemory = DefaultMaxMemory
	}
	if o.MaxParse <= 0 {
		o.MaxParse = DefaultMaxParse
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if o.Attachments == nil {
		// An extraction writer may also take the decoded attachments.
		if as, ok := o.Writer.(decode.AttachmentStore); ok {
			o.Attachments = as.Attachment
		}
	}
	p, _ := parsers.Get().(*Parser)
	if p == nil {
		p = new(Parser)
	}
	// a released parser's buffers and hash are kept (see Release)
	p.impl = impl{o: o, h: p.h.Reuse(o.Hashes), w: o.Writer, fields: p.fields, keepBuf: p.keepBuf}
	p.ap = mail.AddressParser{WordDecoder: wordDecoder}
	hcap := int64(maxHeader)
	if o.MaxMemory/2 < hcap {
		hcap = max(o.MaxMemory/2, 1024)
	}
	p.top = entity{top: true, defType: "text/plain", hdrCap: int(hcap), att: -1}
	p.stack = append(p.stackBuf[:0], &p.top)
	p.line = p.lineBuf[:0]
	return p
}

func (p *impl) anomaly(a decode.Anomaly) {
	if !slices.Contains(p.anoms, string(a)) {
		p.anoms = append(p.anoms, string(a))
	}
}

func (p *impl) size() int64 { return p.n }

func (p *impl) write(b []byte) (int, error) {
	if p.done != nil {
		return len(b), nil
	}
	n := len(b)
	p.h.Write(b)
	p.n += int64(n)
	if p.w != nil && !p.wfail {
		if _, err := p.w.Write(b); err != nil {
			p.wfail = true
			p.anomaly(decode.AnomalyExtractWriteFailed)
		}
	}
	if p.stop {
		return n, nil
	}
	if rest := p.o.MaxParse - p.parsed; int64(len(b)) > rest {
		p.feed(b[:rest])
		p.parsed += rest
		p.stop = true
		p.anomaly(decode.AnomalyMessageTooLargeForMIMEParse)
		return n, nil
	}
	p.feed(b)
	p.parsed += int64(len(b))
	return n, nil
}

// feed splits b into lines. A line up to maxLine bytes is always dispatched
// whole, whatever the chunking of Write; longer ones are dispatched in
// pieces (complete=false, then the tail with complete=true and p.cont).
func (p *impl) feed(b []byte) {
	for len(b) > 0 {
		if len(p.line) == 0 && !p.cont {
			if n := p.block(b); n > 0 {
				b = b[n:]
				continue
			}
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if len(p.line)+len(b) <= maxLine {
				p.line = append(p.line, b...)
				return
			}
			p.piece(p.line)
			p.line = p.line[:0]
			p.piece(b)
			return
		}
		seg := b[:i+1]
		b = b[i+1:]
		if len(p.line) > 0 {
			if len(p.line)+len(seg) > maxLine {
				p.piece(p.line)
			} else {
				p.line = append(p.line, seg...)
				seg = p.line
			}
		}
		p.dispatch(seg, true)
		p.cont = false
		p.line = p.line[:0]
	}
}

// block dispatches, at the start of a line, the run of whole lines at the
// start of b that dispatch would send one by one to the same entity, and
// returns its length (0: dispatch line by line). That is when the innermost
// entity takes body lines that are decoded alike in one piece (skipped, or
// a leaf not in quoted-printable) and no line of the run but the first can
// be a boundary: none starts with "--", or no multipart is open.
//
// Such a leaf decodes the run as it would its lines: its line breaks are
// content but the last, which is held back as a line's would be, and
// base64 skips them. Lines longer than maxLine, dispatched in pieces
// otherwise, are never boundaries and decode alike whole.
func (p *impl) block(b []byte) int {
	e := p.stack[len(p.stack)-1]
	switch e.state {
	case stLeaf:
		if e.leaf.enc == encQP {
			return 0
		}
	case stSkip, stEpilogue, stPreamble:
	default:
		return 0
	}
	if b[0] == '-' && (len(b) == 1 || b[1] == '-') {
		return 0 // the first line may be a boundary
	}
	end := len(b)
	if p.bounded() {
		if j := dashLine(b); j >= 0 {
			end = j
		}
	}
	n := bytes.LastIndexByte(b[:end], '\n') + 1
	if n == 0 {
		return 0
	}
	p.dispatch(b[:n], true)
	return n
}

// bounded reports whether a multipart is open, whose boundary may come.
func (p *impl) bounded() bool {
	for _, e := range p.stack {
		if e.boundary != "" && e.state != stEpilogue {
			return true
		}
	}
	return false
}

// dashLine returns the index of the first "--" in b that starts a line
// after the first, or -1.
func dashLine(b []byte) int {
	for i, fails := 0, 0; ; fails++ {
		if fails == 8 {
			// many dashes inside lines: look for the line starts alone
			j := bytes.Index(b[i:], []byte("\n--"))
			if j < 0 {
				return -1
			}
			return i + j + 1
		}
		j := bytes.IndexByte(b[i:], '-')
		if j < 0 {
			return -1
		}
		i += j
		if i > 0 && b[i-1] == '\n' && i+1 < len(b) && b[i+1] == '-' {
			return i
		}
		i++
	}
}

func (p *impl) piece(b []byte) {
	if len(b) > 0 {
		p.dispatch(b, false)
		p.cont = true
	}
}

// dispatch routes one line (or piece of a long line) to the entity it
// belongs to: a boundary of an open multipart closes the entities above it,
// anything else goes to the innermost entity.
func (p *impl) dispatch(line []byte, complete bool) {
	limit := len(p.stack)
	if complete && !p.cont && len(line) <= maxBoundaryLine && len(line) >= 2 && line[0] == '-' && line[1] == '-' {
		for i := len(p.stack) - 1; i >= 0; i-- {
			e := p.stack[i]
			if e.boundary == "" || e.state == stEpilogue {
				continue
			}
			m := matchBoundary(line, e.boundary)
			if m == 0 {
				continue
			}
			for len(p.stack) > i+1 {
				p.pop(endBoundary)
			}
			p.rawLine(i, line, complete)
			e.sawBody = true
			if m == 2 {
				e.state = stEpilogue
				return
			}
			e.state = stParts
			p.parts++
			c := &entity{depth: e.depth + 1, defType: "text/plain", hdrCap: maxPartHeader, att: -1}
			if e.digest {
				c.defType = "message/rfc822"
			}
			if p.parts > maxParts {
				p.anomaly(decode.AnomalyTooManyParts)
				c.state = stSkip
			}
			p.stack = append(p.stack, c)
			return
		}
	}
	p.rawLine(limit, line, complete)
	e := p.stack[len(p.stack)-1]
	switch e.state {
	case stHeader:
		p.headerLine(e, line, complete)
	case stLeaf:
		e.sawBody = true
		e.leaf.line(p, line, complete)
	case stUndecided:
		p.decide(e, line, complete)
	default:
		e.sawBody = true
	}
}

// rawLine feeds the line to the raw hashers of embedded messages below
// stack index limit.
func (p *impl) rawLine(limit int, line []byte, complete bool) {
	if p.raws == 0 {
		return
	}
	for _, e := range p.stack[:limit] {
		if e.raw != nil {
			e.raw.line(p, line, complete)
		}
	}
}

// matchBoundary reports 1 for a delimiter line of boundary b, 2 for its
// close delimiter, 0 otherwise. Transport padding is ignored.
func matchBoundary(line []byte, b string) int {
	line = bytes.TrimRight(line, " \t\r\n")
	if len(line) < 2+len(b) || string(line[2:2+len(b)]) != b {
		return 0
	}
	switch rest := line[2+len(b):]; {
	case len(rest) == 0:
		return 1
	case string(rest) == "--":
		return 2
	}
	return 0
}

func (p *impl) headerLine(e *entity, line []byte, complete bool) {
	if complete && !p.cont && (string(line) == "\r\n" || string(line) == "\n") {
		p.endHeader(e, true)
		return
	}
	if e.hdrOver {
		return
	}
	if e.hdr == nil {
		// a buffer that holds most header blocks, reused (hdrCap, not
		// its capacity, bounds the block)
		e.hdrBuf = hdrPool.Get().(*[2048]byte)
		e.hdr = e.hdrBuf[:0]
	}
	if room := e.hdrCap - len(e.hdr); len(line) > room {
		e.hdr = append(e.hdr, line[:room]...)
		e.hdrOver = true
		p.anomaly(decode.AnomalyHeaderTooLarge)
		return
	}
	e.hdr = append(e.hdr, line...)
}

// endHeader parses e's header block and sets up its body. push says a body
// follows (the blank line was seen): an embedded message then gets its
// own entity.
func (p *impl) endHeader(e *entity, push bool) {
	fields := p.parseHeader(e.hdr, e.hdrOver) // refers to e.hdr no more
	e.hdr = nil
	if e.hdrBuf != nil {
		hdrPool.Put(e.hdrBuf)
		e.hdrBuf = nil
	}
	if e.top {
		p.summarise(fields)
	}
	mt := e.defType
	var params map[string]string
	if ct := fieldValue(fields, "content-type"); ct != "" {
		v, ps := p.params(ct)
		if validMediaType(v) {
			mt, params = v, ps
		} else {
			p.anomaly(decode.AnomalyBadContentType)
		}
	}
	disp, dparams := p.params(fieldValue(fields, "content-disposition"))
	filename := dparams["filename"]
	if filename == "" {
		filename = params["name"]
	}
	var pt *part
	if e.top {
		pt = &p.topPart
	} else {
		pt = new(part)
	}
	e.part = pt
	*pt = part{
		mt:       mt,
		cte:      strings.ToLower(strings.TrimSpace(fieldValue(fields, "content-transfer-encoding"))),
		disp:     disp,
		filename: p.decodeWords(p.fixUTF8(strings.TrimSpace(filename))),
		charset:  params["charset"],
	}
	container := strings.HasPrefix(mt, "multipart/") || mt == "message/rfc822" || mt == "message/global"
	if container && e.depth >= p.o.MaxDepth {
		p.anomaly(decode.AnomalyMIMEDepthExceeded)
		e.state = stSkip
		return
	}
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		e.boundary = params["boundary"]
		if e.boundary == "" {
			p.anomaly(decode.AnomalyMultipartWithoutBoundary)
			e.state = stSkip
			return
		}
		e.state = stPreamble
		e.digest = mt == "multipart/digest"
	case mt == "message/rfc822" || mt == "message/global":
		if identityCTE(e.part.cte) {
			p.startEmbedded(e, push)
			return
		}
		// RFC 2046 §5.2.1 allows no other encoding here, so readers
		// disagree (an evasion trick): the first body line decides.
		p.anomaly(decode.AnomalyEncodedMessageRFC822)
		e.state = stUndecided
	default:
		p.startLeaf(e)
	}
}

// part is what a part's header says about its body.
type part struct {
	mt, cte, disp, filename, charset string
}

func (p *impl) attach(pt *part) int {
	if len(p.msg.Attachments) >= maxAttachments {
		p.anomaly(decode.AnomalyTooManyAttachments)
		return -1
	}
	p.msg.Attachments = append(p.msg.Attachments, decode.Attachment{
		Filename: pt.filename, ContentType: pt.mt, Inline: pt.disp == "inline",
	})
	return len(p.msg.Attachments) - 1
}

// startEmbedded makes e a message/rfc822 part whose body is parsed as a
// message (pushed when push says a body follows).
func (p *impl) startEmbedded(e *entity, push bool) {
	e.state = stEmbedded
	if e.part.filename != "" || e.part.disp == "attachment" {
		if e.att = p.attach(e.part); e.att >= 0 {
			e.raw = &leaf{h: decode.NewMultiHash(p.o.Hashes), w: p.attachmentWriter(e.att)}
			p.raws++
		}
	}
	if push {
		p.stack = append(p.stack, &entity{depth: e.depth + 1, defType: "text/plain", hdrCap: maxPartHeader, att: -1})
	}
}

// startLeaf makes e a leaf: attachment, preview candidate, or neither.
func (p *impl) startLeaf(e *entity) {
	pt := e.part
	e.state = stLeaf
	l := &p.leafBuf
	if p.leafUsed {
		l = &leaf{}
	}
	p.leafUsed = true
	switch pt.cte {
	case "", "7bit", "8bit", "binary":
	case "base64":
		l.enc = encBase64
	case "quoted-printable":
		l.enc = encQP
	default:
		p.anomaly(decode.AnomalyUnknownTransferEncoding)
	}
	e.leaf = l
	switch {
	case pt.filename != "" || pt.disp == "attachment" || !strings.HasPrefix(pt.mt, "text/"):
		if e.att = p.attach(pt); e.att >= 0 {
			l.h = decode.NewMultiHash(p.o.Hashes)
			l.w = p.attachmentWriter(e.att)
		}
	case pt.mt == "text/plain" && p.plain == nil:
		if p.keepBuf == nil {
			p.keepBuf = make([]byte, 0, 1024) // what settles most previews
		}
		p.plainBuf = preview{charset: pt.charset, data: p.keepBuf[:0]}
		p.plain = &p.plainBuf
		l.keep = p.plain
	case pt.mt == "text/html" && p.html == nil:
		p.htmlBuf = preview{charset: pt.charset, html: true}
		p.html = &p.htmlBuf
		l.keep = p.html
	}
}

// decide settles an encoded message/rfc822 part on its first body line: a
// header field means a plain message (descended, as Suricata does), else
// the body is decoded as declared and listed as an attachment.
func (p *impl) decide(e *entity, line []byte, complete bool) {
	if i := bytes.IndexByte(line, ':'); complete && !p.cont && i > 0 && validFieldName(bytes.TrimRight(line[:i], " \t")) {
		p.startEmbedded(e, true)
		if e.raw != nil {
			e.raw.line(p, line, complete)
		}
		p.headerLine(p.stack[len(p.stack)-1], line, complete)
		return
	}
	p.startLeaf(e)
	e.sawBody = true
	e.leaf.line(p, line, complete)
}

func identityCTE(cte string) bool {
	switch cte {
	case "", "7bit", "8bit", "binary":
		return true
	}
	return false
}

func validMediaType(v string) bool {
	i := strings.IndexByte(v, '/')
	if i <= 0 || i == len(v)-1 {
		return false
	}
	for _, c := range []byte(v) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"[]?=`, c) >= 0 {
			return false
		}
	}
	return true
}

// pop closes the innermost entity.
func (p *impl) pop(how int) {
	e := p.stack[len(p.stack)-1]
	p.stack = p.stack[:len(p.stack)-1]
	p.close(e, how)
}

func (p *impl) close(e *entity, how int) {
	if e.state == stHeader {
		p.endHeader(e, false)
	}
	if e.state == stUndecided {
		p.startLeaf(e)
	}
	switch e.state {
	case stLeaf:
		e.leaf.finish(p)
		if e.att < 0 {
			return
		}
		if e.top && !e.sawBody {
			// a header-only fetch: no body, nothing attached
			if e.leaf.w != nil {
				e.leaf.w.Close()
			}
			p.msg.Attachments = p.msg.Attachments[:e.att]
			return
		}
		p.setAttachment(e.att, e.leaf, how)
	case stEmbedded:
		if e.raw != nil {
			e.raw.finish(p)
			p.raws--
			p.setAttachment(e.att, e.raw, how)
		}
	case stPreamble, stParts:
		if !e.sawBody || how == endStopped || (how == endEOF && p.truncated) {
			return
		}
		if e.state == stPreamble {
			p.anomaly(decode.AnomalyBoundaryNotFound)
		} else {
			p.anomaly(decode.AnomalyMissingFinalBoundary)
		}
	}
}

func (p *impl) setAttachment(i int, l *leaf, how int) {
	a := &p.msg.Attachments[i]
	a.Size = l.size
	// Cut by the parse limit, or still open when a truncated message
	// ended: its bytes were not all seen, so no hash would be its own.
	if how == endStopped || (how == endEOF && p.truncated) {
		a.Truncated = true
		if pw, ok := l.w.(decode.PartialWriter); ok {
			pw.Partial()
		}
	} else {
		a.SHA256, a.MD5, a.SHA1 = l.h.Sums()
	}
	if l.w != nil {
		f, err := l.w.Close()
		if err != nil {
			p.anomaly(decode.AnomalyExtractCloseFailed)
		}
		if l.wfail {
			p.anomaly(decode.AnomalyExtractWriteFailed)
		}
		a.File = f
	}
}

// attachmentWriter asks Options.Attachments for a writer for attachment i.
func (p *impl) attachmentWriter(i int) decode.MessageWriter {
	if p.o.Attachments == nil {
		return nil
	}
	return p.o.Attachments(p.msg.Attachments[i])
}

func (p *impl) finish(truncated bool) *decode.Message {
	if p.done != nil {
		return p.done
	}
	p.truncated = truncated
	how := endStopped
	if !p.stop {
		how = endEOF
		if len(p.line) > 0 {
			p.dispatch(p.line, true)
			p.cont = false
		}
	}
	for len(p.stack) > 0 {
		p.pop(how)
	}
	m := p.msg
	m.Size = p.n
	m.SHA256, m.MD5, m.SHA1 = p.h.Sums()
	m.Truncated = truncated
	m.TextPreview = p.previewText()
	if p.w != nil {
		f, err := p.w.Close()
		if err != nil {
			p.anomaly(decode.AnomalyExtractCloseFailed)
		}
		m.File = f
	}
	if len(p.anoms) > 0 {
		m.Anomalies = slices.Clone(p.anoms) // first-seen order
	}
	p.done = &m
	p.line, p.plain, p.html = nil, nil, nil
	return p.done
}
