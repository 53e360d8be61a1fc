package main

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progress prints a one-line status on stderr for big files, only when
// stderr is a terminal; never on stdout.
type progress struct {
	w     io.Writer
	total int64
	on    bool
	last  time.Time
	start time.Time
	shown bool
}

const progressMinSize = 8 << 20

func newProgress(w io.Writer, total int64) *progress {
	p := &progress{w: w, total: total, start: time.Now()}
	if f, ok := w.(*os.File); ok && total >= progressMinSize {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.on = true
		}
	}
	return p
}

func (p *progress) update(off int64, packets uint64) {
	if !p.on {
		return
	}
	now := time.Now()
	if now.Sub(p.last) < 250*time.Millisecond {
		return
	}
	p.last = now
	pct := float64(off) * 100 / float64(p.total)
	rate := float64(off) / (1 << 20) / now.Sub(p.start).Seconds()
	fmt.Fprintf(p.w, "\r%5.1f%%  %d MiB of %d MiB  %d packets  %.0f MiB/s ", pct, off>>20, p.total>>20, packets, rate)
	p.shown = true
}

func (p *progress) done() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
