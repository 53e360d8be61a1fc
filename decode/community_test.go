package decode

import (
	"net/netip"
	"testing"
	"time"
)

// TestCommunityID: the spec's example flow, both ways round, and other
// address kinds (values of the earlier hash.Hash-based implementation);
// the record header's endpoint strings are what netip formats.
func TestCommunityID(t *testing.T) {
	for _, c := range []struct{ a, b, want string }{
		{"128.232.110.120:34855", "66.35.250.204:80", "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
		{"66.35.250.204:80", "128.232.110.120:34855", "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
		{"127.0.0.1:5", "127.0.0.1:4", "1:B+x1hKhl08DjtwUAdnE7w8lb4oo="},
		{"[2001:db8::1]:25", "[2001:db8::2]:4444", "1:trlfMHHU5TOp2WMXH7sJTmUseNY="},
		{"[::ffff:10.0.0.1]:25", "10.0.0.2:99", "1:b/Lc+f/xcaAyOIxc4/Z8s6fa58E="},
		{"[fe80::1%eth0]:25", "[fe80::2]:1", "1:Kq7fkVNBoJl7R1ehkDfjnSPBRcI="},
		{"", "", "1:9TfIuX8i9VlVg7ATRmPZSGBvrk8="},
		{"1.2.3.4:1", "", "1:B+0Mg71yvV4inK3VW7fqBdLiuEY="},
	} {
		var a, b netip.AddrPort
		if c.a != "" {
			a = netip.MustParseAddrPort(c.a)
		}
		if c.b != "" {
			b = netip.MustParseAddrPort(c.b)
		}
		if got := CommunityID(a, b); got != c.want {
			t.Errorf("CommunityID(%s, %s) = %s, want %s", c.a, c.b, got, c.want)
		}
		h := NewHeader(TypeSession, ProtoSMTP, ConnInfo{Client: a, Server: b}, time.Time{})
		if h.Client != a.String() || h.Server != b.String() || h.ClientIP != a.Addr().String() ||
			h.ServerIP != b.Addr().String() || h.CommunityID != c.want || h.ClientPort != a.Port() || h.ServerPort != b.Port() {
			t.Errorf("%s %s: header %+v", c.a, c.b, h)
		}
	}
}
