package tlsdec

import (
	"bytes"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailtap/mailtap/decode"
)

func tls13Session(t *testing.T) session {
	t.Helper()
	certs(t)
	scfg := &tls.Config{Certificates: []tls.Certificate{ecCert}}
	return runPair(t, &tls.Config{MinVersion: tls.VersionTLS13}, scfg, smallExchange())
}

func tls12Session(t *testing.T, id uint16) session {
	t.Helper()
	certs(t)
	c, s := tls12Configs(id, false)
	return runPair(t, c, s, smallExchange())
}

func TestNoKey(t *testing.T) {
	for name, s := range map[string]session{
		"1.3": tls13Session(t),
		"1.2": tls12Session(t, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
	} {
		r := feedChunks(NewKeyLog(), Config{}, s.chunks)
		if r.info.Reason != ReasonNoKey || len(r.out[0])+len(r.out[1]) != 0 || r.info.Decrypted {
			t.Errorf("%s: got reason %q, %d+%d bytes out", name, r.info.Reason, len(r.out[0]), len(r.out[1]))
		}
		if r.info.Version == "" || r.info.Cipher == "" {
			t.Errorf("%s: version/cipher not reported without keys: %+v", name, r.info)
		}
		// Not waiting at all gives the same answer.
		r = feedChunks(NewKeyLog(), Config{HoldBytes: -1}, s.chunks)
		if r.info.Reason != ReasonNoKey {
			t.Errorf("%s no hold: reason %q", name, r.info.Reason)
		}
	}
}

// flipSecrets corrupts every secret of a key log (last hex digit).
func flipSecrets(b []byte) []byte {
	var out []byte
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		last := line[len(line)-1]
		if last == '0' {
			last = '1'
		} else {
			last = '0'
		}
		out = append(out, line[:len(line)-1]+string(last)+"\n"...)
	}
	return out
}

