package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/mailtap/mailtap/capture"
	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/textsafe"
	"github.com/mailtap/mailtap/decode/tlsdec"
	"github.com/mailtap/mailtap/replay"
	"github.com/mailtap/mailtap/replay/server/mailstore"
)

// Exit statuses of replay: a divergence, and nothing compared at all.
const (
	exitDivergence = 3
	exitNothing    = 4
)

const replayUsage = `mailtap replay [flags] FILE   (or -r FILE)

Sends the client side of every SMTP, POP3 and IMAP session of the capture
to a server again and compares the answers (docs/replay.md). Without
--target, the built-in server is started on 127.0.0.1, seeded from the
capture.

  mailtap replay capture.pcap
  mailtap replay --target 25=mx2:25 --target 587=mx2:587 --target 143=imap2:143 capture.pcap
  mailtap replay --target imap=imap2:143 --user alice:pw capture.pcap
  mailtap replay --compare codes --ignore imap:CAPABILITY:ID -f text capture.pcap

A REAL SERVER IS CHANGED by a replay: messages are delivered (SMTP DATA),
deleted (POP3 DELE), expunged, moved, appended, mailboxes created and
deleted, as the captured client did. Use --skip DELE,EXPUNGE,... to leave
commands out, and a test server or a copy of the mailboxes.

Exit status: 0 every compared session matched, 3 a divergence (or a
session that could not be driven), 4 nothing could be compared, 1 an
error, 2 a usage error.`

