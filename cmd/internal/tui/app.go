package tui

import (
	"sync"
	"time"

	"github.com/gdamore/tcell/v2"
)

// FrameInterval is the shortest time between two wake-ups of the UI for
// model changes.
const FrameInterval = 50 * time.Millisecond

// Run shows m on s until the user quits (q, Ctrl-C) or s is finalised.
// s must be initialised; the caller calls s.Fini (Run does not, so that
// the caller's deferred Fini covers every exit path, panics included).
// Everything that draws runs on the calling goroutine.
func Run(s tcell.Screen, m *Model) error {
	return NewView(m).Run(s)
}

// Run is the event loop of Run, on v.
func (v *View) Run(s tcell.Screen) error {
	m := v.m
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		wake(s, m.Changed(), stop, FrameInterval)
	}()
	// Stop the waker before returning, so nothing is posted to a screen
	// the caller is about to finalise.
	defer func() {
		close(stop)
		wg.Wait()
	}()

	s.EnableMouse(tcell.MouseButtonEvents)
	defer s.DisableMouse()
	v.Draw(s)
	for {
		ev := s.PollEvent()
		switch ev := ev.(type) {
		case nil:
			return nil // the screen was finalised
		case *tcell.EventKey:
			v.HandleKey(ev)
			if v.Quit() {
				return nil
			}
		case *tcell.EventMouse:
			v.HandleMouse(ev)
		case *tcell.EventResize:
			s.Sync()
		case *tcell.EventInterrupt:
			v.Refresh()
		}
		if s.HasPendingEvent() {
			continue // draw once for the whole batch
		}
		v.Draw(s)
	}
}

// wake posts one interrupt to s for each token on changed, at most one per
// interval. PostEvent fails when the queue is full; the change is then
// kept and posted on a later round, since the UI is busy anyway.
func wake(s tcell.Screen, changed <-chan struct{}, stop <-chan struct{}, interval time.Duration) {
	t := time.NewTimer(interval)
	defer t.Stop()
	pending := false
	for {
		if !pending {
			select {
			case <-stop:
				return
			case <-changed:
			}
		}
		pending = s.PostEvent(tcell.NewEventInterrupt(nil)) != nil
		t.Reset(interval)
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}
