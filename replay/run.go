package replay

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/replay/server/mailstore"
)

// TypeSummary is the record type of the final replay record.
const TypeSummary = "replay.summary"

// ParsePace reads --pace: "original" (speed 1), "fast" (0: no waiting),
// or a factor such as "2x" or "0.5x".
func ParsePace(s string) (float64, error) {
	switch strings.ToLower(s) {
	case "original", "":
		return 1, nil
	case "fast":
		return 0, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSuffix(strings.ToLower(s), "x"), 64)
	if err != nil || f <= 0 || f > 1e6 || !strings.HasSuffix(strings.ToLower(s), "x") {
		return 0, fmt.Errorf("--pace %q: want original, fast or a factor such as 2x", s)
	}
	return f, nil
}

// Target is where a session is replayed: the address, whether it speaks
// implicit TLS, and the TLS configuration (nil: Options.TLSConfig).
type Target struct {
	Addr      string
	TLS       bool
	TLSConfig *tls.Config
	// Store is the built-in server's store when it is the target.
	Store *mailstore.Store
}

// RunConfig configures Run.
type RunConfig struct {
	// Options are every session's options; Pace is filled in.
	Options Options
	// Target returns where to replay a session (Addr "" when nowhere).
	Target func(s *Session) Target
	// Speed is the pace (ParsePace); Concurrency caps the sessions in
	// flight (zero: 64).
	Speed       float64
	Concurrency int
}

// Summary is the final record of a run.
type Summary struct {
	V    int    `json:"v"`
	Type string `json:"type"`
	// Sessions found in the capture; Compared were replayed and
	// compared; Matched of those showed no divergence; Diverged did (or
	// could not be driven); Skipped were not replayed, by reason.
	Sessions int `json:"sessions"`
	Compared int `json:"compared"`
	Matched  int `json:"matched"`
	Diverged int `json:"diverged"`
	// Unverifiable sessions had no divergence but comparisons that
	// depend on placeholders: not counted as matched.
	Unverifiable int            `json:"unverifiable,omitempty"`
	Skipped      int            `json:"skipped"`
	SkippedBy    map[string]int `json:"skipped_by,omitempty"`
	// Stopped counts compared sessions that stopped early (STARTTLS:
	// tls_not_decrypted), by reason.
	Stopped     map[string]int `json:"stopped,omitempty"`
	Divergences int            `json:"divergences"`
	TextDiffs   int            `json:"text_diffs"`
	Timeouts    int            `json:"timeouts,omitempty"`
	// NotCompared lists the fields left out of the comparison because
	// the target was the built-in server (its own capabilities), as
	// rules ("smtp:EHLO"); --no-default-ignores compares them.
	NotCompared []string `json:"not_compared,omitempty"`
	// Latency per protocol, captured and replayed, in ms.
	Latency map[decode.Proto]*LatencyStats `json:"latency,omitempty"`
	// Seconds is the wall time of the replay; SessionsPerSec the
	// compared sessions per second.
	Seconds        float64 `json:"seconds"`
	SessionsPerSec float64 `json:"sessions_per_sec"`
	// Reason says why nothing was compared (exit status 4).
	Reason string `json:"reason,omitempty"`

	lat map[decode.Proto]*[2][]float64
}

// LatencyStats are percentiles of command latencies, in ms.
type LatencyStats struct {
	CapturedP50 float64 `json:"captured_p50"`
	CapturedP99 float64 `json:"captured_p99"`
	ReplayedP50 float64 `json:"replayed_p50"`
	ReplayedP99 float64 `json:"replayed_p99"`
	Commands    int     `json:"commands"`
}

// NewSummary returns an empty summary for n sessions.
func NewSummary(n int) *Summary {
	return &Summary{V: decode.SchemaVersion, Type: TypeSummary, Sessions: n, SkippedBy: map[string]int{},
		lat: map[decode.Proto]*[2][]float64{}}
}

// skipKey is the reason of a skip without its explanation.
func skipKey(s string) string {
	k, _, _ := strings.Cut(s, ":")
	return k
}

