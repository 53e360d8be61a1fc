package synth

import (
	"crypto/sha256"
	"encoding/binary"
)

// TLS record content types.
const (
	tlsChangeCipherSpec = 20
	tlsHandshake        = 22
	tlsApplicationData  = 23
)

// ClientHello returns one TLS record holding a TLS 1.3 ClientHello, shaped
// as a modern client sends it after STARTTLS: legacy version TLS 1.2 in the
// record, server_name set to sni, supported_versions offering 1.3 and 1.2,
// an X25519 key share. Random, session ID and key share are derived from
// sni, so the bytes are reproducible.
func ClientHello(sni string) []byte {
	rnd := pseudoRandom("client hello "+sni, 96)
	var b []byte
	b = append(b, 0x03, 0x03)    // legacy_version
	b = append(b, rnd[:32]...)   // random
	b = append(b, 32)            // legacy_session_id
	b = append(b, rnd[32:64]...) //
	suites := []uint16{0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035}
	b = binary.BigEndian.AppendUint16(b, uint16(2*len(suites)))
	for _, s := range suites {
		b = binary.BigEndian.AppendUint16(b, s)
	}
	b = append(b, 1, 0) // compression: null

	var ext []byte
	name := u16(append([]byte{0}, u16([]byte(sni))...)) // host_name
	ext = extension(ext, 0x0000, name)                  // server_name
	ext = extension(ext, 0x000b, []byte{1, 0})          // ec_point_formats: uncompressed
	ext = extension(ext, 0x000a, u16(be16s(0x001d, 0x0017, 0x0018)))
	ext = extension(ext, 0x000d, u16(be16s(0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601)))
	ext = extension(ext, 0x0017, nil)                                         // extended_master_secret
	ext = extension(ext, 0xff01, []byte{0})                                   // renegotiation_info
	ext = extension(ext, 0x002b, append([]byte{4}, be16s(0x0304, 0x0303)...)) // supported_versions
	ext = extension(ext, 0x002d, []byte{1, 1})                                // psk_key_exchange_modes: psk_dhe_ke
	share := append(be16s(0x001d), u16(rnd[64:96])...)
	ext = extension(ext, 0x0033, u16(share)) // key_share
	b = append(b, u16(ext)...)

	return record(tlsHandshake, 0x0301, handshake(1, b))
}

// ServerHello returns the server's first flight in a TLS 1.3 handshake as
// it looks on the wire: a ServerHello record, a dummy ChangeCipherSpec and
// one application-data record of n opaque bytes (the encrypted
// certificate and Finished). seed makes the bytes reproducible.
func ServerHello(seed string, n int) []byte {
	rnd := pseudoRandom("server hello "+seed, 96)
	var b []byte
	b = append(b, 0x03, 0x03)
	b = append(b, rnd[:32]...)
	b = append(b, 32)
	b = append(b, rnd[32:64]...)
	b = binary.BigEndian.AppendUint16(b, 0x1301)
	b = append(b, 0)
	var ext []byte
	ext = extension(ext, 0x002b, be16s(0x0304))
	ext = extension(ext, 0x0033, append(be16s(0x001d), u16(rnd[64:96])...))
	b = append(b, u16(ext)...)
	out := record(tlsHandshake, 0x0303, handshake(2, b))
	out = append(out, record(tlsChangeCipherSpec, 0x0303, []byte{1})...)
	return append(out, AppData(seed, n)...)
}

// AppData returns TLS application-data records carrying n opaque bytes in
// total (at most 16 KiB per record), reproducible from seed.
func AppData(seed string, n int) []byte {
	body := pseudoRandom("app data "+seed, n)
	var out []byte
	for len(body) > 0 {
		k := min(len(body), 16384)
		out = append(out, record(tlsApplicationData, 0x0303, body[:k])...)
		body = body[k:]
	}
	return out
}

func record(typ byte, version uint16, body []byte) []byte {
	r := []byte{typ}
	r = binary.BigEndian.AppendUint16(r, version)
	return append(r, u16(body)...)
}

func handshake(typ byte, body []byte) []byte {
	n := len(body)
	return append([]byte{typ, byte(n >> 16), byte(n >> 8), byte(n)}, body...)
}

func extension(b []byte, typ uint16, data []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, typ)
	return append(b, u16(data)...)
}

// u16 prefixes b with its length as a big-endian uint16.
func u16(b []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
}

func be16s(vs ...uint16) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint16(b, v)
	}
	return b
}

// pseudoRandom expands seed into n reproducible bytes (SHA-256 in counter
// mode): random-looking, never secret.
func pseudoRandom(seed string, n int) []byte {
	out := make([]byte, 0, n+sha256.Size)
	for i := uint32(0); len(out) < n; i++ {
		h := sha256.New()
		h.Write([]byte(seed))
		h.Write(binary.BigEndian.AppendUint32(nil, i))
		out = h.Sum(out)
	}
	return out[:n]
}