func TestWrongKey(t *testing.T) {
	for name, s := range map[string]session{
		"1.3":     tls13Session(t),
		"1.2-gcm": tls12Session(t, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
		"1.2-cbc": tls12Session(t, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA),
	} {
		r := feedChunks(keyLogOf(t, flipSecrets(s.keylog)), Config{}, s.chunks)
		if r.info.Reason != ReasonBadRecordMAC || len(r.out[0])+len(r.out[1]) != 0 {
			t.Errorf("%s: got reason %q, %d+%d bytes out", name, r.info.Reason, len(r.out[0]), len(r.out[1]))
		}
	}
}

func TestCorruptedRecord(t *testing.T) {
	s := tls12Session(t, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256)
	ch := coalesce(s.chunks)
	// The client's last segment but one carries QUIT (the last one its
	// close_notify): flip a byte in it.
	var client []int
	for i, c := range ch {
		if c.dir == decode.ClientToServer {
			client = append(client, i)
		}
	}
	quit := client[len(client)-2]
	ch[quit].p[len(ch[quit].p)/2] ^= 0x55
	r := feedChunks(keyLogOf(t, s.keylog), Config{}, ch)
	if r.info.Reason != ReasonBadRecordMAC || r.info.ReasonDir != decode.ClientToServer {
		t.Fatalf("reason %q %v", r.info.Reason, r.info.ReasonDir)
	}
	if !bytes.Equal(r.out[1], s.serverWrote) {
		t.Fatalf("server direction should be unaffected: %q", r.out[1])
	}
	if !bytes.HasPrefix(s.clientWrote, r.out[0]) || bytes.Equal(r.out[0], s.clientWrote) {
		t.Fatalf("client plaintext should stop before QUIT: %q", r.out[0])
	}
}

func TestGapEndsDirection(t *testing.T) {
	s := tls13Session(t)
	keys := keyLogOf(t, s.keylog)
	var out [2][]byte
	d := New(keys, Config{}, func(dir decode.Direction, p []byte, ts time.Time) {
		out[dir-1] = append(out[dir-1], p...)
	})
	ts := time.Unix(1, 0)
	ch := coalesce(s.chunks)
	// Lose the client's last segment.
	last := -1
	for i, c := range ch {
		if c.dir == decode.ClientToServer {
			last = i
		}
	}
	for i, c := range ch {
		if i == last {
			d.Gap(c.dir, len(c.p), ts)
			continue
		}
		d.Data(c.dir, c.p, ts)
	}
	d.Close()
	in := d.Info()
	if in.Reason != ReasonGap || in.ReasonDir != decode.ClientToServer {
		t.Fatalf("info %+v", in)
	}
	if !bytes.Equal(out[1], s.serverWrote) {
		t.Fatalf("server plaintext %q", out[1])
	}
}

func TestUnsupportedCipher(t *testing.T) {
	s := tls12Session(t, tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA)
	r := feedChunks(keyLogOf(t, s.keylog), Config{}, s.chunks)
	if r.info.Reason != ReasonUnsupportedCipher || r.info.Cipher != "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA" {
		t.Fatalf("info %+v", r.info)
	}
}

func TestNotTLS(t *testing.T) {
	r := feedChunks(NewKeyLog(), Config{}, []chunk{{decode.ClientToServer, []byte("EHLO x\r\n")}})
	if r.info.Reason != ReasonMalformed {
		t.Fatalf("info %+v", r.info)
	}
	// A record longer than TLS allows.
	r = feedChunks(NewKeyLog(), Config{}, []chunk{{decode.ClientToServer, []byte{22, 3, 3, 0xff, 0xff}}})
	if r.info.Reason != ReasonMalformed {
		t.Fatalf("info %+v", r.info)
	}
}

func TestMidstream(t *testing.T) {
	s := tls13Session(t)
	ch := coalesce(s.chunks)
	// Drop everything up to the first application data record of the
	// client: no ClientHello, so no client random to look up.
	r := feedChunks(keyLogOf(t, s.keylog), Config{}, ch[3:])
	if r.info.Reason != ReasonNoKey || r.info.Decrypted {
		t.Fatalf("info %+v", r.info)
	}
}

func TestResumptionTLS12Ticket(t *testing.T) {
	certs(t)
	id := uint16(tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)
	c, s := tls12Configs(id, false)
	c.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	full := runPair(t, c, s, smallExchange())
	res := runPair(t, full.clientConfig, s, smallExchange())
	if full.didResume || !res.didResume {
		t.Fatalf("crypto/tls did not resume: %v %v", full.didResume, res.didResume)
	}
	if len(res.keylog) != 0 {
		t.Fatalf("crypto/tls logs resumed sessions now (%q): the test no longer tests the ticket cache", res.keylog)
	}
	keys := keyLogOf(t, full.keylog)
	// Without the full handshake seen first there is nothing to resume.
	if r := feedChunks(keys, Config{}, res.chunks); r.info.Reason != ReasonNoKey || !r.info.Resumed {
		t.Fatalf("resumed alone: %+v", r.info)
	}
	checkResult(t, "full", full, feedChunks(keys, Config{}, full.chunks))
	checkSplits(t, res, keys)
}

func TestResumptionTLS13(t *testing.T) {
	certs(t)
	c := &tls.Config{MinVersion: tls.VersionTLS13, ClientSessionCache: tls.NewLRUClientSessionCache(4)}
	s := &tls.Config{Certificates: []tls.Certificate{ecCert}}
	// The first connection must read the server's NewSessionTicket:
	// the exchange makes the client read after the handshake.
	full := runPair(t, c, s, smallExchange())
	res := runPair(t, full.clientConfig, s, smallExchange())
	if !res.didResume {
		t.Fatal("crypto/tls did not resume")
	}
	checkSplits(t, res, keyLogOf(t, res.keylog))
}

func TestHelloRetryRequest(t *testing.T) {
	certs(t)
	// The client sends key shares for X25519(MLKEM768) only; a server
	// that accepts only P-256 asks it to retry.
	c := &tls.Config{MinVersion: tls.VersionTLS13, CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256}}
	s := &tls.Config{Certificates: []tls.Certificate{ecCert}, CurvePreferences: []tls.CurveID{tls.CurveP256}}
	sess := runPair(t, c, s, smallExchange())
	// The server's first message is a HelloRetryRequest: its random.
	var first []byte
	for _, ch := range coalesce(sess.chunks) {
		if ch.dir == decode.ServerToClient {
			first = ch.p
			break
		}
	}
	if len(first) < 11+32 || !bytes.Equal(first[11:43], helloRetryRandom[:]) {
		t.Fatalf("no HelloRetryRequest in the capture")
	}
	checkSplits(t, sess, keyLogOf(t, sess.keylog))
}

