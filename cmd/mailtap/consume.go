package main

import (
	"context"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/mailtap/mailtap/decode/sink"
	"github.com/mailtap/mailtap/decode/sink/natssink"
)

func consumeCommand() *command {
	var df decodeFlags
	var max int
	var idle time.Duration
	return &command{
		name:    "consume",
		summary: "read the records sensors published to NATS JetStream and write them (json, text, zeek, ecs)",
		usage:   "mailtap consume [flags] nats://HOST:PORT/SUBJECT",
		flags: func() *pflag.FlagSet {
			fs := pflag.NewFlagSet("consume", pflag.ContinueOnError)
			fs.SortFlags = false
			df = decodeFlags{format: "json"}
			fs.VarP(formatFlag{&df.format, &df.formatSet}, "format", "f", "output format: json, text, zeek (into the directory -o DIR) or ecs")
			fs.StringVarP(&df.output, "output", "o", "-", "write records to this file or, for -f zeek, directory (- for stdout)")
			fs.IntVarP(&max, "count", "c", 0, "stop after this many records (0: no limit)")
			fs.DurationVar(&idle, "idle", 0, "stop when no record came for this long, e.g. 2s (0: run until SIGINT/SIGTERM)")
			return fs
		},
		run: func(_ *pflag.FlagSet, args []string, stdout, stderr io.Writer) error {
			if len(args) != 1 {
				return usagef("one nats://HOST:PORT/SUBJECT to read")
			}
			server, subject, err := natssink.ParseURL(args[0])
			if err != nil {
				return usagef("%v", err)
			}
			if max < 0 || idle < 0 {
				return usagef("-c and --idle take positive values")
			}
			if df.output != "-" && df.output != "" {
				if err := checkOutputPath("-o", df.output); err != nil {
					return err
				}
			}
			out, err := df.openOutput(stdout)
			if err != nil {
				return err
			}
			defer func() { out.close() }()
			if t, ok := out.sink.(*sink.Text); ok {
				t.GroupSessions(textPending)
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			n, runErr := natssink.Consume(ctx, natssink.ConsumeConfig{URL: server, Subject: subject, Max: max, Idle: idle}, out.sink)
			if err := out.flush(); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "mailtap consume: %d records from %s\n", n, args[0])
			if runErr != nil {
				return runErr
			}
			return out.close()
		},
	}
}
