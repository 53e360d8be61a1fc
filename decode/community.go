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
	ia, ib := a.Addr().Unmap(), b.Addr().Unmap()
	pa, pb := a.Port(), b.Port()
	sa, sb := ia.AsSlice(), ib.AsSlice()
	// Order so that the smaller (ip, port) comes first.
	if c := bytes.Compare(sa, sb); c > 0 || (c == 0 && pa > pb) {
		sa, sb, pa, pb = sb, sa, pb, pa
	}
	h := sha1.New()
	var seed [2]byte // seed 0
	h.Write(seed[:])
	h.Write(sa)
	h.Write(sb)
	h.Write([]byte{6, 0}) // proto TCP, padding
	var ports [4]byte
	binary.BigEndian.PutUint16(ports[0:], pa)
	binary.BigEndian.PutUint16(ports[2:], pb)
	h.Write(ports[:])
	return "1:" + base64.StdEncoding.EncodeToString(h.Sum(nil))
}
