package tlsdec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"hash"

	"golang.org/x/crypto/chacha20poly1305"
)

// Protocol versions on the wire.
const (
	versionTLS10 = 0x0301
	versionTLS11 = 0x0302
	versionTLS12 = 0x0303
	versionTLS13 = 0x0304
)

type cipherKind uint8

const (
	kindGCM cipherKind = iota + 1
	kindChaCha
	kindCBC
)

// suite describes how a cipher suite protects records.
type suite struct {
	id      uint16
	tls13   bool
	kind    cipherKind
	keyLen  int
	macHash func() hash.Hash // CBC suites: the record MAC
	macLen  int
	prf384  bool // TLS 1.2 PRF / TLS 1.3 HKDF use SHA-384 (else SHA-256)
}

// suites lists what the decryptor can decrypt. Key exchange does not
// matter (the key log gives the master secret), so RSA, DHE and ECDHE
// variants of one bulk cipher share a row shape.
var suites = map[uint16]*suite{}

func init() {
	add := func(s suite, ids ...uint16) {
		for _, id := range ids {
			c := s
			c.id = id
			suites[id] = &c
		}
	}
	// TLS 1.3 (RFC 8446 B.4).
	add(suite{tls13: true, kind: kindGCM, keyLen: 16}, 0x1301)
	add(suite{tls13: true, kind: kindGCM, keyLen: 32, prf384: true}, 0x1302)
	add(suite{tls13: true, kind: kindChaCha, keyLen: 32}, 0x1303)
	// TLS 1.2 AES-GCM (RFC 5288, 5289).
	add(suite{kind: kindGCM, keyLen: 16}, 0x009C, 0x009E, 0x00A0, 0x00A2, 0x00A4, 0xC02B, 0xC02D, 0xC02F, 0xC031)
	add(suite{kind: kindGCM, keyLen: 32, prf384: true}, 0x009D, 0x009F, 0x00A1, 0x00A3, 0x00A5, 0xC02C, 0xC02E, 0xC030, 0xC032)
	// TLS 1.2 ChaCha20-Poly1305 (RFC 7905).
	add(suite{kind: kindChaCha, keyLen: 32}, 0xCCA8, 0xCCA9, 0xCCAA)
	// AES-CBC with HMAC-SHA1 (RFC 3268, 4492).
	sha1Row := suite{kind: kindCBC, macHash: sha1.New, macLen: 20}
	s128, s256 := sha1Row, sha1Row
	s128.keyLen, s256.keyLen = 16, 32
	add(s128, 0x002F, 0x0030, 0x0031, 0x0032, 0x0033, 0xC004, 0xC009, 0xC00E, 0xC013)
	add(s256, 0x0035, 0x0036, 0x0037, 0x0038, 0x0039, 0xC005, 0xC00A, 0xC00F, 0xC014)
	// AES-CBC with HMAC-SHA256 / SHA384 (RFC 5246, 5289).
	add(suite{kind: kindCBC, keyLen: 16, macHash: sha256.New, macLen: 32}, 0x003C, 0x003E, 0x003F, 0x0040, 0x0067, 0xC023, 0xC025, 0xC027, 0xC029)
	add(suite{kind: kindCBC, keyLen: 32, macHash: sha256.New, macLen: 32}, 0x003D, 0x0068, 0x0069, 0x006A, 0x006B)
	add(suite{kind: kindCBC, keyLen: 32, macHash: sha512.New384, macLen: 48, prf384: true}, 0xC024, 0xC026, 0xC028, 0xC02A)
}

