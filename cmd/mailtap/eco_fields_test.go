package main

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// TestSplitEndpointsAndCommunityID: every record carries client_ip,
// client_port, server_ip, server_port matching its client/server strings,
// and the community_id of its session record.
func TestSplitEndpointsAndCommunityID(t *testing.T) {
	for _, name := range []string{"real-postfix-swaks-basic.pcap", "real-dovecot-imaplib.pcap", "real-dovecot-poplib.pcap", "gen-smtp-ipv6-vlan.pcap"} {
		t.Run(name, func(t *testing.T) {
			recs := decodeFile(t, filepath.Join("..", "..", "pcaps", name), "--level", "commands")
			cid := map[float64]string{}
			for _, r := range ofType(recs, "session") {
				cid[r.num("session")] = r.str("community_id")
			}
			if len(cid) == 0 {
				t.Fatal("no session records")
			}
			for _, r := range recs {
				for _, side := range []string{"client", "server"} {
					ap, err := netip.ParseAddrPort(r.str(side))
					if err != nil {
						t.Fatalf("%s %q: %v", side, r.str(side), err)
					}
					if got := r.str(side + "_ip"); got != ap.Addr().String() {
						t.Errorf("%s record: %s_ip %q, %s %q", r.str("type"), side, got, side, r.str(side))
					}
					if got := r.num(side + "_port"); got != float64(ap.Port()) {
						t.Errorf("%s record: %s_port %v, %s %q", r.str("type"), side, got, side, r.str(side))
					}
				}
				want := cid[r.num("session")]
				if got := r.str("community_id"); got == "" || got != want {
					t.Errorf("%s record of session %v: community_id %q, session's %q", r.str("type"), r.num("session"), got, want)
				}
			}
		})
	}
}

// TestHashFlag: --hash md5,sha1 adds md5 and sha1 to messages and
// attachments, equal to the digests of the extracted .eml and attachment
// files; without it there are none.
func TestHashFlag(t *testing.T) {
	for _, name := range []string{"real-postfix-swaks-basic.pcap", "real-dovecot-imaplib.pcap", "real-dovecot-pop3-fetchmail.pcap"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("..", "..", "pcaps", name)
			for _, r := range decodeFile(t, path) {
				if m := r.obj("message"); m != nil && (m["md5"] != nil || m["sha1"] != nil) {
					t.Fatalf("md5/sha1 without --hash: %v", m)
				}
			}
			dir := filepath.Join(t.TempDir(), "x")
			recs := decodeFile(t, path, "--hash", "sha256,md5,sha1", "--extract", dir)
			n, natt := 0, 0
			for _, r := range recs {
				m := r.obj("message")
				if m == nil || m.str("file") == "" {
					continue
				}
				n++
				checkDigests(t, m.str("file"), m)
				for _, a := range m.list("attachments") {
					a := record(a.(map[string]any))
					if a.str("file") != "" {
						natt++
						checkDigests(t, a.str("file"), a)
					}
				}
			}
			if n == 0 {
				t.Fatal("no extracted message")
			}
			t.Logf("%d messages, %d attachments checked", n, natt)
		})
	}
	if _, _, code := runCLI("read", "--hash", "crc32", "../../pcaps/smtp-basic.pcap"); code != exitUsage {
		t.Errorf("--hash crc32: exit %d, want %d", code, exitUsage)
	}
}

func checkDigests(t *testing.T, file string, r record) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.num("size"); got != float64(len(b)) {
		t.Errorf("%s: size %v, file has %d bytes", file, got, len(b))
	}
	for _, h := range []struct {
		name string
		new  func() hash.Hash
	}{{"sha256", sha256.New}, {"md5", md5.New}, {"sha1", sha1.New}} {
		d := h.new()
		d.Write(b)
		if want := hex.EncodeToString(d.Sum(nil)); r.str(h.name) != want {
			t.Errorf("%s: %s %q, file's %s (%d bytes)", file, h.name, r.str(h.name), want, len(b))
		}
	}
}

// TestSessionMissingBytes: a session that lost bytes says how many, and
// over a capture they add up to the gap bytes --stats counts.
func TestSessionMissingBytes(t *testing.T) {
	for _, name := range []string{"gen-pop3-loss.pcap", "gen-smtp-faults.pcap"} {
		path := filepath.Join("..", "..", "pcaps", name)
		var sum float64
		for _, r := range ofType(decodeFile(t, path), "session") {
			sum += r.num("missing_bytes")
			if r.num("missing_bytes") > 0 && r.str("state") != "partial" && r.str("state") != "encrypted" {
				t.Errorf("%s: session %v lost bytes but is %s", name, r.num("session"), r.str("state"))
			}
		}
		_, errOut, code := runCLI("read", "--stats", "-o", filepath.Join(t.TempDir(), "out"), path)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		m := regexp.MustCompile(`gaps \d+ \((\d+) bytes\)`).FindSubmatch(errOut)
		if m == nil {
			t.Fatalf("no gap count in %q", errOut)
		}
		want, _ := strconv.ParseFloat(string(m[1]), 64)
		if sum == 0 || sum != want {
			t.Errorf("%s: sessions' missing_bytes add up to %v, --stats gap bytes %v", name, sum, want)
		}
	}
}
