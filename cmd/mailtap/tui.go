package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gdamore/tcell/v2"
	"github.com/spf13/pflag"

	"github.com/mailtap/mailtap/capture"
	"github.com/mailtap/mailtap/capture/live"
	"github.com/mailtap/mailtap/cmd/internal/tui"
	"github.com/mailtap/mailtap/decode"
)

func tuiCommand() *command {
	var df decodeFlags
	var readPath, iface string
	var maxSessions int
	var spill spillFlags
	return &command{
		name:    "tui",
		summary: "browse the sessions and messages of a capture in a terminal UI",
		usage:   "mailtap tui [flags] FILE   (or -r FILE, or -i IFACE|any for live traffic)",
		flags: func() *pflag.FlagSet {
			fs := pflag.NewFlagSet("tui", pflag.ContinueOnError)
			fs.SortFlags = false
			fs.StringVarP(&readPath, "read", "r", "", "capture file to read")
			fs.StringVarP(&iface, "interface", "i", "", "show live traffic of this interface, or any (as mailtap sniff; root or CAP_NET_RAW)")
			fs.IntVar(&maxSessions, "max-sessions", tui.DefaultMaxSessions, "sessions kept in the UI; past it the oldest are dropped (and counted)")
			fs.Int64Var(&spill.max, "spill-max", tui.DefaultSpillMax, "bytes of message bodies kept in a temporary file for the message view (past it bodies are not kept)")
			fs.StringVar(&spill.dir, "spill-dir", "", "directory of that temporary file (default: the system's)")
			df = decodeFlags{}
			df.register(fs)
			// The transcript view is made of command records.
			df.level = "commands"
			fs.Lookup("level").DefValue = "commands"
			// The UI is the output.
			for _, name := range []string{"format", "output", "credentials"} {
				fs.MarkHidden(name)
			}
			return fs
		},
		run: func(fs *pflag.FlagSet, args []string, _, _ io.Writer) error {
			if spill.max < 1 {
				return usagef("--spill-max %d: at least 1", spill.max)
			}
			if maxSessions < 1 {
				return usagef("--max-sessions %d: at least 1", maxSessions)
			}
			for _, name := range []string{"format", "output", "credentials"} {
				if fs.Changed(name) {
					return usagef("--%s does not apply to tui", name)
				}
			}
			if iface != "" {
				if readPath != "" || len(args) > 0 {
					return usagef("-i and a capture file exclude each other")
				}
				return tuiLive(iface, &df, maxSessions, spill, tcell.NewScreen)
			}
			path, err := capturePath(readPath, args)
			if err != nil {
				return err
			}
			return tuiFile(path, &df, maxSessions, spill, tcell.NewScreen)
		},
	}
}

