package main

import (
	"sync"
	"testing"
)

// corpusArgs is how the shared corpus decode runs: command records (a
// superset of the transaction level's records) with three workers, so
// that TestWorkersSameOutput compares it with one worker.
var corpusArgs = []string{"read", "--level", "commands", "--workers", "3"}

// decoded is one corpus capture's output from corpusArgs.
type decoded struct {
	out, errOut []byte
	code        int
	once        sync.Once
	recs        []record
}

// records parses the JSON lines once.
func (d *decoded) records(t testing.TB) []record {
	t.Helper()
	d.once.Do(func() { d.recs = parseRecords(t, string(d.out)) })
	return d.recs
}

var (
	corpusOnce    sync.Once
	corpusResults map[string]*decoded
)

// corpusDecoded decodes every corpus capture once per test binary (the
// corpus tests used to decode it again each: a third of the package's
// test time) and returns the outputs by path. It skips when the corpus is
// not there.
func corpusDecoded(t *testing.T) map[string]*decoded {
	t.Helper()
	files := corpusCaptures(t)
	corpusOnce.Do(func() {
		res := make(map[string]*decoded, len(files))
		for _, f := range files {
			out, errOut, code := runCLI(append(append([]string{}, corpusArgs...), f)...)
			res[f] = &decoded{out: out, errOut: errOut, code: code}
		}
		corpusResults = res
	})
	return corpusResults
}

// corpusRecords is decodeFileLenient for a corpus capture, from the shared
// decode.
func corpusRecords(t *testing.T, path string) []record {
	t.Helper()
	d := corpusDecoded(t)[path]
	if d == nil {
		t.Fatalf("%s is not among the corpus captures", path)
	}
	if d.code != 0 && d.code != exitRuntime {
		t.Fatalf("mailtap read %s: exit %d: %s", path, d.code, d.errOut)
	}
	return d.records(t)
}
