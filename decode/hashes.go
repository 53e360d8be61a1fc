package decode

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
)

// Hashes selects the digests computed over messages and attachments
// besides SHA-256, which is always computed. MD5 and SHA-1 cost CPU on
// every body byte, so they are only computed when asked for (--hash).
type Hashes uint8

// Extra digests.
const (
	HashMD5 Hashes = 1 << iota
	HashSHA1
)

// ParseHashes parses a comma-separated list of sha256, md5 and sha1 (the
// --hash flag). sha256 is always on; listing it is allowed.
func ParseHashes(s string) (Hashes, error) {
	var h Hashes
	for _, name := range strings.Split(s, ",") {
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "sha256", "sha-256", "":
		case "md5":
			h |= HashMD5
		case "sha1", "sha-1":
			h |= HashSHA1
		default:
			return 0, fmt.Errorf("unknown hash %q: want sha256, md5 or sha1", name)
		}
	}
	return h, nil
}

// String is the --hash form of h.
func (h Hashes) String() string {
	s := "sha256"
	if h&HashMD5 != 0 {
		s += ",md5"
	}
	if h&HashSHA1 != 0 {
		s += ",sha1"
	}
	return s
}

// MultiHash computes SHA-256 and the selected extra digests in one pass.
type MultiHash struct {
	sel               Hashes
	sha256, md5, sha1 hash.Hash
	sum               [sha256.Size]byte // Sums' scratch: Sum(nil) would allocate
}

// NewMultiHash returns a MultiHash computing SHA-256 and the digests in h.
func NewMultiHash(h Hashes) *MultiHash {
	m := &MultiHash{sel: h, sha256: sha256.New()}
	if h&HashMD5 != 0 {
		m.md5 = md5.New()
	}
	if h&HashSHA1 != 0 {
		m.sha1 = sha1.New()
	}
	return m
}

// Reuse returns m reset, when it computes the digests in h, or else a new
// MultiHash for h: a decoder that hashes one message after another keeps
// one. m may be nil.
func (m *MultiHash) Reuse(h Hashes) *MultiHash {
	if m == nil || m.sel != h {
		return NewMultiHash(h)
	}
	m.sha256.Reset()
	if m.md5 != nil {
		m.md5.Reset()
	}
	if m.sha1 != nil {
		m.sha1.Reset()
	}
	return m
}

// Write implements io.Writer; it never fails.
func (m *MultiHash) Write(b []byte) (int, error) {
	m.sha256.Write(b)
	if m.md5 != nil {
		m.md5.Write(b)
	}
	if m.sha1 != nil {
		m.sha1.Write(b)
	}
	return len(b), nil
}

// Sums returns the hex digests; md5 and sha1 are "" when not selected.
func (m *MultiHash) Sums() (sha256, md5, sha1 string) {
	sha256 = m.hexSum(m.sha256)
	if m.md5 != nil {
		md5 = m.hexSum(m.md5)
	}
	if m.sha1 != nil {
		sha1 = m.hexSum(m.sha1)
	}
	return sha256, md5, sha1
}

// hexSum is h's digest in hex: one allocation, the string's (the digest
// goes to m.sum, the hex to the stack).
func (m *MultiHash) hexSum(h hash.Hash) string {
	var out [2 * sha256.Size]byte
	return string(hex.AppendEncode(out[:0], h.Sum(m.sum[:0])))
}