// tuiFile decodes path on its own goroutine into a tui.Model and shows it
// on the screen newScreen returns until the user quits.
func tuiFile(path string, df *decodeFlags, maxSessions int, sf spillFlags, newScreen func() (tcell.Screen, error)) error {
	o, err := df.options()
	if err != nil {
		return err
	}
	src, err := capture.OpenPath(path)
	if err != nil {
		return err
	}
	m, out, err := tuiModel(df, maxSessions, sf, &o)
	if err != nil {
		src.Close()
		return err
	}
	defer m.Spill().Close()
	s, err := initScreen(newScreen)
	if err != nil {
		src.Close()
		out.close()
		return err
	}
	// Fini on every way out, panics in the UI included.
	defer s.Fini()

	eng := df.engine(o, out.sink)
	done := make(chan error, 1)
	go func() {
		// The decoding goroutine owns src (a quit leaves it running
		// until the process exits). A panic must not leave the terminal
		// in raw mode: it is reported on the status line instead.
		var runErr error
		defer func() {
			if p := recover(); p != nil {
				runErr = fmt.Errorf("decoder panic: %v", p)
			}
			src.Close()
			if err := out.close(); runErr == nil {
				runErr = err
			}
			m.Finish(runErr)
			done <- runErr
		}()
		runErr = capture.RunFile(context.Background(), src, eng, func(read, size int64) {
			if size > 0 {
				m.SetProgress(fmt.Sprintf("%d%%", read*100/size))
			}
			m.SetStats(tui.Stats{Packets: eng.Stats().Packets})
		})
		m.SetStats(tui.Stats{Packets: eng.Stats().Packets})
	}()
	if err := tui.Run(s, m); err != nil {
		return err
	}
	select {
	case err := <-done:
		if errors.Is(err, capture.ErrTruncated) {
			return nil // shown on the status line; everything before the cut was decoded
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	default: // quit before the end of the file
	}
	return nil
}

// spillFlags say where message bodies for the message view go.
type spillFlags struct {
	max int64
	dir string
}

// tuiModel makes the model the decoders feed, the output wrapping it
// (with --extract / --mbox), and the spill that keeps message bodies
// (set as o.Messages, passing them on to the extractor). The spill
// outlives out: the message view reads it until the UI returns, and the
// caller closes it then (m.Spill().Close()).
func tuiModel(df *decodeFlags, maxSessions int, sf spillFlags, o *decode.Options) (*tui.Model, *output, error) {
	m := tui.NewModel(maxSessions, 0)
	m.SetShowSecrets(df.showSecrets)
	out := &output{sink: m, flush: func() error { return nil }, close: func() error { return nil }}
	if err := df.withExtraction(o, out); err != nil {
		return nil, nil, err
	}
	sp, err := tui.NewSpill(sf.dir, sf.max, o.Messages)
	if err != nil {
		out.close()
		return nil, nil, fmt.Errorf("--spill-dir: %w", err)
	}
	o.Messages = sp
	m.SetSpill(sp)
	return m, out, nil
}

func initScreen(newScreen func() (tcell.Screen, error)) (tcell.Screen, error) {
	s, err := newScreen()
	if err == nil {
		err = s.Init()
	}
	if err != nil {
		return nil, fmt.Errorf("needs a terminal: %w", err)
	}
	return s, nil
}

// tuiLive shows live traffic of iface until the user quits, with the
// capture set up as mailtap sniff does it (its defaults: port filter in
// the kernel, one socket per --workers).
func tuiLive(iface string, df *decodeFlags, maxSessions int, sf spillFlags, newScreen func() (tcell.Screen, error)) error {
	o, err := df.options()
	if err != nil {
		return err
	}
	cfg := live.Config{
		Interface:   iface,
		Workers:     df.workerCount(-1),
		Promiscuous: iface != "any",
		Filter:      live.FilterPorts,
		Ports:       sniffPorts(df),
	}
	if df.bpf != "" {
		cfg.Filter, cfg.Expr = live.FilterExpr, df.bpf
	}
	lc, _, err := openLive(cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", iface, err)
	}
	defer lc.Close()

	m, out, err := tuiModel(df, maxSessions, sf, &o)
	if err != nil {
		return err
	}
	defer m.Spill().Close()
	defer func() { out.close() }()
	s, err := initScreen(newScreen)
	if err != nil {
		return err
	}
	defer s.Fini()

	disp := df.dispatcher(o, out.sink)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() {
		// A decoder panic comes back as an error: the terminal is
		// restored and the status line shows it.
		_, err := live.Run(ctx, lc, live.RunOptions{Engine: df.captureConfig(disp), Factory: disp})
		m.Finish(err)
		done <- err
	}()
	m.SetProgress("live on " + iface)
	stopStats := make(chan struct{})
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopStats:
				return
			case <-t.C:
				st := lc.Stats()
				m.SetStats(tui.Stats{Packets: st.Packets, Drops: st.Drops})
			}
		}
	}()
	runErr := tui.Run(s, m)
	close(stopStats)
	// The sockets read what is left in their rings, close every
	// connection into the model and return.
	stop()
	if err := <-done; runErr == nil && err != nil {
		runErr = fmt.Errorf("%s: %w", iface, err)
	}
	if err := out.close(); runErr == nil {
		runErr = err
	}
	return runErr
}
