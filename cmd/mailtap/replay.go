package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/mailtap/mailtap/capture"
	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/dispatch"
	"github.com/mailtap/mailtap/decode/textsafe"
	"github.com/mailtap/mailtap/replay"
)

// exitDivergence is the exit status when a replayed session did not match.
const exitDivergence = 3

func replayCommand() *command {
	var (
		readPath, format, output string
		ports                    *portsFlag
		noSniff                  bool
		targets                  []string
		timeout                  time.Duration
		maxSession               int64
	)
	return &command{
		name:    "replay",
		summary: "replay the client side of captured sessions against a server and compare the answers",
		usage:   "mailtap replay [flags] FILE   (or -r FILE; --target smtp=HOST:PORT to use a real server)",
		flags: func() *pflag.FlagSet {
			fs := pflag.NewFlagSet("replay", pflag.ContinueOnError)
			fs.SortFlags = false
			ports = newPortsFlag()
			fs.StringVarP(&readPath, "read", "r", "", "capture file to read")
			fs.StringArrayVar(&targets, "target", nil, "replay one protocol against this server instead of the built-in one, repeatable: smtp=HOST:PORT pop3=HOST:PORT imap=HOST:PORT")
			fs.StringVarP(&format, "format", "f", "json", "output format: json (one replay.session line per session) or text")
			fs.StringVarP(&output, "output", "o", "-", "write the report to this file (- for stdout)")
			fs.Var(ports, "ports", "server ports per protocol in the capture, repeatable: smtp=25,587 pop3=110 imap=143")
			fs.BoolVar(&noSniff, "no-sniff", false, "do not classify connections on other ports by their greeting")
			fs.DurationVar(&timeout, "timeout", 5*time.Second, "longest wait for the server's answer to one turn")
			fs.Int64Var(&maxSession, "max-session-bytes", 16<<20, "client bytes kept per session; longer sessions are skipped")
			return fs
		},
		run: func(_ *pflag.FlagSet, args []string, stdout, stderr io.Writer) error {
			path, err := capturePath(readPath, args)
			if err != nil {
				return err
			}
			if format != "json" && format != "jsonl" && format != "text" && format != "txt" {
				return usagef("--format %q: want json or text", format)
			}
			addrs, err := parseTargets(targets)
			if err != nil {
				return err
			}
			w := stdout
			var f *os.File
			if output != "-" && output != "" {
				if f, err = os.Create(output); err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			bw := bufio.NewWriter(w)
			failed, err := runReplay(path, replay.LoadConfig{
				Ports: ports.ports, Sniff: !noSniff,
				Limits:  replay.Limits{MaxClientBytes: maxSession},
				Capture: capture.Config{IdleTimeout: 5 * time.Minute, MaxConns: 100000},
			}, addrs, replay.Options{Timeout: timeout}, format, bw)
			if ferr := bw.Flush(); err == nil {
				err = ferr
			}
			if f != nil {
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
			if err != nil {
				return err
			}
			if failed {
				return exitError{exitDivergence}
			}
			return nil
		},
	}
}

// parseTargets reads --target proto=HOST:PORT values.
func parseTargets(vs []string) (map[decode.Proto]string, error) {
	out := map[decode.Proto]string{}
	for _, v := range vs {
		name, addr, ok := strings.Cut(v, "=")
		if !ok {
			return nil, usagef("--target %q: want PROTO=HOST:PORT (smtp, pop3 or imap)", v)
		}
		proto, _, err := dispatch.ProtoOf(name)
		if err != nil {
			return nil, usagef("--target %q: %v", v, err)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, usagef("--target %q: %v", v, err)
		}
		out[proto] = addr
	}
	return out, nil
}

// runReplay records the capture, starts the built-in server for the
// protocols without a target, replays every session in capture order and
// writes one report per session. failed is true when a replayed session
// diverged or could not be driven.
func runReplay(path string, cfg replay.LoadConfig, targets map[decode.Proto]string, o replay.Options, format string, w io.Writer) (failed bool, err error) {
	rec, sessions, err := replay.LoadFile(path, cfg)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return false, fmt.Errorf("%s: %w", path, pe.Err)
		}
		return false, err
	}
	addrs := map[decode.Proto]string{}
	var builtin []decode.Proto
	for _, p := range replay.Protos(sessions) {
		if a, ok := targets[p]; ok {
			addrs[p] = a
		} else {
			builtin = append(builtin, p)
		}
	}
	if len(builtin) > 0 {
		srv, local, err := replay.StartServer(rec.Seed(sessions), builtin...)
		if err != nil {
			return false, fmt.Errorf("built-in server: %w", err)
		}
		defer srv.Close()
		for _, p := range builtin {
			addrs[p] = local[p]
		}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	var replayed, matched int
	for _, s := range sessions {
		r := replay.Replay(s, addrs[s.Proto], o)
		if r.Skipped == "" {
			replayed++
			if !r.Failed() {
				matched++
			}
		}
		failed = failed || r.Failed()
		if format == "json" || format == "jsonl" {
			if err := enc.Encode(r); err != nil {
				return failed, err
			}
			continue
		}
		writeReplayText(w, r)
	}
	if format == "text" || format == "txt" {
		fmt.Fprintf(w, "%d sessions, %d replayed, %d matched\n", len(sessions), replayed, matched)
	}
	return failed, nil
}

func writeReplayText(w io.Writer, r *replay.Result) {
	w = textsafe.NewWriter(w) // errors and replies quote wire data
	fmt.Fprintf(w, "session %d %s %s -> %s: ", r.Session, r.Proto, r.Client, r.Server)
	switch {
	case r.Skipped != "":
		fmt.Fprintf(w, "skipped: %s\n", r.Skipped)
		return
	case r.Error != "":
		fmt.Fprintf(w, "error: %s; ", r.Error)
	}
	fmt.Fprintf(w, "replayed against %s, %d/%d commands matched", r.Target, r.Matched, r.Commands)
	if r.TextDiffs > 0 {
		fmt.Fprintf(w, " (%d with other text)", r.TextDiffs)
	}
	if r.Timeouts > 0 {
		fmt.Fprintf(w, ", %d turns timed out", r.Timeouts)
	}
	fmt.Fprintln(w)
	for _, d := range r.Diverged {
		verb := d.Verb
		if d.GotVerb != "" {
			verb += " (replayed: " + d.GotVerb + ")"
		}
		fmt.Fprintf(w, "  #%d %s: want %s, got %s", d.Index, verb, statusText(d.Want), statusText(d.Got))
		if d.GotText != "" {
			fmt.Fprintf(w, " %q", d.GotText)
		}
		fmt.Fprintln(w)
	}
	if n := r.Divergences - len(r.Diverged); n > 0 {
		fmt.Fprintf(w, "  ... %d more\n", n)
	}
}

func statusText(v any) string {
	if v == nil {
		return "no answer"
	}
	return fmt.Sprint(v)
}