func replayCommand() *command {
	var (
		readPath, format, output, compare, pace, usersFile string
		ports                                              *portsFlag
		noSniff, noDefaults, tlsInsecure                   bool
		targets, ignores, users, skips, tlsKeylogs         []string
		timeout                                            time.Duration
		maxSession                                         int64
		concurrency                                        int
	)
	return &command{
		name:    "replay",
		summary: "replay the client side of captured sessions against a server and compare the answers",
		usage:   replayUsage,
		flags: func() *pflag.FlagSet {
			fs := pflag.NewFlagSet("replay", pflag.ContinueOnError)
			fs.SortFlags = false
			ports = newPortsFlag()
			fs.StringVarP(&readPath, "read", "r", "", "capture file to read")
			fs.StringArrayVar(&targets, "target", nil, "replay against this server instead of the built-in one, repeatable: PORT=HOST:PORT (sessions to that captured server port) or PROTO=HOST:PORT with smtp, smtps, pop3, pop3s, imap, imaps; a port target wins")
			fs.StringVar(&compare, "compare", replay.CompareFull, "what is compared: status (verb and status), codes (and response codes), full (and every field of the answers)")
			fs.StringArrayVar(&ignores, "ignore", nil, "leave this out of the comparison, repeatable: [PROTO:]FIELD[:ITEM], e.g. imap:CAPABILITY:ID, smtp:EHLO:SIZE, INTERNALDATE, text")
			fs.BoolVar(&noDefaults, "no-default-ignores", false, "compare also what is masked by default (queue ids, timestamps and timings in texts, APOP banner, UIDVALIDITY and UIDL values, POP3 IMPLEMENTATION; against the built-in server its capabilities: EHLO, CAPA, CAPABILITY)")
			fs.StringArrayVar(&users, "user", nil, "NAME:PASSWORD to answer CRAM-MD5 and APOP with and to put in PLAIN, LOGIN and USER/PASS, repeatable")
			fs.StringVar(&usersFile, "users", "", "file of NAME:PASSWORD lines, as --user")
			fs.StringSliceVar(&skips, "skip", nil, "verbs to leave out, comma-separated (e.g. DELE,EXPUNGE)")
			fs.StringVar(&pace, "pace", "original", "when sessions and turns are sent: original (captured times), fast (as soon as possible, in order), or a factor such as 2x")
			fs.IntVar(&concurrency, "concurrency", 64, "sessions in flight at most")
			fs.DurationVar(&timeout, "timeout", 5*time.Second, "longest wait for the server's answer to one turn; a later answer is a timeout divergence")
			fs.BoolVar(&tlsInsecure, "tls-insecure", false, "do not check the target's certificate on STARTTLS and implicit TLS")
			fs.StringArrayVar(&tlsKeylogs, "tls-keylog", nil, "decrypt the captured TLS with this NSS key log (repeatable): sessions replay their turns after STARTTLS/STLS, and implicit-TLS ones all theirs, over TLS with the target")
			fs.StringVarP(&format, "format", "f", "json", "output format: json (replay.session lines and a replay.summary line) or text")
			fs.StringVarP(&output, "output", "o", "-", "write the report to this file (- for stdout)")
			fs.Var(ports, "ports", "server ports per protocol in the capture, repeatable: smtp=25,587 pop3=110 imap=143")
			fs.BoolVar(&noSniff, "no-sniff", false, "do not classify connections on other ports by their greeting")
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
			tg, err := parseTargets(targets)
			if err != nil {
				return err
			}
			cc, err := replay.NewCompareConfig(compare, ignores, noDefaults)
			if err != nil {
				return usagef("%v", err)
			}
			speed, err := replay.ParsePace(pace)
			if err != nil {
				return usagef("%v", err)
			}
			if concurrency < 1 {
				return usagef("--concurrency %d: want 1 or more", concurrency)
			}
			creds := map[string]string{}
			for _, u := range users {
				name, pw, err := replay.ParseUser(u)
				if err != nil {
					return usagef("--user: %v", err)
				}
				creds[name] = pw
			}
			if usersFile != "" {
				if err := replay.LoadUsers(usersFile, creds); err != nil {
					return fmt.Errorf("--users: %w", err)
				}
			}
			skip := map[string]bool{}
			for _, v := range skips {
				v = strings.ToUpper(strings.TrimSpace(v))
				switch v {
				case "":
					continue
				case "DATA", "BDAT", "AUTH", "AUTHENTICATE", "APPEND", "STARTTLS", "STLS":
					return usagef("--skip %s: cannot be left out (its payload or TLS follows in later turns)", v)
				}
				skip[v] = true
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
			o := replay.Options{Timeout: timeout, Compare: cc, Users: creds, Skip: skip}
			if tlsInsecure {
				o.TLSConfig = &tls.Config{InsecureSkipVerify: true}
			}
			var keys *tlsdec.KeyLog
			if len(tlsKeylogs) > 0 {
				keys = tlsdec.NewKeyLog()
				for _, k := range tlsKeylogs {
					if err := keys.AddFile(k); err != nil {
						return err
					}
				}
			}
			sm, err := runReplay(path, replay.LoadConfig{
				Ports: ports.ports, Sniff: !noSniff,
				Limits:  replay.Limits{MaxClientBytes: maxSession},
				Capture: capture.Config{IdleTimeout: 5 * time.Minute, MaxConns: 100000},
				TLSKeys: keys,
			}, tg, replay.RunConfig{Options: o, Speed: speed, Concurrency: concurrency}, format, bw)
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
			switch {
			case sm.Compared == 0:
				fmt.Fprintf(stderr, "mailtap replay: nothing compared: %s\n", sm.Reason)
				return exitError{exitNothing}
			case sm.Diverged > 0:
				return exitError{exitDivergence}
			}
			return nil
		},
	}
}

// targets are the --target values: by captured server port and by
// protocol ("smtp", "smtps", ...).
type targets struct {
	port  map[uint16]string
	proto map[string]string
}

// parseTargets reads --target PORT=HOST:PORT and PROTO=HOST:PORT values;
// giving the same key twice is an error.
func parseTargets(vs []string) (*targets, error) {
	t := &targets{port: map[uint16]string{}, proto: map[string]string{}}
	for _, v := range vs {
		key, addr, ok := strings.Cut(v, "=")
		if !ok {
			return nil, usagef("--target %q: want PORT=HOST:PORT or PROTO=HOST:PORT (smtp, smtps, pop3, pop3s, imap, imaps)", v)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, usagef("--target %q: %v", v, err)
		}
		if n, err := strconv.ParseUint(key, 10, 16); err == nil && n > 0 {
			if _, dup := t.port[uint16(n)]; dup {
				return nil, usagef("--target %q: port %d given twice", v, n)
			}
			t.port[uint16(n)] = addr
			continue
		}
		k := strings.ToLower(key)
		switch k {
		case "smtp", "smtps", "pop3", "pop3s", "imap", "imaps":
		default:
			return nil, usagef("--target %q: %q is neither a port nor one of smtp, smtps, pop3, pop3s, imap, imaps", v, key)
		}
		if _, dup := t.proto[k]; dup {
			return nil, usagef("--target %q: %s given twice (use PORT=HOST:PORT for sessions on different ports)", v, k)
		}
		t.proto[k] = addr
	}
	return t, nil
}

// resolve returns the target of a session ("" for the built-in server)
// and whether it speaks implicit TLS.
func (t *targets) resolve(s *replay.Session) (string, bool) {
	implicit := s.Conn.ImplicitTLS
	if a, ok := t.port[s.Conn.Server.Port()]; ok {
		return a, implicit
	}
	k := string(s.Proto)
	if implicit {
		k += "s"
	}
	return t.proto[k], implicit
}

// runReplay records the capture, checks the targets' greetings, starts
// the built-in server for the sessions without a target, replays every
// session and writes one report per session and a summary.
func runReplay(path string, cfg replay.LoadConfig, tg *targets, rc replay.RunConfig, format string, w io.Writer) (*replay.Summary, error) {
	rec, sessions, err := replay.LoadFile(path, cfg)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s: %w", path, pe.Err)
		}
		return nil, err
	}
	// Fail fast on a target that is down or speaks another protocol.
	type probe struct {
		proto decode.Proto
		addr  string
		tls   bool
	}
	probed := map[probe]bool{}
	var builtin []decode.Proto
	for _, s := range sessions {
		if s.Skip != "" {
			continue
		}
		addr, useTLS := tg.resolve(s)
		if addr == "" {
			if !useTLS && !slices.Contains(builtin, s.Proto) {
				builtin = append(builtin, s.Proto)
			}
			continue
		}
		p := probe{s.Proto, addr, useTLS}
		if probed[p] {
			continue
		}
		probed[p] = true
		if err := replay.ProbeGreeting(s.Proto, addr, useTLS, rc.Options.TLSConfig, rc.Options.Timeout); err != nil {
			return nil, fmt.Errorf("target %s for %s sessions: %v", addr, s.Proto, err)
		}
	}
	local := map[decode.Proto]string{}
	var store *mailstore.Store
	if len(builtin) > 0 {
		slices.Sort(builtin)
		sd := rec.Seed(sessions)
		for u, pw := range rc.Options.Users {
			sd.Users[u] = pw
		}
		srv, addrs, err := replay.StartServer(sd, builtin...)
		if err != nil {
			return nil, fmt.Errorf("built-in server: %w", err)
		}
		defer srv.Close()
		local, store = addrs, srv.Store()
	}
	// The built-in server's certificate is its own: STARTTLS with it is
	// not checked.
	builtinTLS := &tls.Config{InsecureSkipVerify: true}
	rc.Target = func(s *replay.Session) replay.Target {
		addr, useTLS := tg.resolve(s)
		if addr == "" {
			if useTLS {
				return replay.Target{}
			}
			return replay.Target{Addr: local[s.Proto], TLSConfig: builtinTLS, Store: store}
		}
		return replay.Target{Addr: addr, TLS: useTLS}
	}
	enc := json.NewEncoder(textsafe.NewJSONWriter(w)) // no raw bidi or C1 from replies
	enc.SetEscapeHTML(false)
	text := format == "text" || format == "txt"
	sm, err := replay.Run(sessions, rc, func(r *replay.Result) error {
		if text {
			writeReplayText(w, r)
			return nil
		}
		return enc.Encode(r)
	})
	if err != nil {
		return sm, err
	}
	if text {
		writeSummaryText(w, sm)
		return sm, nil
	}
	return sm, enc.Encode(sm)
}

