package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
)

// smallCapture is the capture size under which --workers 0 (the default)
// reads with one worker. Measured on real-traffic captures (see
// docs/performance.md): a second worker costs 5-15 % more CPU time in all
// (the reader hands packets over, the records are merged back in order),
// and on files of a few tens of MB that overhead and the start-up are
// larger than what the second core gives back.
const smallCapture = 64 << 20

// autoWorkers is the worker count --workers 0 stands for: one for a
// capture under smallCapture bytes (size < 0: unknown, as for standard
// input, counts as large), one when the machine is busy (the 1-minute load
// average is at least the CPU count: there is no idle core for a second
// worker, which then only adds its overhead; measured slower than one),
// else one per CPU.
func autoWorkers(size int64, cpus int, load float64) int {
	switch {
	case cpus <= 1:
		return 1
	case size >= 0 && size < smallCapture:
		return 1
	case load >= float64(cpus):
		return 1
	}
	return cpus
}

// loadAverage is the 1-minute load average (Linux /proc/loadavg), 0 where
// it cannot be read.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0
	}
	return v
}

// workerCount is the number of workers to decode a capture of size bytes
// with: --workers, or for 0 the automatic choice.
func (d *decodeFlags) workerCount(size int64) int {
	if d.workers > 0 {
		return d.workers
	}
	return autoWorkers(size, runtime.NumCPU(), loadAverage())
}