// suiteNames are the IANA names of the suites crypto/tls does not name.
var suiteNames = map[uint16]string{
	0x002F: "TLS_RSA_WITH_AES_128_CBC_SHA", 0x0030: "TLS_DH_DSS_WITH_AES_128_CBC_SHA",
	0x0031: "TLS_DH_RSA_WITH_AES_128_CBC_SHA", 0x0032: "TLS_DHE_DSS_WITH_AES_128_CBC_SHA",
	0x0033: "TLS_DHE_RSA_WITH_AES_128_CBC_SHA", 0x0035: "TLS_RSA_WITH_AES_256_CBC_SHA",
	0x0036: "TLS_DH_DSS_WITH_AES_256_CBC_SHA", 0x0037: "TLS_DH_RSA_WITH_AES_256_CBC_SHA",
	0x0038: "TLS_DHE_DSS_WITH_AES_256_CBC_SHA", 0x0039: "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
	0x003C: "TLS_RSA_WITH_AES_128_CBC_SHA256", 0x003D: "TLS_RSA_WITH_AES_256_CBC_SHA256",
	0x003E: "TLS_DH_DSS_WITH_AES_128_CBC_SHA256", 0x003F: "TLS_DH_RSA_WITH_AES_128_CBC_SHA256",
	0x0040: "TLS_DHE_DSS_WITH_AES_128_CBC_SHA256", 0x0067: "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256",
	0x0068: "TLS_DH_DSS_WITH_AES_256_CBC_SHA256", 0x0069: "TLS_DH_RSA_WITH_AES_256_CBC_SHA256",
	0x006A: "TLS_DHE_DSS_WITH_AES_256_CBC_SHA256", 0x006B: "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256",
	0x009E: "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", 0x009F: "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
	0x00A0: "TLS_DH_RSA_WITH_AES_128_GCM_SHA256", 0x00A1: "TLS_DH_RSA_WITH_AES_256_GCM_SHA384",
	0x00A2: "TLS_DHE_DSS_WITH_AES_128_GCM_SHA256", 0x00A3: "TLS_DHE_DSS_WITH_AES_256_GCM_SHA384",
	0x00A4: "TLS_DH_DSS_WITH_AES_128_GCM_SHA256", 0x00A5: "TLS_DH_DSS_WITH_AES_256_GCM_SHA384",
	0xC004: "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA", 0xC005: "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA",
	0xC00E: "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA", 0xC00F: "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA",
	0xC024: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", 0xC025: "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256",
	0xC026: "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA384", 0xC028: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
	0xC029: "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA256", 0xC02A: "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA384",
	0xC02D: "TLS_ECDH_ECDSA_WITH_AES_128_GCM_SHA256", 0xC02E: "TLS_ECDH_ECDSA_WITH_AES_256_GCM_SHA384",
	0xC031: "TLS_ECDH_RSA_WITH_AES_128_GCM_SHA256", 0xC032: "TLS_ECDH_RSA_WITH_AES_256_GCM_SHA384",
	0xCCAA: "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
	0x0016: "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA", 0x0004: "TLS_RSA_WITH_RC4_128_MD5",
	0x00C0: "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA256", 0xC0AC: "TLS_ECDHE_ECDSA_WITH_AES_128_CCM",
	0xC09C: "TLS_RSA_WITH_AES_128_CCM", 0x1304: "TLS_AES_128_CCM_SHA256", 0x1305: "TLS_AES_128_CCM_8_SHA256",
}

// SuiteName returns the IANA name of a cipher suite ("0x1234" when
// unknown).
func SuiteName(id uint16) string {
	if n, ok := suiteNames[id]; ok {
		return n
	}
	return tls.CipherSuiteName(id)
}

func (s *suite) hash() func() hash.Hash {
	if s.prf384 {
		return sha512.New384
	}
	return sha256.New
}

func (s *suite) hashLen() int {
	if s.prf384 {
		return 48
	}
	return 32
}

// fixedIVLen is the implicit part of the nonce in the key block (TLS 1.2)
// or the traffic IV length (TLS 1.3).
func (s *suite) fixedIVLen() int {
	switch {
	case s.tls13, s.kind == kindChaCha:
		return 12
	case s.kind == kindGCM:
		return 4
	}
	return 16 // CBC: in the key block, unused since TLS 1.1 (explicit IV)
}

// prf12 is the TLS 1.2 PRF (RFC 5246 section 5): P_hash(secret, label+seed).
func prf12(h func() hash.Hash, secret []byte, label string, seed []byte, n int) []byte {
	ls := append([]byte(label), seed...)
	out := make([]byte, 0, n+64)
	mac := hmac.New(h, secret)
	mac.Write(ls)
	a := mac.Sum(nil) // A(1)
	for len(out) < n {
		mac.Reset()
		mac.Write(a)
		mac.Write(ls)
		out = mac.Sum(out)
		mac.Reset()
		mac.Write(a)
		a = mac.Sum(a[:0])
	}
	return out[:n]
}

// hkdfExpandLabel is HKDF-Expand-Label of RFC 8446 section 7.1 with an
// empty context.
func hkdfExpandLabel(h func() hash.Hash, secret []byte, label string, n int) []byte {
	info := make([]byte, 0, 4+6+len(label))
	info = binary.BigEndian.AppendUint16(info, uint16(n))
	info = append(info, byte(6+len(label)))
	info = append(info, "tls13 "...)
	info = append(info, label...)
	info = append(info, 0) // empty context
	out, err := hkdf.Expand(h, secret, string(info), n)
	if err != nil {
		// Only for n > 255*hash length, which no caller asks for.
		panic("tlsdec: " + err.Error())
	}
	return out
}