func writeReplayText(w io.Writer, r *replay.Result) {
	w = textsafe.NewWriter(w) // errors, values and replies quote wire data
	fmt.Fprintf(w, "session %d %s %s -> %s: ", r.Session, r.Proto, r.Client, r.Server)
	switch {
	case r.Skipped != "":
		fmt.Fprintf(w, "skipped: %s\n", r.Skipped)
		return
	case r.Error != "":
		fmt.Fprintf(w, "error: %s; ", r.Error)
	}
	verdict := "matched"
	switch {
	case r.Failed():
		verdict = "DIVERGED"
	case r.Unverifiable > 0:
		verdict = "unverifiable"
	}
	fmt.Fprintf(w, "%s against %s (%s), %d/%d commands matched", verdict, r.Target, r.Compare, r.Matched, r.Commands)
	if r.Timeouts > 0 {
		fmt.Fprintf(w, ", %d turns timed out", r.Timeouts)
	}
	if r.Abandoned {
		fmt.Fprintf(w, ", abandoned (%d commands not sent)", r.NotSent)
	}
	if r.Stopped != "" {
		fmt.Fprintf(w, ", stopped: %s", r.Stopped)
	}
	if r.Unverifiable > 0 {
		fmt.Fprintf(w, ", %d unverifiable", r.Unverifiable)
	}
	fmt.Fprintln(w)
	for _, d := range r.Diverged {
		verb := d.Verb
		if d.GotVerb != "" {
			verb += " (replayed: " + d.GotVerb + ")"
		}
		fmt.Fprintf(w, "  #%d %s %s: %s", d.Index, verb, d.Field, d.Kind)
		if len(d.Added)+len(d.Removed) > 0 {
			if len(d.Removed) > 0 {
				fmt.Fprintf(w, " removed %s", strings.Join(d.Removed, ", "))
			}
			if len(d.Added) > 0 {
				fmt.Fprintf(w, " added %s", strings.Join(d.Added, ", "))
			}
		} else {
			fmt.Fprintf(w, " captured %s, replayed %s", valueText(d.Captured), valueText(d.Replayed))
		}
		fmt.Fprintln(w)
	}
	if n := r.Divergences - len(r.Diverged); n > 0 {
		fmt.Fprintf(w, "  ... %d more\n", n)
	}
	for _, d := range r.Unverified {
		fmt.Fprintf(w, "  unverifiable #%d %s %s: captured %s, replayed a placeholder\n", d.Index, d.Verb, d.Field, valueText(d.Captured))
	}
	for _, d := range r.Details {
		fmt.Fprintf(w, "  detail #%d %s %s: captured %q, replayed %q\n", d.Index, d.Verb, d.Field, d.Captured, d.Replayed)
	}
	if n := r.TextDiffs - len(r.Details); n > 0 {
		fmt.Fprintf(w, "  ... %d more details\n", n)
	}
}

