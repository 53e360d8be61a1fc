package tlsdec

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/mailtap/mailtap/decode"
)

// rfc8448 reads the records of the RFC 8448 section 3 trace and its key
// log (testdata, transcribed from the RFC).
func rfc8448(t testing.TB) ([]chunk, *KeyLog) {
	t.Helper()
	f, err := os.Open("testdata/rfc8448-1rtt.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var chunks []chunk
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<16)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		dirs, hx, _ := strings.Cut(line, " ")
		b, err := hex.DecodeString(hx)
		if err != nil {
			t.Fatal(err)
		}
		dir := decode.ClientToServer
		if dirs == "s2c" {
			dir = decode.ServerToClient
		}
		chunks = append(chunks, chunk{dir, b})
	}
	kb, err := os.ReadFile("testdata/rfc8448-1rtt.keylog")
	if err != nil {
		t.Fatal(err)
	}
	return chunks, keyLogOf(t, kb)
}

// TestRFC8448Keys checks the key schedule against the traffic keys and
// IVs the RFC prints.
func TestRFC8448Keys(t *testing.T) {
	s := suites[0x1301]
	for _, c := range []struct{ secret, key, iv string }{
		{"b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38", "3fce516009c21727d0f2e4e86ee403bc", "5d313eb2671276ee13000b30"}, // server handshake
		{"b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21", "dbfaa693d1762c5b666af5d950258d01", "5bd3c71b836e0b76bb73265f"}, // client handshake
		{"a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643", "9f02283b6c9c07efc26bb9f2ac92e356", "cf782b88dd83549aadf1e984"}, // server application
	} {
		secret, _ := hex.DecodeString(c.secret)
		key := hex.EncodeToString(hkdfExpandLabel(sha256.New, secret, "key", s.keyLen))
		iv := hex.EncodeToString(hkdfExpandLabel(sha256.New, secret, "iv", 12))
		if key != c.key || iv != c.iv {
			t.Errorf("secret %s…: key %s iv %s, want %s %s", c.secret[:8], key, iv, c.key, c.iv)
		}
	}
}

// TestRFC8448 decrypts the RFC's simple 1-RTT trace: both sides send the
// 50 bytes 00 01 … 31 as application data, the server a NewSessionTicket
// in between (skipped), and both close with an encrypted alert.
func TestRFC8448(t *testing.T) {
	chunks, keys := rfc8448(t)
	want := make([]byte, 50)
	for i := range want {
		want[i] = byte(i)
	}
	check := func(what string, ch []chunk) {
		t.Helper()
		r := feedChunks(keys, Config{}, ch)
		if r.info.Reason != "" || !bytes.Equal(r.out[0], want) || !bytes.Equal(r.out[1], want) {
			t.Fatalf("%s: %+v\nc2s %x\ns2c %x", what, r.info, r.out[0], r.out[1])
		}
		if r.info.Version != "TLS 1.3" || r.info.Cipher != "TLS_AES_128_GCM_SHA256" || r.info.Resumed || r.info.Records != 7 {
			t.Fatalf("%s: %+v", what, r.info)
		}
	}
	check("as in the RFC", chunks)
	co := coalesce(chunks)
	check("coalesced", co)
	check("bytewise", bytewise(chunks))
	total := 0
	for _, c := range co {
		total += len(c.p)
	}
	for k := 1; k < total; k++ {
		check(fmt.Sprintf("split at %d", k), splitAt(co, k))
	}
}
