package netsrv

import (
	"net"
	"sync"
	"time"
)

// Defaults of AuthThrottle.
const (
	DefaultAuthFailureDelay  = 2 * time.Second // Dovecot's auth_failure_delay
	DefaultAuthFailuresPerIP = 20
	DefaultAuthFailureWindow = 10 * time.Minute
	maxThrottledIPs          = 65536
)

// AuthThrottle slows down password guessing, for all three protocols at
// once: every failed authentication costs the client Delay before it hears
// the answer (as Dovecot's auth_failure_delay), and a client address that
// has failed PerIP times within Window is refused any authentication, even
// with the right password, until the window has passed. Connections are
// free to open, so the per-connection limits of each protocol alone do not
// stop a guesser; this budget does.
//
// The zero value uses the defaults; a negative Delay or PerIP turns that
// part off. The table is bounded: past 65536 addresses, an expired entry
// or else an arbitrary one is dropped for each new one.
type AuthThrottle struct {
	Delay  time.Duration
	PerIP  int
	Window time.Duration
	// Sleep and Now are for tests; nil means time.Sleep and time.Now.
	Sleep func(time.Duration)
	Now   func() time.Time

	mu sync.Mutex
	m  map[string]*ipFailures
}

type ipFailures struct {
	n     int
	start time.Time
}

// IP returns the address part of a remote address string.
func IP(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

func (t *AuthThrottle) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func (t *AuthThrottle) window() time.Duration {
	if t.Window > 0 {
		return t.Window
	}
	return DefaultAuthFailureWindow
}

// Blocked reports whether ip has used up its failure budget.
func (t *AuthThrottle) Blocked(ip string) bool {
	if t == nil || t.PerIP < 0 {
		return false
	}
	limit := t.PerIP
	if limit == 0 {
		limit = DefaultAuthFailuresPerIP
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.m[ip]
	if f == nil {
		return false
	}
	if t.now().Sub(f.start) >= t.window() {
		delete(t.m, ip)
		return false
	}
	return f.n >= limit
}

// Failed records a failed authentication from ip and waits Delay.
func (t *AuthThrottle) Failed(ip string) {
	if t == nil {
		return
	}
	now := t.now()
	t.mu.Lock()
	if t.m == nil {
		t.m = make(map[string]*ipFailures)
	}
	f := t.m[ip]
	if f == nil || now.Sub(f.start) >= t.window() {
		if f == nil && len(t.m) >= maxThrottledIPs {
			t.evict(now)
		}
		f = &ipFailures{start: now}
		t.m[ip] = f
	}
	f.n++
	t.mu.Unlock()
	d := t.Delay
	if d == 0 {
		d = DefaultAuthFailureDelay
	}
	if d > 0 {
		sleep := t.Sleep
		if sleep == nil {
			sleep = time.Sleep
		}
		sleep(d)
	}
}

// evict makes room for one address: it drops an expired entry if the
// first few it looks at have one, else an arbitrary one (map order), so
// that it costs O(1) even under a flood of addresses; t.mu is held.
func (t *AuthThrottle) evict(now time.Time) {
	n := 0
	var any string
	for ip, f := range t.m {
		if now.Sub(f.start) >= t.window() {
			delete(t.m, ip)
			return
		}
		if n == 0 {
			any = ip
		}
		if n++; n == 16 {
			break
		}
	}
	delete(t.m, any)
}