func valueText(v any) string {
	if v == nil {
		return "none"
	}
	return fmt.Sprint(v)
}

func writeSummaryText(w io.Writer, sm *replay.Summary) {
	fmt.Fprintf(w, "%d sessions: %d compared, %d matched, %d diverged, ", sm.Sessions, sm.Compared, sm.Matched, sm.Diverged)
	if sm.Unverifiable > 0 {
		fmt.Fprintf(w, "%d unverifiable, ", sm.Unverifiable)
	}
	fmt.Fprintf(w, "%d skipped", sm.Skipped)
	if len(sm.SkippedBy) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(sm.SkippedBy)) {
			parts = append(parts, fmt.Sprintf("%d %s", sm.SkippedBy[k], k))
		}
		fmt.Fprintf(w, " (%s)", strings.Join(parts, ", "))
	}
	for _, k := range slices.Sorted(maps.Keys(sm.Stopped)) {
		fmt.Fprintf(w, "; %d stopped: %s", sm.Stopped[k], k)
	}
	fmt.Fprintf(w, "; %d divergences, %d text details; %.2fs\n", sm.Divergences, sm.TextDiffs, sm.Seconds)
	for _, p := range []decode.Proto{decode.ProtoSMTP, decode.ProtoPOP3, decode.ProtoIMAP} {
		if l := sm.Latency[p]; l != nil {
			fmt.Fprintf(w, "latency %s (ms): captured p50 %.3f p99 %.3f, replayed p50 %.3f p99 %.3f (%d commands)\n",
				p, l.CapturedP50, l.CapturedP99, l.ReplayedP50, l.ReplayedP99, l.Commands)
		}
	}
	if len(sm.NotCompared) > 0 {
		fmt.Fprintf(w, "not compared against the built-in server (its own capabilities; --no-default-ignores compares them): %s\n", strings.Join(sm.NotCompared, ", "))
	}
	if sm.Reason != "" {
		fmt.Fprintf(w, "nothing compared: %s\n", sm.Reason)
	}
}