// TestRecordTimestamp: plaintext carries the time of the segment that
// completed its record.
func TestRecordTimestamp(t *testing.T) {
	s := tls13Session(t)
	keys := keyLogOf(t, s.keylog)
	ch := coalesce(s.chunks)
	var gotTS []time.Time
	d := New(keys, Config{}, func(dir decode.Direction, p []byte, ts time.Time) {
		if dir == decode.ServerToClient {
			gotTS = append(gotTS, ts)
		}
	})
	base := time.Unix(1000, 0)
	var wantTS []time.Time
	for i, c := range ch {
		t1, t2 := base.Add(time.Duration(2*i)*time.Second), base.Add(time.Duration(2*i+1)*time.Second)
		if c.dir == decode.ServerToClient && i > 1 {
			// Cut off the segment's last byte into its own segment.
			d.Data(c.dir, c.p[:len(c.p)-1], t1)
			d.Data(c.dir, c.p[len(c.p)-1:], t2)
			wantTS = append(wantTS, t2)
			continue
		}
		d.Data(c.dir, c.p, t1)
	}
	if len(gotTS) == 0 {
		t.Fatal("no server plaintext")
	}
	for _, g := range gotTS {
		found := false
		for _, w := range wantTS {
			found = found || g.Equal(w)
		}
		if !found {
			t.Fatalf("plaintext at %v, not at the time of a record's last segment %v", g, wantTS)
		}
	}
}

// TestHoldUntilKey: records that arrive before their key (live capture:
// the key log is written while the capture runs) are held and decrypted
// when the key shows up.
func TestHoldUntilKey(t *testing.T) {
	s := tls12Session(t, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256)
	s13 := tls13Session(t)
	for name, s := range map[string]session{"1.2": s, "1.3": s13} {
		keys := NewKeyLog()
		var out [2][]byte
		d := New(keys, Config{HoldTimeout: time.Minute}, func(dir decode.Direction, p []byte, ts time.Time) {
			out[dir-1] = append(out[dir-1], p...)
		})
		ts := time.Unix(1, 0)
		ch := coalesce(s.chunks)
		half := len(ch) / 2
		for _, c := range ch[:half] {
			d.Data(c.dir, c.p, ts)
		}
		if !d.Waiting() {
			t.Fatalf("%s: not waiting for the key", name)
		}
		keys.AddBytes(s.keylog)
		d.Poll(ts)
		for _, c := range ch[half:] {
			d.Data(c.dir, c.p, ts)
		}
		d.Close()
		if in := d.Info(); in.Reason != "" {
			t.Fatalf("%s: %+v", name, in)
		}
		if !bytes.Equal(out[0], s.clientWrote) || !bytes.Equal(out[1], s.serverWrote) {
			t.Fatalf("%s: plaintext %q / %q", name, out[0], out[1])
		}
	}
	// Timeout in capture time.
	d := New(NewKeyLog(), Config{HoldTimeout: time.Second}, nil)
	for _, c := range s.chunks {
		d.Data(c.dir, c.p, time.Unix(1, 0))
	}
	d.Poll(time.Unix(3, 0))
	if d.Waiting() || d.Info().Reason != ReasonNoKey {
		t.Fatalf("after timeout: waiting=%v %+v", d.Waiting(), d.Info())
	}
	// Bounded: more than HoldBytes held gives up.
	d = New(NewKeyLog(), Config{HoldBytes: 100}, nil)
	for _, c := range s.chunks {
		d.Data(c.dir, c.p, time.Unix(1, 0))
	}
	if d.Waiting() || d.Info().Reason != ReasonNoKey {
		t.Fatalf("over the bound: waiting=%v %+v", d.Waiting(), d.Info())
	}
}

