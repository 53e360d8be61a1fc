package synth

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var sizeRE = regexp.MustCompile(`(?:\bn|mss|segsize)=(\d+)`)

// tooMuchWork skips inputs that would build a huge number of packets (tiny
// segments over megabytes of @tls data): slow, not interesting.
func tooMuchWork(src string) bool {
	if len(src) > 16<<10 || strings.Count(src, "@tls") > 16 {
		return true
	}
	for _, m := range sizeRE.FindAllStringSubmatch(src, -1) {
		n, err := strconv.Atoi(m[1])
		if err != nil || n > 64<<10 || strings.HasPrefix(m[0], "n=") == false && n < 64 && len(src) > 4<<10 {
			return true
		}
	}
	return false
}

// FuzzParseScript: no transcript makes the parser or the builder panic,
// and whatever parses can be written.
func FuzzParseScript(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("..", "..", "pcaps", "gen", "*.txt"))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(string(b))
		}
	}
	// More seeds in testdata/fuzz/FuzzParseScript.
	f.Fuzz(func(t *testing.T, src string) {
		if tooMuchWork(src) {
			t.Skip("keeps the packet count small")
		}
		s, err := ParseScript("fuzz", strings.NewReader(src))
		if err != nil {
			return
		}
		pkts, err := s.Capture.Packets()
		if err != nil {
			return
		}
		for i := 1; i < len(pkts); i++ {
			if pkts[i].Time.Before(pkts[i-1].Time) {
				t.Fatalf("packet %d goes back in time", i)
			}
		}
		for _, c := range s.Capture.Conns() {
			for _, d := range []Dir{ClientSide, ServerSide} {
				st := c.Stream(d)
				n := len(st.Bytes)
				for _, g := range st.Gaps {
					n += g.Len
				}
				if n != st.Sent {
					t.Fatalf("%v: %d bytes present + gaps != %d sent", d, n, st.Sent)
				}
			}
		}
	})
}
