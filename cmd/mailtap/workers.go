package main

import (
	"os"
	"runtime"
	"runtime/debug"
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
// input, counts as large), one when the machine is very busy (the 1-minute
// load average is at least busyLoad per CPU), else one per CPU.
func autoWorkers(size int64, cpus int, load float64) int {
	switch {
	case cpus <= 1:
		return 1
	case size >= 0 && size < smallCapture:
		return 1
	case load >= busyLoad*float64(cpus):
		return 1
	}
	return cpus
}

// busyLoad is the load average per CPU from which --workers 0 takes one
// worker. On a busy machine a second worker only gets what the scheduler
// gives its thread, and costs 5-12 % more CPU time in all. Measured on 2
// CPUs (docs/performance.md): two workers were still faster than one at
// load averages of 3 to 14, under CPU hogs or two looping compilations
// (1.2-1.7x by wall time), and slower once at a load of 21 (0.8-0.9x,
// before the parallel path was made cheaper). One per CPU was too
// cautious: it gave up that speed as soon as the load reached 2.
const busyLoad = 4

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

// singleWorkerGCPercent is the garbage collector's GOGC for reading with
// one worker. The live heap is small (about 6 MB) next to what the
// collector scans at every cycle whatever the heap (about 5 MB of
// gopacket's global decoder tables), so at the default of 100 a read ran
// a cycle every 20 ms and spent a seventh of its CPU time collecting.
// At 300 it runs a third as many for about 12 MB more peak RSS (measured
// in docs/performance.md).
const singleWorkerGCPercent = 300

// multiWorkerGCPercent is GOGC for several workers. Their live heap is
// larger (18-20 MB with two: the batches of copied packets, 3 MiB per
// worker, and one assembler each), and with no idle core the collector's
// work takes time from the decoders. At 200, two workers cost 5-6 % less
// CPU time than at 100, for a peak RSS of 79-102 MB on the load captures
// and 86-105 MB on 4 GB of the same traffic (docs/performance.md); 300
// took the load captures to 102-120 MB.
const multiWorkerGCPercent = 200

// tuneGC sets the collector for a read with n workers, unless the user
// set GOGC.
func tuneGC(n int) {
	if os.Getenv("GOGC") != "" {
		return
	}
	if n == 1 {
		debug.SetGCPercent(singleWorkerGCPercent)
	} else {
		debug.SetGCPercent(multiWorkerGCPercent)
	}
}
