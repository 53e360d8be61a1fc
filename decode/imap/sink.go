package imap

import (
	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/message"
)

// litSink receives one body section (FETCH) or appended message (APPEND)
// as it streams: whole messages and headers go through the message
// parser, MIME parts are only counted and hashed.
type litSink struct {
	x       *Session
	lit     *Literal
	section string
	whole   bool // message or header: parse it
	dir     string
	mailbox string
	seq     uint32
	uid     uint32
	flags   []string
	trunc   bool // partial fetch of less than the whole

	started bool
	msg     *message.Parser
	h       *decode.MultiHash
	n       int64
	result  *decode.Message
	emitted bool
}

func (x *Session) newSink(lit *Literal, section, dir string) *litSink {
	return &litSink{x: x, lit: lit, section: section, whole: isWholeSection(section), dir: dir, mailbox: x.mailbox}
}

func (s *litSink) start() {
	if s.started {
		return
	}
	s.started = true
	if !s.whole {
		s.h = decode.NewMultiHash(s.x.Opts.Hashes)
		return
	}
	x := s.x
	o := message.Options{MaxMemory: min(x.Opts.MaxMessage, x.Opts.MaxLiteral), Hashes: x.Opts.Hashes}
	if x.Opts.Messages != nil {
		x.nmsg++
		o.Writer = x.Opts.Messages.Create(x.Conn, decode.ProtoIMAP, x.nmsg)
	}
	s.msg = message.New(o)
}

// Write implements io.Writer; it never fails.
func (s *litSink) Write(p []byte) (int, error) {
	if s.result != nil || len(p) == 0 {
		return len(p), nil
	}
	s.start()
	if s.msg != nil {
		s.msg.Write(p)
	} else {
		s.h.Write(p)
		s.n += int64(len(p))
	}
	return len(p), nil
}

// finish ends the section and returns its summary (nil when no byte of it
// was seen).
func (s *litSink) finish(truncated bool) *decode.Message {
	if s.result != nil {
		return s.result
	}
	if s.lit != nil && !s.lit.Complete() {
		truncated = true
	}
	if !s.started {
		if s.lit == nil || s.lit.Absent || s.lit.Size != 0 {
			return nil
		}
		s.start() // an empty literal is still a (empty) section
	}
	if s.msg != nil {
		s.result = s.msg.Finish(truncated)
	} else {
		m := &decode.Message{Size: s.n, Truncated: truncated}
		m.SHA256, m.MD5, m.SHA1 = s.h.Sums()
		s.result = m
	}
	return s.result
}

// emit sends the imap.message record of a section once.
func (s *litSink) emit(status string) {
	if s.emitted {
		return
	}
	s.emitted = true
	m := s.finish(s.trunc)
	if m == nil {
		return
	}
	x := s.x
	x.Transactions++
	r := &decode.IMAPMessage{
		Header:    x.Header(decode.TypeIMAPMessage, x.now),
		Mailbox:   s.mailbox,
		UID:       s.uid,
		Seq:       s.seq,
		Section:   s.section,
		Direction: s.dir,
		Flags:     s.flags,
		Status:    status,
		Message:   m,
	}
	x.Emit(r)
}
