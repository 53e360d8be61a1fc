package live

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/mailtap/mailtap/capture"
)

// RunOptions configure Run.
type RunOptions struct {
	// Engine configures each socket's engine; its MaxConns is for the
	// whole run, shared by the sockets. NextID is set by Run (one
	// session counter for every socket: their frame numbers collide)
	// and PacketFilter is dropped (the kernel runs the filter).
	Engine capture.Config
	// Factory creates the decoders of every socket's engine: it is
	// called from one goroutine per socket, so it and the sinks its
	// decoders emit to must be safe for concurrent use.
	Factory capture.Factory
	// Write, when set, is a pcapng file that receives every packet read,
	// and the kernel's counters at the end.
	Write string
	// Rotate, when set, splits Write into several files (see Rotation).
	Rotate Rotation
	// Application is written in the pcapng section header.
	Application string
	// Every, with Periodic, is how often Periodic is called with a
	// snapshot, from Run's goroutine, while the capture runs.
	Every    time.Duration
	Periodic func(RunStats)
}

// RunStats is a snapshot of a live run.
type RunStats struct {
	Engine  capture.Stats // summed over the sockets' engines
	Kernel  Stats
	Elapsed time.Duration
}

// tickEvery is how often an engine is told that time passed (data stuck
// behind holes pushed through, idle connections closed on a quiet link).
const tickEvery = time.Second

// Run decodes the packets of c's sockets until ctx is done or a socket
// fails: one engine per socket, each on its own goroutine (the kernel's
// fanout keeps both directions of a connection on one socket). Then every
// socket's ring is read to its end, every connection closed (its records
// emitted), the pcapng file finished, and the final snapshot returned. A
// panic in a decoder stops the run and is returned as an error.
func Run(ctx context.Context, c *Capture, o RunOptions) (RunStats, error) {
	start := time.Now()
	var pw *pcapWriter
	if o.Write != "" {
		var err error
		pw, err = newPcapWriter(o.Write, c, o.Application, o.Rotate)
		if err != nil {
			return RunStats{}, err
		}
	}
	var ids atomic.Uint64
	cfg := o.Engine
	cfg.PacketFilter = nil
	cfg.NextID = func() uint64 { return ids.Add(1) }
	handles := c.Handles()
	// MaxConns bounds the whole run: each socket's engine tracks its
	// share (the kernel's fanout spreads connections evenly).
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = capture.DefaultMaxConns
	}
	cfg.MaxConns = max(1, cfg.MaxConns/max(1, len(handles)))
	engines := make([]*capture.Engine, len(handles))
	for i := range handles {
		engines[i] = capture.New(cfg, o.Factory)
	}
	snapshot := func() RunStats {
		s := RunStats{Kernel: c.Stats(), Elapsed: time.Since(start)}
		for _, e := range engines {
			s.Engine.Add(e.Stats())
		}
		return s
	}

	var wg sync.WaitGroup
	errs := make(chan error, len(handles))
	for i, h := range handles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := runSocket(h, engines[i], pw); err != nil {
				errs <- err
				c.Interrupt()
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	var every <-chan time.Time
	if o.Every > 0 && o.Periodic != nil {
		t := time.NewTicker(o.Every)
		defer t.Stop()
		every = t.C
	}
	stop := ctx.Done()
loop:
	for {
		select {
		case <-stop:
			// The sockets read what is left in their rings, close
			// every connection and return.
			stop = nil
			c.Interrupt()
		case <-every:
			o.Periodic(snapshot())
		case <-done:
			break loop
		}
	}
	var err error
	select {
	case err = <-errs:
	default:
	}
	if pw != nil {
		if cerr := pw.close(c.Stats(), start); err == nil {
			err = cerr
		}
	}
	return snapshot(), err
}

// runSocket reads one socket into its engine until the socket is
// interrupted, then closes every connection. Each tick it reads the
// socket's kernel drop counter: when it grew, the engine marks every
// connection open (capture_loss on its session record).
func runSocket(h *Handle, e *capture.Engine, pw *pcapWriter) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("decoder panic: %v", p)
		}
	}()
	lastTick := time.Now()
	drops := h.Stats().Drops
	var n int
	for {
		var data []byte
		var ci gopacket.CaptureInfo
		var link layers.LinkType
		data, ci, link, err = h.Next(tickEvery)
		if err == nil {
			if pw != nil {
				pw.write(ci, data)
			}
			e.Packet(data, ci, link)
			if n++; n&255 != 0 {
				continue
			}
		} else if !errors.Is(err, ErrTimeout) {
			break
		}
		if now := time.Now(); now.Sub(lastTick) >= tickEvery {
			e.Tick(now)
			lastTick = now
			if d := h.Stats().Drops; d > drops {
				drops = d
				e.CaptureLoss(now)
			}
		}
	}
	if h.Stats().Drops > drops {
		// dropped since the last tick: still open now
		e.CaptureLoss(time.Now())
	}
	e.Finish()
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// close writes the kernel counters as interface statistics and closes the
// file.
func (p *pcapWriter) close(st Stats, start time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = p.w.WriteInterfaceStats(0, pcapgo.NgInterfaceStatistics{
			LastUpdate:      time.Now(),
			StartTime:       start,
			EndTime:         time.Now(),
			PacketsReceived: st.Received,
			PacketsDropped:  st.Drops,
		})
	}
	if p.err == nil {
		p.err = p.w.Flush()
	}
	if err := p.f.Close(); p.err == nil {
		p.err = err
	}
	if p.err != nil {
		return fmt.Errorf("%s: %w", p.name, p.err)
	}
	return nil
}