// recordCipher decrypts the records of one direction under one key.
type recordCipher struct {
	s     *suite
	tls13 bool
	aead  cipher.AEAD
	iv    [12]byte // TLS 1.3 / ChaCha: full per-record IV; 1.2 GCM: 4-byte salt
	block cipher.Block
	mac   hash.Hash
	etm   bool // encrypt-then-MAC (RFC 7366)
	// chainIV is the CBC IV of the next record in TLS 1.0 (no explicit
	// IV): the last ciphertext block of the previous one.
	chainIV []byte
	seq     uint64
	secret  []byte // TLS 1.3 traffic secret, for KeyUpdate
}

func newAEAD(s *suite, key []byte) (cipher.AEAD, error) {
	if s.kind == kindChaCha {
		return chacha20poly1305.New(key)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// newCipher13 derives the record keys of a TLS 1.3 traffic secret.
func newCipher13(s *suite, secret []byte) (*recordCipher, error) {
	h := s.hash()
	key := hkdfExpandLabel(h, secret, "key", s.keyLen)
	iv := hkdfExpandLabel(h, secret, "iv", 12)
	a, err := newAEAD(s, key)
	if err != nil {
		return nil, err
	}
	c := &recordCipher{s: s, tls13: true, aead: a, secret: secret}
	copy(c.iv[:], iv)
	return c, nil
}

// next is the cipher after a KeyUpdate (RFC 8446 section 7.2).
func (c *recordCipher) next() (*recordCipher, error) {
	h := c.s.hash()
	return newCipher13(c.s, hkdfExpandLabel(h, c.secret, "traffic upd", c.s.hashLen()))
}

// prf10 is the PRF of TLS 1.0 and 1.1 (RFC 2246 section 5): P_MD5 of the
// secret's first half XOR P_SHA-1 of its second half.
func prf10(secret []byte, label string, seed []byte, n int) []byte {
	half := (len(secret) + 1) / 2
	a := prf12(md5.New, secret[:half], label, seed, n)
	b := prf12(sha1.New, secret[len(secret)-half:], label, seed, n)
	for i := range a {
		a[i] ^= b[i]
	}
	return a
}

// newCiphers12 derives both directions' ciphers from a TLS 1.0-1.2 master
// secret (RFC 5246 section 6.3, RFC 4346, RFC 2246).
func newCiphers12(s *suite, version uint16, master, clientRandom, serverRandom []byte, etm bool) (client, server *recordCipher, err error) {
	ivLen := s.fixedIVLen()
	n := 2*s.macLen + 2*s.keyLen + 2*ivLen
	seed := append(append([]byte(nil), serverRandom...), clientRandom...)
	var kb []byte
	if version < versionTLS12 {
		kb = prf10(master, "key expansion", seed, n)
	} else {
		kb = prf12(s.hash(), master, "key expansion", seed, n)
	}
	cmac, kb := kb[:s.macLen], kb[s.macLen:]
	smac, kb := kb[:s.macLen], kb[s.macLen:]
	ckey, kb := kb[:s.keyLen], kb[s.keyLen:]
	skey, kb := kb[:s.keyLen], kb[s.keyLen:]
	civ, siv := kb[:ivLen], kb[ivLen:2*ivLen]
	mk := func(key, mac, iv []byte) (*recordCipher, error) {
		c := &recordCipher{s: s, etm: etm}
		switch s.kind {
		case kindGCM, kindChaCha:
			a, err := newAEAD(s, key)
			if err != nil {
				return nil, err
			}
			c.aead = a
			copy(c.iv[:], iv)
		case kindCBC:
			b, err := aes.NewCipher(key)
			if err != nil {
				return nil, err
			}
			c.block = b
			c.mac = hmac.New(s.macHash, mac)
			if version == versionTLS10 {
				c.chainIV = append([]byte(nil), iv...)
			}
		}
		return c, nil
	}
	if client, err = mk(ckey, cmac, civ); err != nil {
		return nil, nil, err
	}
	if server, err = mk(skey, smac, siv); err != nil {
		return nil, nil, err
	}
	return client, server, nil
}

// errBadMAC is returned when a record does not authenticate.
type decryptError struct{}

func (decryptError) Error() string { return "bad record mac" }

var errBadMAC error = decryptError{}

// open decrypts one record. hdr is its 5-byte header, body what follows.
// The plaintext is appended to dst. For TLS 1.3 the returned type is the
// inner content type and padding is removed.
func (c *recordCipher) open(dst, hdr, body []byte) (pt []byte, typ byte, err error) {
	typ = hdr[0]
	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], c.seq)
	switch {
	case c.tls13:
		if len(body) < c.aead.Overhead()+1 {
			return nil, 0, errBadMAC
		}
		var nonce [12]byte
		copy(nonce[:], c.iv[:])
		for i := 0; i < 8; i++ {
			nonce[4+i] ^= seq[i]
		}
		pt, err = c.aead.Open(dst, nonce[:], body, hdr)
		if err != nil {
			return nil, 0, errBadMAC
		}
		c.seq++
		// Strip zero padding; the last non-zero byte is the real type.
		p := pt[len(dst):]
		i := len(p) - 1
		for i >= 0 && p[i] == 0 {
			i--
		}
		if i < 0 {
			return nil, 0, errBadMAC
		}
		return pt[:len(dst)+i], p[i], nil
	case c.aead != nil:
		var nonce [12]byte
		if c.s.kind == kindGCM {
			if len(body) < 8+c.aead.Overhead() {
				return nil, 0, errBadMAC
			}
			copy(nonce[:4], c.iv[:4])
			copy(nonce[4:], body[:8])
			body = body[8:]
		} else {
			if len(body) < c.aead.Overhead() {
				return nil, 0, errBadMAC
			}
			copy(nonce[:], c.iv[:])
			for i := 0; i < 8; i++ {
				nonce[4+i] ^= seq[i]
			}
		}
		var ad [13]byte
		copy(ad[:8], seq[:])
		copy(ad[8:11], hdr[:3])
		binary.BigEndian.PutUint16(ad[11:], uint16(len(body)-c.aead.Overhead()))
		pt, err = c.aead.Open(dst, nonce[:], body, ad[:])
		if err != nil {
			return nil, 0, errBadMAC
		}
		c.seq++
		return pt, typ, nil
	default:
		pt, err = c.openCBC(dst, hdr, body, seq)
		if err != nil {
			return nil, 0, err
		}
		c.seq++
		return pt, typ, nil
	}
}

