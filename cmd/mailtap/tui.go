package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/gdamore/tcell/v2"
	"github.com/spf13/pflag"

	"github.com/mailtap/mailtap/capture"
	"github.com/mailtap/mailtap/cmd/internal/tui"
)

func tuiCommand() *command {
	var df decodeFlags
	var readPath string
	var maxSessions int
	return &command{
		name:    "tui",
		summary: "browse the sessions and messages of a capture in a terminal UI",
		usage:   "mailtap tui [flags] FILE   (or -r FILE)",
		flags: func() *pflag.FlagSet {
			fs := pflag.NewFlagSet("tui", pflag.ContinueOnError)
			fs.SortFlags = false
			fs.StringVarP(&readPath, "read", "r", "", "capture file to read")
			fs.IntVar(&maxSessions, "max-sessions", tui.DefaultMaxSessions, "sessions kept in the UI; past it the oldest are dropped (and counted)")
			df = decodeFlags{}
			df.register(fs)
			// The UI is the output.
			for _, name := range []string{"format", "output", "credentials"} {
				fs.MarkHidden(name)
			}
			return fs
		},
		run: func(fs *pflag.FlagSet, args []string, _, _ io.Writer) error {
			path := readPath
			switch {
			case path == "" && len(args) == 1:
				path = args[0]
			case path == "" && len(args) == 0:
				return usagef("no capture file given")
			case path != "" && len(args) > 0 || len(args) > 1:
				return usagef("one capture file at a time (got %d)", len(args)+btoi(path != ""))
			}
			for _, name := range []string{"format", "output", "credentials"} {
				if fs.Changed(name) {
					return usagef("--%s does not apply to tui", name)
				}
			}
			if maxSessions < 1 {
				return usagef("--max-sessions %d: at least 1", maxSessions)
			}
			return tuiFile(path, &df, maxSessions, tcell.NewScreen)
		},
	}
}

// tuiFile decodes path on its own goroutine into a tui.Model and shows it
// on the screen newScreen returns until the user quits.
func tuiFile(path string, df *decodeFlags, maxSessions int, newScreen func() (tcell.Screen, error)) error {
	o, err := df.options()
	if err != nil {
		return err
	}
	src, err := capture.OpenFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return fmt.Errorf("%s: %w", path, pe.Err)
		}
		return err
	}
	m := tui.NewModel(maxSessions, 0)
	out := &output{sink: m, flush: func() error { return nil }, close: func() error { return nil }}
	if err := df.withExtraction(&o, out); err != nil {
		src.Close()
		return err
	}
	s, err := newScreen()
	if err == nil {
		err = s.Init()
	}
	if err != nil {
		src.Close()
		out.close()
		return fmt.Errorf("needs a terminal: %w", err)
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
		size := src.Size()
		runErr = eng.Run(src, func() {
			if size > 0 {
				m.SetProgress(fmt.Sprintf("%d%%", src.Offset()*100/size))
			}
		})
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
