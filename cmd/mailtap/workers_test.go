package main

import (
	"math"
	"testing"
)

func TestAutoWorkers(t *testing.T) {
	idle := machineLoad{load1: 0.3, pressure: 0.5}
	for _, c := range []struct {
		size int64
		cpus int
		m    machineLoad
		want int
	}{
		{size: 1 << 30, cpus: 2, m: idle, want: 2},
		{size: 1 << 30, cpus: 8, m: idle, want: 8},
		{size: 1 << 30, cpus: 2, m: machineLoad{load1: 2.0, others: 0, pressure: 3}, want: 2}, // our own last run, say
		{size: 1 << 30, cpus: 2, m: machineLoad{load1: 1.0, others: 1, pressure: 0}, want: 1}, // a CPU hog
		{size: 1 << 30, cpus: 8, m: machineLoad{load1: 3.0, others: 3, pressure: 0}, want: 5}, // what is free
		{size: 1 << 30, cpus: 8, m: machineLoad{load1: 7.0, others: 7, pressure: 0}, want: 1},
		{size: 1 << 30, cpus: 2, m: machineLoad{load1: 3.0, others: 0, pressure: 40}, want: 1}, // tasks queue
		{size: 1 << 30, cpus: 2, m: machineLoad{load1: 8.0, pressure: -1}, want: 1},            // very busy, no PSI
		{size: 1 << 30, cpus: 2, m: machineLoad{load1: 7.9, pressure: -1}, want: 2},
		{size: 1 << 30, cpus: 1, m: idle, want: 1},
		{size: smallCapture - 1, cpus: 4, m: idle, want: 1},
		{size: smallCapture, cpus: 4, m: idle, want: 4},
		{size: -1, cpus: 2, m: idle, want: 2}, // unknown size (standard input)
	} {
		if got := autoWorkers(c.size, c.cpus, c.m); got != c.want {
			t.Errorf("autoWorkers(%d, %d cpus, %+v) = %d, want %d", c.size, c.cpus, c.m, got, c.want)
		}
	}
	d := decodeFlags{workers: 3}
	if got := d.workerCount(1); got != 3 {
		t.Errorf("--workers 3 gives %d workers", got)
	}
}

// TestCurrentLoad reads this machine's load: whatever it is, the values
// are in range (Linux; elsewhere they are all "idle").
func TestCurrentLoad(t *testing.T) {
	m := currentLoad()
	t.Logf("currentLoad() = %+v", m)
	if m.load1 < 0 || m.others < 0 || math.IsInf(m.others, 0) || m.pressure > 100 {
		t.Errorf("currentLoad() = %+v", m)
	}
	if _, _, ok := readLoadavg(); !ok {
		t.Skip("no /proc/loadavg here")
	}
}
