package decode

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// TestMultiHashReuse: a MultiHash reused for another message gives the
// sums a new one gives, whichever digests either was computing.
func TestMultiHashReuse(t *testing.T) {
	sels := []Hashes{0, HashMD5, HashSHA1, HashMD5 | HashSHA1}
	for _, first := range sels {
		for _, second := range sels {
			m := NewMultiHash(first)
			m.Write([]byte("the first message, whose state must not leak"))
			m.Sums()
			m = m.Reuse(second)
			body := []byte("the second message")
			m.Write(body)
			s256, smd5, ssha1 := m.Sums()
			w256 := sha256.Sum256(body)
			wmd5 := md5.Sum(body)
			wsha1 := sha1.Sum(body)
			if s256 != hex.EncodeToString(w256[:]) {
				t.Errorf("%v then %v: sha256 %s", first, second, s256)
			}
			if want := second&HashMD5 != 0; (smd5 != "") != want || want && smd5 != hex.EncodeToString(wmd5[:]) {
				t.Errorf("%v then %v: md5 %q", first, second, smd5)
			}
			if want := second&HashSHA1 != 0; (ssha1 != "") != want || want && ssha1 != hex.EncodeToString(wsha1[:]) {
				t.Errorf("%v then %v: sha1 %q", first, second, ssha1)
			}
		}
	}
	var nilHash *MultiHash
	if m := nilHash.Reuse(HashMD5); m == nil || m.md5 == nil {
		t.Errorf("Reuse on nil: %+v", m)
	}
}
