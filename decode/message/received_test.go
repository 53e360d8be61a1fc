package message

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestZeekHeaderFields: Reply-To, X-Originating-IP and the Received fields
// are kept as Zeek's smtp.log takes them (base/protocols/smtp/main.zeek):
// first_received is the last Received field in the message, path
// addresses come one per Received field, top first.
func TestZeekHeaderFields(t *testing.T) {
	msg := "Received: from relay2.example.net (relay2.example.net [198.51.100.7])\r\n" +
		"\tby mx.example.org (Postfix) with ESMTPS id 1\r\n" +
		"Received: by relay2.example.net with SMTP id 2; Mon, 1 Jan 2024 00:00:00 +0000\r\n" +
		"Received: from a (a [192.0.2.1]) by b (b [192.0.2.2]) with ESMTP\r\n" +
		"Received: from laptop (IPv6:2001:db8::1]) by c ([2001:DB8::2])\r\n" +
		"Received: from first.example.com (first.example.com [203.0.113.9])\r\n" +
		"        by relay1.example.net; Sun, 31 Dec 2023 23:59:59 +0000\r\n" +
		"Reply-To: \"Help Desk\" <help@example.org>\r\n" +
		"X-Originating-IP: [10.1.2.3]\r\n" +
		"From: a@example.org\r\n\r\nbody\r\n"
	m := parseAll([]byte(msg), Options{})
	if want := `"Help Desk" <help@example.org>`; m.ReplyTo != want {
		t.Errorf("reply_to %q, want %q", m.ReplyTo, want)
	}
	if m.XOriginatingIP != "10.1.2.3" {
		t.Errorf("x_originating_ip %q", m.XOriginatingIP)
	}
	if want := "from first.example.com (first.example.com [203.0.113.9])        by relay1.example.net; Sun, 31 Dec 2023 23:59:59 +0000"; m.FirstReceived != want {
		t.Errorf("first_received %q, want %q", m.FirstReceived, want)
	}
	if want := "from laptop (IPv6:2001:db8::1]) by c ([2001:DB8::2])"; m.SecondReceived != want {
		t.Errorf("second_received %q, want %q", m.SecondReceived, want)
	}
	// The second header has no address; the third two (Zeek takes the
	// second); the fourth one unwrapped and one wrapped IPv6 address.
	if want := []string{"198.51.100.7", "192.0.2.2", "2001:db8::2", "203.0.113.9"}; !slices.Equal(m.ReceivedIPs, want) {
		t.Errorf("received_ips %q, want %q", m.ReceivedIPs, want)
	}
}

// TestIPAddresses: Zeek's extract_ip_addresses, with and without its
// wrapping check.
func TestIPAddresses(t *testing.T) {
	for _, tc := range []struct {
		in      string
		wrapped bool
		want    string
	}{
		{"[1.2.3.4]", false, "1.2.3.4"},
		{"1.2.3.4", true, "1.2.3.4"},
		{"x1.2.3.4]", true, ""},
		{"(10.0.0.1) {10.0.0.2} 10.0.0.3 ", true, "10.0.0.1 10.0.0.2 10.0.0.3"},
		{"1234.5.6.7", false, "234.5.6.7"},
		{"999.1.1.1 256.1.1.1", false, "99.1.1.1 56.1.1.1"},
		{"id 12:30:45 on host", false, ""},
		{"[::ffff:192.0.2.5]", false, "192.0.2.5"}, // Zeek logs a v4-mapped address as IPv4
		{"[fe80::1]", true, "fe80::1"},
	} {
		var got []string
		for _, a := range ipAddresses(tc.in, tc.wrapped) {
			got = append(got, a.String())
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("ipAddresses(%q, %v) = %q, want %q", tc.in, tc.wrapped, got, tc.want)
		}
	}
}

// TestReceivedBounded: at most maxReceivedIPs addresses are kept and
// values are cut to maxKeptValue bytes.
func TestReceivedBounded(t *testing.T) {
	var b strings.Builder
	for i := range 100 {
		b.WriteString("Received: from h ([192.0.2." + string(rune('0'+i%10)) + "])\r\n")
	}
	b.WriteString("Reply-To: " + strings.Repeat("é", 5000) + "\r\n\r\n")
	m := parseAll([]byte(b.String()), Options{})
	if len(m.ReceivedIPs) != maxReceivedIPs {
		t.Errorf("%d received_ips, want %d", len(m.ReceivedIPs), maxReceivedIPs)
	}
	if len(m.ReplyTo) > maxKeptValue || !strings.HasPrefix(m.ReplyTo, "éé") || len(m.ReplyTo) < maxKeptValue-1 {
		t.Errorf("reply_to of %d bytes", len(m.ReplyTo))
	}
}

// TestIPMatchesSameAsRegexp: the prefiltered scan finds exactly what the
// regexp finds over the whole string, on random text made of the bytes
// that matter (hex digits, '.', ':', brackets, spaces, other letters).
func TestIPMatchesSameAsRegexp(t *testing.T) {
	const alphabet = "0123456789019.:.:abcdefABCDEFxyz []()::..1255"
	rng := rand.New(rand.NewPCG(1, 2))
	seeds := []string{
		"from a (a [192.0.2.1]) by b (b [192.0.2.2]) with ESMTP",
		"from laptop (IPv6:2001:db8::1]) by c ([2001:DB8::2])",
		"1234.5.6.7 999.1.1.1 256.1.1.1 ::ffff:192.0.2.5 fe80::1 a:b:c:d:e:f:1:2:3",
		"by mx.example.org (Postfix) with ESMTPS id 4Q2x7f0Fz; Mon, 1 Jan 2024 00:00:00 +0000",
		"[10.0.0.1] 255.255.255.255 256.1.1.1 1.2.3.4.5 01.002.0003.4 000.1.2.3 1.2.3. .1.2.3.4 1..2.3.4 a1.2.3.4f",
	}
	for range 20000 {
		b := make([]byte, rng.IntN(80))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		seeds = append(seeds, string(b))
	}
	for _, s := range seeds {
		checkIPMatches(t, s)
	}
}

func checkIPMatches(t *testing.T, s string) {
	t.Helper()
	want := ipInText.FindAllStringIndex(s, -1)
	got := ipMatches(s)
	if len(want) == 0 && len(got) == 0 {
		return
	}
	if !slices.EqualFunc(got, want, slices.Equal[[]int]) {
		t.Fatalf("ipMatches(%q) = %v, regexp finds %v", s, got, want)
	}
}

func FuzzIPMatches(f *testing.F) {
	f.Add("from a (a [192.0.2.1]) by b (b [2001:DB8::2])")
	f.Add("::ffff:192.0.2.5 1234.5.6.7")
	f.Fuzz(func(t *testing.T, s string) { checkIPMatches(t, s) })
}