func (c *recordCipher) openCBC(dst, hdr, body []byte, seq [8]byte) ([]byte, error) {
	bs := aes.BlockSize
	ml := c.s.macLen
	var ad [13]byte
	copy(ad[:8], seq[:])
	copy(ad[8:11], hdr[:3])
	enc := body // what the MAC of encrypt-then-MAC covers
	if c.etm {
		if len(body) < ml {
			return nil, errBadMAC
		}
		enc = body[:len(body)-ml]
	}
	// The IV: explicit in front of the ciphertext since TLS 1.1; in TLS
	// 1.0 the last ciphertext block of the previous record (the first
	// from the key block).
	var iv, ct []byte
	if c.chainIV != nil {
		iv, ct = c.chainIV, enc
	} else {
		if len(enc) < bs {
			return nil, errBadMAC
		}
		iv, ct = enc[:bs], enc[bs:]
	}
	if len(ct) < bs || len(ct)%bs != 0 || !c.etm && len(ct) < ml+1 {
		return nil, errBadMAC
	}
	var sum [64]byte
	if c.etm {
		// RFC 7366: the MAC covers IV and ciphertext, after them.
		binary.BigEndian.PutUint16(ad[11:], uint16(len(enc)))
		c.mac.Reset()
		c.mac.Write(ad[:])
		c.mac.Write(enc)
		if !hmac.Equal(c.mac.Sum(sum[:0]), body[len(enc):]) {
			return nil, errBadMAC
		}
	}
	start := len(dst)
	out := append(dst, ct...)
	cipher.NewCBCDecrypter(c.block, iv).CryptBlocks(out[start:], out[start:])
	if c.chainIV != nil {
		c.chainIV = append(c.chainIV[:0], ct[len(ct)-bs:]...)
	}
	p := out[start:]
	pad := int(p[len(p)-1])
	macLen := ml
	if c.etm {
		macLen = 0
	}
	if pad+1+macLen > len(p) {
		return nil, errBadMAC
	}
	for _, b := range p[len(p)-1-pad:] {
		if int(b) != pad {
			return nil, errBadMAC
		}
	}
	n := len(p) - pad - 1 - macLen
	if !c.etm {
		// MAC-then-encrypt: the MAC of the plaintext is encrypted with it.
		binary.BigEndian.PutUint16(ad[11:], uint16(n))
		c.mac.Reset()
		c.mac.Write(ad[:])
		c.mac.Write(p[:n])
		if !hmac.Equal(c.mac.Sum(sum[:0]), p[n:n+ml]) {
			return nil, errBadMAC
		}
	}
	return out[:start+n], nil
}
