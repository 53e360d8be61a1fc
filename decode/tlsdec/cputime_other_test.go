//go:build !unix

package tlsdec

import "time"

func cpuTime() (time.Duration, bool) { return 0, false }
