package message

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mailtap/mailtap/decode"
)

func clearAddrCache() {
	addrs.mu.Lock()
	clear(addrs.m)
	addrs.mu.Unlock()
}

// TestAddrCacheSameRecords: a message parsed when its address values are
// not cached and again when they are gives the same record, anomalies
// included.
func TestAddrCacheSameRecords(t *testing.T) {
	heads := []string{
		"From: a@example.com\r\nTo: b@example.com, \"C, D\" <cd@example.com>\r\n",
		"From: Unclosed <broken@example.com\r\nTo: first@example.com; second@example.com\r\nCc: Who <who@example.com>, ok@example.com\r\n",
		"From: =?x-unknown?Q?Someone?= <s@example.com>\r\nTo: =?utf-8?B?w6lsw6g=?= <e@example.com>\r\n",
		"From: \r\nTo: undisclosed-recipients:;\r\nCc: a@example.com b@example.com\r\n",
	}
	for _, h := range heads {
		msg := []byte(h + "Subject: s\r\n\r\nbody\r\n")
		clearAddrCache()
		cold := summary(t, parseAll(msg, Options{}))
		warm := summary(t, parseAll(msg, Options{}))
		if !bytes.Equal(cold, warm) {
			t.Errorf("%q:\ncold %s\nwarm %s", h, cold, warm)
		}
	}
}

// TestAddrCacheAnomalies: a value's anomalies come with it from the cache
// even when the message that first parsed it had raised them already.
func TestAddrCacheAnomalies(t *testing.T) {
	clearAddrCache()
	from := "From: =?x-unknown?Q?Someone?= <s@example.com>\r\n"
	first := parseAll([]byte("Subject: =?x-unknown?Q?subject?=\r\n"+from+"\r\nbody\r\n"), Options{})
	if !slices.Contains(first.Anomalies, string(decode.AnomalyUnknownCharset)) {
		t.Fatalf("first message: anomalies %v", first.Anomalies)
	}
	second := []byte("Subject: plain\r\n" + from + "\r\nbody\r\n")
	warm := parseAll(second, Options{})
	clearAddrCache()
	cold := parseAll(second, Options{})
	if !slices.Contains(cold.Anomalies, string(decode.AnomalyUnknownCharset)) {
		t.Fatalf("second message: anomalies %v", cold.Anomalies)
	}
	if !slices.Equal(warm.Anomalies, cold.Anomalies) || warm.From != cold.From {
		t.Errorf("second message, From from the cache: anomalies %v From %q; parsed afresh: %v %q",
			warm.Anomalies, warm.From, cold.Anomalies, cold.From)
	}
}

// TestAddrCacheBounded: the cache never holds more than addrCacheMax
// values, nor any value longer than addrKeyMax.
func TestAddrCacheBounded(t *testing.T) {
	clearAddrCache()
	for i := range 3 * addrCacheMax {
		m := parseAll(fmt.Appendf(nil, "From: u%d@example.com\r\n\r\n", i), Options{})
		if m.From != fmt.Sprintf("u%d@example.com", i) {
			t.Fatalf("message %d: From %q", i, m.From)
		}
		if n := len(addrs.m); n > addrCacheMax {
			t.Fatalf("after %d values the cache holds %d", i+1, n)
		}
	}
	clearAddrCache()
	long := strings.Repeat("x", addrKeyMax) + "@example.com"
	if m := parseAll([]byte("From: "+long+"\r\n\r\n"), Options{}); m.From != long {
		t.Errorf("long From %q", m.From)
	}
	if n := len(addrs.m); n != 0 {
		t.Errorf("a %d-byte value was cached", len(long))
	}
}

// TestAddrCacheConcurrent: parsers on several goroutines share the cache
// (go test -race).
func TestAddrCacheConcurrent(t *testing.T) {
	clearAddrCache()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				want := fmt.Sprintf("u%d@example.com", (i+g)%700)
				m := parseAll([]byte("From: "+want+"\r\nTo: "+want+"\r\n\r\n"), Options{})
				if m.From != want || !slices.Equal(m.To, []string{want}) {
					t.Errorf("From %q To %q, want %q", m.From, m.To, want)
					return
				}
			}
		})
	}
	wg.Wait()
}
