//go:build unix

package tlsdec

import (
	"syscall"
	"time"
)

// cpuTime is the process's user+system CPU time: on a loaded machine a
// steadier measure than wall time.
func cpuTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
