package tlsdec

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailtap/mailtap/decode"
)

// fuzzInput encodes a key log and a stream for FuzzTLSRecords: the key log,
// a NUL, then segments of [direction bit + length (2 bytes)] [bytes].
func fuzzInput(keylog []byte, chunks []chunk) []byte {
	b := append(append([]byte(nil), keylog...), 0)
	for _, c := range chunks {
		for p := c.p; len(p) > 0; {
			n := min(len(p), 0x7fff)
			hi := byte(n >> 8)
			if c.dir == decode.ServerToClient {
				hi |= 0x80
			}
			b = append(b, hi, byte(n))
			b = append(b, p[:n]...)
			p = p[n:]
		}
	}
	return b
}

func parseFuzzInput(data []byte) (keylog []byte, chunks []chunk) {
	keylog, rest, _ := bytes.Cut(data, []byte{0})
	for len(rest) >= 2 {
		dir := decode.ClientToServer
		if rest[0]&0x80 != 0 {
			dir = decode.ServerToClient
		}
		n := min(int(rest[0]&0x7f)<<8|int(rest[1]), len(rest)-2)
		chunks = append(chunks, chunk{dir, rest[2 : 2+n]})
		rest = rest[2+n:]
	}
	return keylog, chunks
}

// TestWriteFuzzSeeds writes crypto/tls sessions, with their key logs, as
// seeds for FuzzTLSRecords. Run with MAILTAP_TLS_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("MAILTAP_TLS_SEEDS") == "" {
		t.Skip("set MAILTAP_TLS_SEEDS=1 to rewrite the seeds")
	}
	certs(t)
	dir := filepath.Join("testdata", "fuzz", "FuzzTLSRecords")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, sess session) {
		b := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", fuzzInput(sess.keylog, coalesce(sess.chunks)))
		if err := os.WriteFile(filepath.Join(dir, "seed-"+name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384} {
		c, s := tls12Configs(id, false)
		write(tls.CipherSuiteName(id), runPair(t, c, s, smallExchange()))
	}
	write("tls13", runPair(t, &tls.Config{}, &tls.Config{Certificates: []tls.Certificate{ecCert}}, smallExchange()))
}

// FuzzTLSRecords feeds arbitrary streams (and key logs) to a Decryptor:
// it must not panic, must not produce more plaintext than it was given,
// must give only the documented reasons, and must give the same result
// whether the stream comes as recorded or one byte per segment.
func FuzzTLSRecords(f *testing.F) {
	chunks, _ := rfc8448(f)
	kb := []byte("CLIENT_HANDSHAKE_TRAFFIC_SECRET cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7 b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21\n" +
		"SERVER_HANDSHAKE_TRAFFIC_SECRET cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7 b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38\n" +
		"CLIENT_TRAFFIC_SECRET_0 cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7 9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5\n" +
		"SERVER_TRAFFIC_SECRET_0 cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7 a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643\n")
	f.Add(fuzzInput(kb, chunks))
	f.Add(fuzzInput(kb, chunks[:3]))
	f.Add(fuzzInput(nil, chunks))
	// testdata/fuzz/FuzzTLSRecords holds TLS 1.2 sessions too (see
	// TestWriteFuzzSeeds).
	f.Fuzz(func(t *testing.T, data []byte) {
		keylog, chunks := parseFuzzInput(data)
		keys := NewKeyLog()
		keys.AddBytes(keylog)
		a := feedChunks(keys, Config{}, chunks)
		in := 0
		for _, c := range chunks {
			in += len(c.p)
		}
		if len(a.out[0])+len(a.out[1]) > in {
			t.Fatalf("%d bytes of plaintext from %d bytes", len(a.out[0])+len(a.out[1]), in)
		}
		switch a.info.Reason {
		case "", ReasonNoKey, ReasonUnsupportedCipher, ReasonGap, ReasonBadRecordMAC, ReasonMalformed:
		default:
			t.Fatalf("reason %q", a.info.Reason)
		}
		// A fresh key log: TLS 1.2 sessions seen by the first run are
		// remembered for resumption.
		keys = NewKeyLog()
		keys.AddBytes(keylog)
		b := feedChunks(keys, Config{}, bytewise(chunks))
		if !bytes.Equal(a.out[0], b.out[0]) || !bytes.Equal(a.out[1], b.out[1]) || a.info != b.info {
			t.Fatalf("result depends on segmentation:\n%+v\n%+v", a.info, b.info)
		}
		// Hold bound and timeouts hold under any input.
		d := New(keys, Config{HoldBytes: 64, HoldTimeout: time.Millisecond}, nil)
		for i, c := range chunks {
			d.Data(c.dir, c.p, time.Unix(int64(i), 0))
			if d.holdBytes > 64 {
				t.Fatalf("holding %d bytes", d.holdBytes)
			}
		}
		d.Close()
		if d.Waiting() {
			t.Fatal("still waiting after Close")
		}
	})
}
