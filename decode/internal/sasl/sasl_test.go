package sasl

import (
	"encoding/base64"
	"testing"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestMechanisms(t *testing.T) {
	cases := []struct {
		mech             string
		initial          string
		challenges       []string
		answers          []string
		user, pass, chal string
	}{
		{"PLAIN", b64("\x00alice\x00secret"), nil, nil, "alice", "secret", ""},
		{"plain", "", []string{""}, []string{b64("admin\x00bob\x00pw")}, "bob", "pw", ""},
		{"LOGIN", "", []string{b64("Username:"), b64("Password:")}, []string{b64("carol"), b64("hunter2")}, "carol", "hunter2", ""},
		{"LOGIN", b64("dave"), []string{b64("Password:")}, []string{b64("pw2")}, "dave", "pw2", ""},
		{"CRAM-MD5", "", []string{b64("<1896.697170952@postoffice.example.net>")}, []string{b64("tim b913a602c7eda7a495b4e6e7334d3890")}, "tim", "", "<1896.697170952@postoffice.example.net>"},
		{"XOAUTH2", b64("user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmT\x01\x01"), nil, nil, "someuser@example.com", "ya29.vF9dft4qmT", ""},
		{"OAUTHBEARER", b64("n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"), nil, nil, "user@example.com", "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==", ""},
		{"SCRAM-SHA-256", b64("n,,n=us=2Cer,r=rOprNGfwEbeRWgbNEkqO"), nil, nil, "us,er", "", ""},
	}
	for _, c := range cases {
		e := New(c.mech)
		if c.initial != "" {
			e.Response(c.initial, true)
		}
		for i, ch := range c.challenges {
			e.Challenge(ch)
			if i < len(c.answers) {
				e.Response(c.answers[i], false)
			}
		}
		user, pass, chal, _ := e.Credentials()
		if user != c.user || pass != c.pass || chal != c.chal {
			t.Errorf("%s: got %q %q %q, want %q %q %q", c.mech, user, pass, chal, c.user, c.pass, c.chal)
		}
		a := e.Auth(nil, func(s string) string {
			if s == "" {
				return ""
			}
			return "<redacted>"
		})
		if c.pass != "" && a.Password != "<redacted>" {
			t.Errorf("%s: password not redacted: %q", c.mech, a.Password)
		}
	}
}

func TestCancelAndGarbage(t *testing.T) {
	e := New("LOGIN")
	e.Challenge(b64("Username:"))
	e.Response("*", false)
	ok := true
	if a := e.Auth(&ok, func(s string) string { return s }); a.Success == nil || *a.Success {
		t.Error("a cancelled exchange reported success")
	}
	g := New("PLAIN")
	g.Response("!!!not base64!!!", true)
	if !g.Invalid() {
		t.Error("garbage not flagged")
	}
}

func FuzzExchange(f *testing.F) {
	f.Add("PLAIN", b64("\x00a\x00b"), b64("x"))
	f.Add("LOGIN", "=", "*")
	f.Fuzz(func(t *testing.T, mech, a, b string) {
		e := New(mech)
		e.Response(a, true)
		e.Challenge(b)
		e.Response(b, false)
		u, p, c, r := e.Credentials()
		if len(u) > MaxSecret || len(p) > MaxSecret || len(c) > MaxSecret || len(r) > MaxSecret {
			t.Fatal("unbounded")
		}
	})
}