func TestKeyLogParse(t *testing.T) {
	cr := strings.Repeat("ab", 32)
	sec48 := strings.Repeat("cd", 48)
	sec32 := strings.Repeat("ef", 32)
	in := "# a comment\n\n" +
		"CLIENT_RANDOM " + cr + " " + sec48 + "\n" +
		"CLIENT_HANDSHAKE_TRAFFIC_SECRET " + cr + " " + sec32 + "\r\n" +
		"SERVER_HANDSHAKE_TRAFFIC_SECRET " + cr + " " + sec32 + "\n" +
		"CLIENT_TRAFFIC_SECRET_0 " + cr + " " + sec48 + "\n" +
		"SERVER_TRAFFIC_SECRET_0 " + cr + " " + sec48 + "\n" +
		"EXPORTER_SECRET " + cr + " " + sec32 + "\n" +
		"CLIENT_RANDOM " + cr + " zz\n" + // bad hex
		"CLIENT_RANDOM " + cr[:10] + " " + sec48 + "\n" + // short random
		"CLIENT_RANDOM " + cr + " " + sec32 + "\n" + // master of wrong size
		"NOT_A_LABEL " + cr + " " + sec32 + "\n" +
		"CLIENT_RANDOM only-two\n"
	k := NewKeyLog()
	if err := k.Read(strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	lines, bad := k.Stats()
	if lines != 6 || bad != 5 {
		t.Fatalf("lines %d bad %d", lines, bad)
	}
	var r [32]byte
	for i := range r {
		r[i] = 0xab
	}
	s, ok := k.Lookup(r)
	if !ok || len(s.Master) != 48 || s.Master[0] != 0xcd || len(s.ClientHandshake) != 32 || len(s.ServerHandshake) != 32 ||
		len(s.ClientTraffic0) != 48 || len(s.ServerTraffic0) != 48 {
		t.Fatalf("secrets %+v", s)
	}
	if _, ok := k.Lookup([32]byte{}); ok {
		t.Fatal("lookup of an unknown random succeeded")
	}
}

// TestKeyLogGrows: a file re-read as it grows; a line being written is
// taken once it ends; several files.
func TestKeyLogGrows(t *testing.T) {
	dir := t.TempDir()
	p1, p2 := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	line := func(b byte) string {
		return "CLIENT_RANDOM " + strings.Repeat(string("0123456789abcdef"[b]), 64) + " " + strings.Repeat("11", 48) + "\n"
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(p1, []byte(line(1)), 0o600))
	must(os.WriteFile(p2, []byte(line(2)), 0o600))
	k := NewKeyLog()
	must(k.AddFile(p1))
	must(k.AddFile(p2))
	if n, _ := k.Stats(); n != 2 {
		t.Fatalf("%d lines", n)
	}
	f, err := os.OpenFile(p1, os.O_APPEND|os.O_WRONLY, 0)
	must(err)
	defer f.Close()
	l3 := line(3)
	_, err = f.WriteString(l3[:20])
	must(err)
	v := k.Version()
	must(k.Refresh())
	if n, bad := k.Stats(); n != 2 || bad != 0 || k.Version() != v {
		t.Fatalf("half a line taken: %d lines, %d bad", n, bad)
	}
	_, err = f.WriteString(l3[20:])
	must(err)
	must(k.Refresh())
	if n, bad := k.Stats(); n != 3 || bad != 0 || k.Version() == v {
		t.Fatalf("after the line ended: %d lines, %d bad", n, bad)
	}
	var r [32]byte
	for i := range r {
		r[i] = 0x33
	}
	if _, ok := k.Lookup(r); !ok {
		t.Fatal("appended line not found")
	}
	if err := k.AddFile(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("no error for a missing file")
	}
}
