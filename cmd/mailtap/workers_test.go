package main

import "testing"

func TestAutoWorkers(t *testing.T) {
	for _, c := range []struct {
		size int64
		cpus int
		load float64
		want int
	}{
		{size: 1 << 30, cpus: 2, load: 0.3, want: 2},
		{size: 1 << 30, cpus: 8, load: 7.9, want: 8},
		{size: 1 << 30, cpus: 2, load: 2.0, want: 2}, // busy, still faster with two
		{size: 1 << 30, cpus: 2, load: 7.9, want: 2},
		{size: 1 << 30, cpus: 2, load: 8.0, want: 1}, // very busy
		{size: 1 << 30, cpus: 1, load: 0, want: 1},
		{size: smallCapture - 1, cpus: 4, load: 0, want: 1},
		{size: smallCapture, cpus: 4, load: 0, want: 4},
		{size: -1, cpus: 2, load: 0, want: 2}, // unknown size (standard input)
	} {
		if got := autoWorkers(c.size, c.cpus, c.load); got != c.want {
			t.Errorf("autoWorkers(%d, %d cpus, load %.1f) = %d, want %d", c.size, c.cpus, c.load, got, c.want)
		}
	}
	d := decodeFlags{workers: 3}
	if got := d.workerCount(1); got != 3 {
		t.Errorf("--workers 3 gives %d workers", got)
	}
}
