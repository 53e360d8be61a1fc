package main

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
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
// input, counts as large), one when the machine is busy (busy), else one
// per CPU that other work leaves free, and one if that is fewer than two.
func autoWorkers(size int64, cpus int, m machineLoad) int {
	switch {
	case cpus <= 1:
		return 1
	case size >= 0 && size < smallCapture:
		return 1
	case m.busy(cpus):
		return 1
	}
	free := cpus - int(math.Ceil(m.others))
	if free < 2 {
		return 1
	}
	return free
}

// machineLoad is what the machine is doing as a read starts.
type machineLoad struct {
	load1    float64 // 1-minute load average
	others   float64 // tasks running or runnable besides this one, the fewest of a few looks
	pressure float64 // CPU pressure ("some", 10-second average), in %; < 0 unknown
}

// Thresholds of machineLoad.busy. A second worker pays off only with a
// core to itself: measured on 2 CPUs (docs/performance.md, "Workers"),
// with one to three CPU hogs or other programs running beside it, two
// workers were as often slower than one as faster (0.83-1.17x by wall
// time), while on an idle machine they are 1.4-1.6x faster. So other
// work that takes a CPU (others), tasks queueing for CPUs (pressure), or
// a load average of busyLoad per CPU, each mean one worker.
const (
	busyLoad     = 4
	busyPressure = 25
)

// busy reports whether a second worker would have no CPU to itself.
func (m machineLoad) busy(cpus int) bool {
	return m.load1 >= busyLoad*float64(cpus) || m.pressure >= busyPressure
}

// currentLoad reads the machine's load (Linux: /proc/loadavg and
// /proc/pressure/cpu); what cannot be read counts as idle. The count of
// runnable tasks is looked at three times, 2 ms apart, and the fewest
// kept: a short burst of other work does not count, work that keeps a
// CPU does.
func currentLoad() machineLoad {
	m := machineLoad{pressure: -1, others: math.Inf(1)}
	for i := 0; i < 3; i++ {
		if i > 0 {
			time.Sleep(2 * time.Millisecond)
		}
		l, others, ok := readLoadavg()
		if !ok {
			m.others = 0
			break
		}
		m.load1, m.others = l, min(m.others, others)
	}
	if b, err := os.ReadFile("/proc/pressure/cpu"); err == nil {
		// "some avg10=1.23 avg60=..."
		for _, f := range strings.Fields(string(b)) {
			if v, ok := strings.CutPrefix(f, "avg10="); ok {
				if p, err := strconv.ParseFloat(v, 64); err == nil {
					m.pressure = p
				}
				break
			}
		}
	}
	return m
}

// readLoadavg reads /proc/loadavg, "0.52 0.58 0.59 3/157 12345": the
// 1-minute load average, and the tasks running or runnable but this one.
func readLoadavg() (load1, others float64, ok bool) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 4 {
		return 0, 0, false
	}
	run, _, _ := strings.Cut(f[3], "/")
	n, err1 := strconv.Atoi(run)
	load1, err2 := strconv.ParseFloat(f[0], 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return load1, float64(max(n-1, 0)), true
}

// workerCount is the number of workers to decode a capture of size bytes
// with: --workers, or for 0 the automatic choice.
func (d *decodeFlags) workerCount(size int64) int {
	if d.workers > 0 {
		return d.workers
	}
	if size >= 0 && size < smallCapture {
		return 1 // without looking at the machine
	}
	return autoWorkers(size, runtime.NumCPU(), currentLoad())
}

// readGCPercent is the garbage collector's GOGC for a read, with one
// worker or several. The live heap is small (about 6 MB with one worker,
// 18-20 MB with two: their queued batches of copied packets, 3 MiB per
// worker, and an assembler each) next to what the collector scans at every
// cycle whatever the heap (about 5 MB of gopacket's global decoder
// tables), so the default of 100 ran a cycle every 20 ms and spent a
// seventh of the CPU time collecting when read allocated 6 times as much
// as now; it took 300 with one worker and 200 with several then. Since
// the decoders stopped allocating per line and per segment, a heap that
// large costs more than its cycles save (new spans to initialise, fewer
// cache hits). Measured in the seventh round (docs/performance.md), CPU
// time, alternating runs: one worker takes 5-7 % less than at 300 and
// 2-3 % less than at 200 on the load captures, the same at 1.1 GB; two
// workers take 4-5 % less than at 200 in three of four series on the load
// captures (5 % more in the fourth, on a noisier machine) and 4-14 % less
// at 1.1 GB. GOGC 100 was as good on the load captures and 1-4 % worse at
// 1.1 GB. Peak RSS: 42-44 MB with one worker, 68-72 MB with two.
const readGCPercent = 150

// tuneGC sets the collector for a read, unless the user set GOGC.
func tuneGC() {
	if os.Getenv("GOGC") != "" {
		return
	}
	debug.SetGCPercent(readGCPercent)
}
