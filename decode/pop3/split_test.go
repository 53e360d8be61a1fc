package pop3

import (
	"encoding/json"
	"sort"
	"testing"

	"github.com/mailtap/mailtap/decode"
)

func recordsJSON(t *testing.T, recs []decode.Record) string {
	t.Helper()
	b, err := json.Marshal(recs)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSplitInvariance feeds every transcript split at every point of every
// step, and one byte at a time, and wants the same records each time.
func TestSplitInvariance(t *testing.T) {
	names := make([]string, 0, len(transcripts))
	for name := range transcripts {
		names = append(names, name)
	}
	sort.Strings(names)
	o := decode.Options{Level: decode.LevelCommands, ShowSecrets: true}
	for _, name := range names {
		tr := transcripts[name]
		t.Run(name, func(t *testing.T) {
			want := recordsJSON(t, feed(tr, o, nil))
			bytewise := feed(tr, o, func(_ int, data string) []string {
				out := make([]string, len(data))
				for i := 0; i < len(data); i++ {
					out[i] = data[i : i+1]
				}
				return out
			})
			if got := recordsJSON(t, bytewise); got != want {
				t.Fatalf("byte by byte:\n got %s\nwant %s", got, want)
			}
			for i, st := range tr.steps {
				for k := 1; k < len(st.data); k++ {
					got := recordsJSON(t, feed(tr, o, func(j int, data string) []string {
						if j != i {
							return nil
						}
						return []string{data[:k], data[k:]}
					}))
					if got != want {
						t.Fatalf("step %d split at %d:\n got %s\nwant %s", i, k, got, want)
					}
				}
			}
		})
	}
}