// Add counts one result.
func (sm *Summary) Add(r *Result) {
	switch {
	case r.Skipped != "":
		sm.Skipped++
		sm.SkippedBy[skipKey(r.Skipped)]++
		return
	case r.Failed():
		sm.Diverged++
	case r.Unverifiable > 0:
		sm.Unverifiable++
	default:
		sm.Matched++
	}
	sm.Compared++
	if r.Stopped != "" {
		if sm.Stopped == nil {
			sm.Stopped = map[string]int{}
		}
		sm.Stopped[r.Stopped]++
	}
	for _, n := range r.NotCompared {
		if !slices.Contains(sm.NotCompared, n) {
			sm.NotCompared = append(sm.NotCompared, n)
			slices.Sort(sm.NotCompared)
		}
	}
	sm.Divergences += r.Divergences
	sm.TextDiffs += r.TextDiffs
	sm.Timeouts += r.Timeouts
	l := sm.lat[r.Proto]
	if l == nil {
		l = &[2][]float64{}
		sm.lat[r.Proto] = l
	}
	l[0] = append(l[0], r.capLat...)
	l[1] = append(l[1], r.repLat...)
}

// Finish computes the percentiles, the rate, and the reason when
// nothing was compared.
func (sm *Summary) Finish(elapsed time.Duration) {
	sm.Seconds = elapsed.Seconds()
	if sm.Seconds > 0 {
		sm.SessionsPerSec = float64(sm.Compared) / sm.Seconds
	}
	for p, l := range sm.lat {
		if sm.Latency == nil {
			sm.Latency = map[decode.Proto]*LatencyStats{}
		}
		sm.Latency[p] = &LatencyStats{CapturedP50: pct(l[0], 50), CapturedP99: pct(l[0], 99),
			ReplayedP50: pct(l[1], 50), ReplayedP99: pct(l[1], 99), Commands: len(l[1])}
	}
	if len(sm.SkippedBy) == 0 {
		sm.SkippedBy = nil
	}
	if sm.Compared == 0 {
		switch {
		case sm.Sessions == 0:
			sm.Reason = "the capture holds no SMTP, POP3 or IMAP session"
		default:
			var parts []string
			for _, k := range sortedKeys(sm.SkippedBy) {
				parts = append(parts, fmt.Sprintf("%d %s", sm.SkippedBy[k], k))
			}
			sm.Reason = fmt.Sprintf("all %d sessions skipped (%s)", sm.Sessions, strings.Join(parts, ", "))
		}
	}
}

func sortedKeys(m map[string]int) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// pct is the p-th percentile (nearest rank), rounded to 0.001 ms.
func pct(v []float64, p int) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	i = min(max(i-1, 0), len(s)-1)
	return float64(int64(s[i]*1000+0.5)) / 1000
}

// Run replays the sessions concurrently (at most Concurrency in flight),
// each started at its captured time relative to the first session's
// divided by Speed (all at once, in order, when Speed is 0), and calls
// emit with each result in capture order. Comparisons run in capture
// order too, so "same within the run" values (POP3 UIDLs) pair up the
// same way whatever the timing.
func Run(sessions []*Session, rc RunConfig, emit func(*Result) error) (*Summary, error) {
	sm := NewSummary(len(sessions))
	start := time.Now()
	conc := rc.Concurrency
	if conc <= 0 {
		conc = 64
	}
	o := rc.Options
	o.defaults()
	var first time.Time
	for _, s := range sessions {
		if s.Skip == "" && !s.Conn.Start.IsZero() && (first.IsZero() || s.Conn.Start.Before(first)) {
			first = s.Conn.Start
		}
	}
	o.Pace = Pace{Speed: rc.Speed, Live: start, Captured: first}
	done := make([]chan *Exchange, len(sessions))
	for i := range done {
		done[i] = make(chan *Exchange, 1)
	}
	opts := make([]Options, len(sessions))
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	go func() {
		// Sessions start in capture order: a slot is taken in order, so a
		// later session never starts before an earlier one.
		order := make([]int, len(sessions))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return sessions[a].Conn.Start.Compare(sessions[b].Conn.Start) })
		for _, i := range order {
			s := sessions[i]
			so := o
			var t Target
			if rc.Target != nil {
				t = rc.Target(s)
			}
			so.TLS, so.Store = t.TLS, t.Store
			if t.TLSConfig != nil {
				so.TLSConfig = t.TLSConfig
			}
			addr := t.Addr
			opts[i] = so
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				done[i] <- Drive(s, addr, so)
			}()
		}
	}()
	var err error
	for i := range sessions {
		ex := <-done[i]
		r := ex.Compare(opts[i])
		sm.Add(r)
		if err == nil {
			err = emit(r)
		}
	}
	wg.Wait()
	sm.Finish(time.Since(start))
	return sm, err
}
