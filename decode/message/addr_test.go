package message

import (
	"math/rand/v2"
	"net/mail"
	"strings"
	"testing"
)

// checkSimple: when simpleAddresses takes v, net/mail parses it to the same
// names and addresses.
func checkSimple(t *testing.T, v string) bool {
	t.Helper()
	got, ok := simpleAddresses(v)
	if !ok {
		return false
	}
	ap := mail.AddressParser{}
	want, err := ap.ParseList(v)
	if err != nil {
		t.Fatalf("%q: simpleAddresses took it, net/mail says %v", v, err)
	}
	if len(got) != len(want) {
		t.Fatalf("%q: %d addresses, net/mail %d", v, len(got), len(want))
	}
	for i := range got {
		if got[i].name != want[i].Name || got[i].addr != want[i].Address {
			t.Fatalf("%q: address %d is %q <%s>, net/mail %q <%s>", v, i, got[i].name, got[i].addr, want[i].Name, want[i].Address)
		}
	}
	return true
}

func TestSimpleAddressesSameAsNetMail(t *testing.T) {
	for _, v := range []string{
		"alice@example.test", "<alice@example.test>", "Alice <alice@example.test>",
		"Dora Sender <dora@example.org>", "  Carol \t Sender   <carol@example.test>  ",
		"a@b.c, Bob <bob@example.test>,<c@d>", "x.y+tag@sub.example.test", "O'Neil <o'neil@example.test>",
	} {
		if !checkSimple(t, v) {
			t.Errorf("%q: not taken by the fast path", v)
		}
	}
	for _, v := range []string{
		`"Doe, John" <j@example.test>`, "=?UTF-8?Q?J=C3=B6rg?= <j@example.test>", "a@b,", "a@b,,c@d",
		"Dr. Who <who@example.test>", "a@[127.0.0.1]", "undisclosed-recipients:;", "a..b@c",
		"Name<a@b>", "a@b (comment)", "Jörg <j@example.test>", "", " ", "a@", "@b", "a@b.",
	} {
		if _, ok := simpleAddresses(v); ok {
			t.Errorf("%q: taken by the fast path, should be net/mail's", v)
		}
	}
	// random lists of the characters that matter
	alphabet := []string{"a", "b", "Z", "0", ".", "@", "<", ">", " ", ",", "\t", "+", "'", "=", "?", "-", "_", "~"}
	rng := rand.New(rand.NewPCG(3, 4))
	taken := 0
	for i := 0; i < 200000; i++ {
		var sb strings.Builder
		for n := rng.IntN(24); n > 0; n-- {
			sb.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		if checkSimple(t, sb.String()) {
			taken++
		}
	}
	if taken == 0 {
		t.Error("no random list taken by the fast path: the test checks nothing")
	}
}

func FuzzSimpleAddresses(f *testing.F) {
	f.Add("Alice <alice@example.test>, bob@example.test")
	f.Add(`"Doe, John" <j@example.test>`)
	f.Fuzz(func(t *testing.T, v string) { checkSimple(t, v) })
}
