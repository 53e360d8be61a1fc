package decode

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"net/netip"
)

// CommunityID returns the Community ID v1 flow hash (seed 0) of a TCP
// connection, as Zeek and Suricata log it, so records can be joined with
// their logs. See https://github.com/corelight/community-id-spec.
func CommunityID(a, b netip.AddrPort) string {
	var buf [communityIDLen]byte
	return string(appendCommunityID(buf[:0], a, b))
}

// communityIDLen is the length of a Community ID v1: "1:" and the base64
// of a SHA-1 digest.
const communityIDLen = 2 + 28

// appendCommunityID appends CommunityID(a, b) to dst.
func appendCommunityID(dst []byte, a, b netip.AddrPort) []byte {
	var ab, bb [16]byte
	sa, sb := addrBytes(&ab, a.Addr().Unmap()), addrBytes(&bb, b.Addr().Unmap())
	pa, pb := a.Port(), b.Port()
	// Order so that the smaller (ip, port) comes first.
	if c := bytes.Compare(sa, sb); c > 0 || (c == 0 && pa > pb) {
		sa, sb, pa, pb = sb, sa, pb, pa
	}
	// seed 0 (2 bytes), the addresses, proto TCP and padding, the ports
	var in [2 + 16 + 16 + 2 + 4]byte
	m := copy(in[2:], sa) + 2
	m += copy(in[m:], sb)
	in[m] = 6
	m += 2
	binary.BigEndian.PutUint16(in[m:], pa)
	binary.BigEndian.PutUint16(in[m+2:], pb)
	sum := sha1.Sum(in[:m+4])
	dst = append(dst, "1:"...)
	return base64.StdEncoding.AppendEncode(dst, sum[:])
}

// addrBytes is ip.AsSlice() in buf's storage.
func addrBytes(buf *[16]byte, ip netip.Addr) []byte {
	switch {
	case ip.Is4():
		a := ip.As4()
		return buf[:copy(buf[:], a[:])]
	case ip.Is6():
		*buf = ip.As16()
		return buf[:]
	}
	return nil
}
