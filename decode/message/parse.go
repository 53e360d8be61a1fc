package message

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"

	"github.com/mailtap/mailtap/decode"
)

// impl is a placeholder until the streaming MIME parser lands: it hashes and
// counts only.
type impl struct {
	h hash.Hash
	n int64
	w decode.MessageWriter
}

func newParser(o Options) *Parser {
	return &Parser{impl{h: sha256.New(), w: o.Writer}}
}

func (p *impl) write(b []byte) (int, error) {
	p.h.Write(b)
	p.n += int64(len(b))
	if p.w != nil {
		p.w.Write(b)
	}
	return len(b), nil
}

func (p *impl) size() int64 { return p.n }

func (p *impl) finish(truncated bool) *decode.Message {
	m := &decode.Message{Size: p.n, SHA256: hex.EncodeToString(p.h.Sum(nil)), Truncated: truncated}
	if p.w != nil {
		m.File, _ = p.w.Close()
	}
	return m
}
