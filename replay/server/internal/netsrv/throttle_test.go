package netsrv

import (
	"fmt"
	"testing"
	"time"
)

func TestAuthThrottle(t *testing.T) {
	now := time.Unix(1000, 0)
	var slept time.Duration
	th := &AuthThrottle{Delay: 2 * time.Second, PerIP: 3, Window: time.Minute,
		Now: func() time.Time { return now }, Sleep: func(d time.Duration) { slept += d }}
	for range 3 {
		if th.Blocked("192.0.2.1") {
			t.Fatal("blocked before the budget is spent")
		}
		th.Failed("192.0.2.1")
	}
	if slept != 6*time.Second {
		t.Fatalf("slept %v for 3 failures, want 6s", slept)
	}
	if !th.Blocked("192.0.2.1") || th.Blocked("192.0.2.2") {
		t.Fatal("budget not per address")
	}
	now = now.Add(time.Minute)
	if th.Blocked("192.0.2.1") {
		t.Fatal("still blocked after the window")
	}
	// The table stays bounded whatever the number of addresses.
	for i := range maxThrottledIPs + 100 {
		th.Failed(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
	}
	if n := len(th.m); n > maxThrottledIPs {
		t.Fatalf("%d addresses tracked, limit %d", n, maxThrottledIPs)
	}
	off := &AuthThrottle{Delay: -1, PerIP: -1, Sleep: func(time.Duration) { t.Fatal("slept with Delay < 0") }}
	for range 100 {
		off.Failed("192.0.2.9")
	}
	if off.Blocked("192.0.2.9") {
		t.Fatal("blocked with PerIP < 0")
	}
	if IP("[2001:db8::1]:25") != "2001:db8::1" || IP("192.0.2.1:110") != "192.0.2.1" {
		t.Fatal("IP")
	}
}
