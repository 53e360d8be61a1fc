// Command mailtap decodes SMTP, POP3 and IMAP traffic from captures.
//
// Usage: mailtap <command> [flags] — see "mailtap help".
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/mailtap/mailtap/decode/textsafe"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// Exit codes.
const (
	exitOK      = 0
	exitRuntime = 1
	exitUsage   = 2
)

// usageError marks errors that exit with code 2.
type usageError struct{ error }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exitError ends a command with its exit code and no message: the command
// has said what it had to (replay's report, for a divergence).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

type command struct {
	name    string
	summary string
	usage   string
	flags   func() *pflag.FlagSet
	run     func(fs *pflag.FlagSet, args []string, stdout, stderr io.Writer) error
}

func commands() []*command {
	return []*command{readCommand(), sniffCommand(), consumeCommand(), tuiCommand(), replayCommand(), serveCommand(), helpCommand(), versionCommand()}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printOverview(stderr)
		return exitUsage
	}
	name := args[0]
	if name == "-h" || name == "--help" {
		printOverview(stdout)
		return exitOK
	}
	if name == "--version" || name == "-V" {
		name = "version"
	}
	cmd := find(name)
	if cmd == nil {
		fmt.Fprintf(stderr, "mailtap: unknown command %q (see 'mailtap help')\n", name)
		return exitUsage
	}
	fs := cmd.flags()
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			printCommandHelp(stdout, cmd)
			return exitOK
		}
		fmt.Fprintf(stderr, "mailtap %s: %v (see 'mailtap help %s')\n", cmd.name, flagError(err), cmd.name)
		return exitUsage
	}
	err := cmd.run(fs, fs.Args(), stdout, stderr)
	if err == nil {
		return exitOK
	}
	var ue usageError
	// Errors may quote wire data (a reply, a file name): one line, escaped.
	msg := textsafe.String(err.Error())
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "mailtap %s: %s (see 'mailtap help %s')\n", cmd.name, msg, cmd.name)
		return exitUsage
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintf(stderr, "mailtap %s: %s\n", cmd.name, msg)
	return exitRuntime
}

func find(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

func printOverview(w io.Writer) {
	fmt.Fprintf(w, "mailtap %s — decode SMTP, POP3 and IMAP from packet captures\n\n", version)
	fmt.Fprintln(w, "Usage: mailtap <command> [flags] [args]")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'mailtap help <command>' or 'mailtap <command> --help' for its flags.")
	fmt.Fprintln(w, "Exit codes: 0 ok, 1 runtime error, 2 usage error, 3 replay found a divergence,\n4 replay had nothing to compare, 130/143 read stopped by SIGINT/SIGTERM (records written whole).")
}

func printCommandHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "mailtap %s — %s\n\nUsage: %s\n", c.name, c.summary, c.usage)
	fs := c.flags()
	if fs.HasFlags() {
		fmt.Fprintf(w, "\nFlags:\n%s", fs.FlagUsagesWrapped(100))
	}
}

func helpCommand() *command {
	return &command{
		name:    "help",
		summary: "show help for mailtap or one command",
		usage:   "mailtap help [command]",
		flags:   func() *pflag.FlagSet { return pflag.NewFlagSet("help", pflag.ContinueOnError) },
		run: func(_ *pflag.FlagSet, args []string, stdout, _ io.Writer) error {
			if len(args) == 0 {
				printOverview(stdout)
				return nil
			}
			c := find(args[0])
			if c == nil {
				return usagef("unknown command %q", args[0])
			}
			printCommandHelp(stdout, c)
			return nil
		},
	}
}

func versionCommand() *command {
	return &command{
		name:    "version",
		summary: "print the version and the record schema version",
		usage:   "mailtap version",
		flags:   func() *pflag.FlagSet { return pflag.NewFlagSet("version", pflag.ContinueOnError) },
		run: func(_ *pflag.FlagSet, _ []string, stdout, _ io.Writer) error {
			fmt.Fprintf(stdout, "mailtap %s (record schema v%d)\n", version, schemaVersion())
			return nil
		},
	}
}
