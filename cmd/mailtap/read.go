package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/mailtap/mailtap/capture"
	"github.com/mailtap/mailtap/capture/bpfexpr"
	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/dispatch"
	"github.com/mailtap/mailtap/decode/sink"
)

func schemaVersion() int { return decode.SchemaVersion }

// portsFlag is a pflag.Value over dispatch.Ports; the first --ports given
// for a protocol replaces that protocol's defaults.
type portsFlag struct {
	ports    dispatch.Ports
	replaced map[decode.Proto]bool
}

func newPortsFlag() *portsFlag {
	return &portsFlag{ports: dispatch.DefaultPorts(), replaced: map[decode.Proto]bool{}}
}

func (p *portsFlag) String() string { return p.ports.String() }
func (p *portsFlag) Type() string   { return "proto=ports" }
func (p *portsFlag) Set(v string) error {
	if err := checkPortsValue(v); err != nil {
		return err
	}
	name, _, _ := strings.Cut(v, "=")
	proto, _, err := dispatch.ProtoOf(name)
	if err != nil {
		return err
	}
	if !p.replaced[proto] {
		p.replaced[proto] = true
		p.ports.Remove(proto)
	}
	return p.ports.Set(v)
}

// decodeFlags are the flags shared by every command that decodes traffic.
type decodeFlags struct {
	format      string
	output      string
	level       string
	ports       *portsFlag
	noSniff     bool
	portFilter  portListFlag
	showSecrets bool
	maxLine     int
	maxMessage  int64
	maxConns    int
	idle        time.Duration
	verifySums  bool
	stats       bool
	workers     int
	credentials bool
	formatSet   bool // -f given (set by register's flag set at parse)
	extract     string
	force       bool
	mbox        string
	stdout      io.Writer // for --mbox -
	bpf         string
	bpfFilter   *bpfexpr.Filter
	hash        string
	tls         tlsFlags
}

func (d *decodeFlags) register(fs *pflag.FlagSet) {
	d.ports = newPortsFlag()
	d.format = "json"
	fs.VarP(formatFlag{&d.format, &d.formatSet}, "format", "f", "output format: json (JSON lines), text, credentials (one line per authentication attempt), zeek (Zeek logs smtp.log, pop3.log, imap.log into the directory -o DIR), or ecs (Elastic Common Schema JSON lines)")
	fs.BoolVar(&d.credentials, "credentials", false, "list authentication attempts only (same as -f credentials; with -f json, one JSON line per attempt)")
	fs.StringVar(&d.extract, "extract", "", "write every message to DIR/<session>-<n>.eml, attachments to DIR/attachments/, and DIR/index.json")
	fs.BoolVar(&d.force, "force", false, "let --extract clear a DIR holding a previous extraction (index.json, *.eml, attachments/)")
	fs.StringVar(&d.mbox, "mbox", "", "also write every message (all protocols) to this mbox file (mboxrd; - for stdout, with -o FILE)")
	fs.StringVarP(&d.output, "output", "o", "-", "write records to this file (- for stdout), or publish them to NATS JetStream: nats://HOST:PORT/SUBJECT")
	fs.StringVar(&d.level, "level", "transactions", "records to emit: transactions (sessions + mails/messages) or commands (+ one record per command)")
	fs.Var(d.ports, "ports", "server ports per protocol, repeatable: smtp=25,587,2525 pop3=110 imap=143 (add +tls for implicit TLS, e.g. smtp=465+tls)")
	fs.BoolVar(&d.noSniff, "no-sniff", false, "do not classify connections on other ports by their greeting")
	fs.Var(&d.portFilter, "port-filter", "decode only TCP packets with one of these ports (a cheap filter for big captures)")
	fs.StringVar(&d.bpf, "bpf", "", "decode only packets matching this tcpdump-style filter expression (needs a build with -tags pcap)")
	fs.StringVar(&d.hash, "hash", "sha256", "digests of messages and attachments: sha256, plus md5 and/or sha1 (comma-separated; they cost CPU)")
	fs.BoolVar(&d.showSecrets, "show-secrets", false, "show passwords and AUTH secrets instead of <redacted>")
	fs.IntVar(&d.maxLine, "max-line", decode.DefaultMaxLine, "longest protocol line kept, in bytes")
	fs.Int64Var(&d.maxMessage, "max-message", decode.DefaultMaxMessage, "message bytes kept in memory for parsing (larger ones are streamed and hashed)")
	fs.IntVar(&d.maxConns, "max-conns", capture.DefaultMaxConns, "connections tracked at once, in all (shared by the workers); past it the least recently active is closed (close_reason evicted)")
	fs.DurationVar(&d.idle, "idle-timeout", 5*time.Minute, "close connections idle this long (capture time)")
	fs.BoolVar(&d.verifySums, "verify-checksums", false, "drop TCP segments with a bad checksum (captures from a tap; leave off for captures made on the sending host)")
	fs.BoolVar(&d.stats, "stats", false, "print capture statistics on stderr at the end (this also checks every TCP checksum, to count the bad ones)")
	fs.IntVar(&d.workers, "workers", 0, "decoding workers; 0: one for captures under 64 MB or when other work keeps the CPUs busy, else one per free CPU (connections are spread by flow hash; output order does not depend on it)")
	d.tls.register(fs)
}

func (d *decodeFlags) options() (decode.Options, error) {
	o := decode.Options{ShowSecrets: d.showSecrets, MaxLine: d.maxLine, MaxMessage: d.maxMessage}
	switch d.level {
	case "transactions", "transaction", "tx":
		o.Level = decode.LevelTransactions
	case "commands", "command", "cmd":
		o.Level = decode.LevelCommands
	default:
		return o, usagef("--level %q: want transactions or commands", d.level)
	}
	h, err := decode.ParseHashes(d.hash)
	if err != nil {
		return o, usagef("--hash: %v", err)
	}
	o.Hashes = h
	if d.format == "zeek" {
		// smtp.log's STARTTLS row takes its last_reply from the
		// STARTTLS command record.
		o.Level = decode.LevelCommands
	}
	if d.workers < 0 {
		return o, usagef("--workers %d: at least 1 (0: automatic)", d.workers)
	}
	if d.bpf != "" && d.bpfFilter == nil {
		f, err := bpfexpr.NewFilter(d.bpf, 262144)
		if err != nil {
			return o, usagef("%v", err)
		}
		d.bpfFilter = f
	}
	if d.maxLine < 512 {
		return o, usagef("--max-line %d: at least 512", d.maxLine)
	}
	if err := d.checkPaths(); err != nil {
		return o, err
	}
	if err := d.tls.load(); err != nil {
		return o, err
	}
	return o, nil
}

// output is an open record sink plus its closer.
type output struct {
	sink  decode.Sink
	flush func() error
	close func() error
	// stats, when set, is a line about the sink itself (NATS: records
	// acknowledged and sink_dropped) for --stats and the summary.
	stats func() string
}

func (d *decodeFlags) openOutput(stdout io.Writer) (*output, error) {
	if d.credentials {
		d.format = credentialsFormat(d.format, d.formatSet)
	}
	w := stdout
	d.stdout = stdout
	if d.format == "zeek" {
		return d.openZeek()
	}
	if strings.HasPrefix(d.output, "nats://") {
		return d.openNATS()
	}
	closeFn := func() error { return nil }
	if d.output != "-" && d.output != "" {
		f, err := os.Create(d.output)
		if err != nil {
			return nil, err
		}
		w, closeFn = f, sync.OnceValue(f.Close)
	}
	var s sink.Sink
	switch d.format {
	case "json", "jsonl":
		s = sink.NewJSONL(w)
	case "text", "txt":
		s = sink.NewText(w)
	case "credentials", "creds":
		s = sink.NewCredentials(w)
	case "credentials-json":
		s = sink.NewCredentialsJSON(w)
	case "ecs":
		s = sink.NewECS(w)
	default:
		closeFn()
		return nil, usagef("--format %q: want json, text, credentials, zeek or ecs", d.format)
	}
	return &output{sink: s, flush: s.Flush, close: closeFn}, nil
}

// openZeek opens -f zeek's log directory, -o DIR (created; its parent
// must exist, as for every output path).
func (d *decodeFlags) openZeek() (*output, error) {
	if d.output == "-" || d.output == "" {
		return nil, usagef("-f zeek writes smtp.log, pop3.log and imap.log into a directory: give it with -o DIR")
	}
	if err := os.Mkdir(d.output, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	z, err := sink.NewZeek(d.output)
	if err != nil {
		return nil, err
	}
	return &output{sink: z, flush: z.Flush, close: sync.OnceValue(z.Close)}, nil
}

// withExtraction wraps out's sink with an Extractor when --extract or
// --mbox asks for one, and sets o.Messages.
func (d *decodeFlags) withExtraction(o *decode.Options, out *output) error {
	if d.extract == "" && d.mbox == "" {
		return nil
	}
	dir, keep := d.extract, true
	if dir == "" {
		tmp, err := os.MkdirTemp("", "mailtap-mbox-")
		if err != nil {
			return err
		}
		dir, keep = tmp, false
	}
	x, err := sink.NewExtractor(dir, out.sink, keep)
	if err != nil {
		return err
	}
	switch d.mbox {
	case "":
	case "-":
		x.SetMboxWriter(d.stdout)
	default:
		if err := x.SetMbox(d.mbox); err != nil {
			return err
		}
	}
	o.Messages = x
	out.sink = x
	// Extraction ends with the output: index.json, the mbox, and the
	// temporary directory of an mbox-only run. close may run twice (a
	// deferred call after the explicit one).
	closeOut, done := out.close, false
	out.close = func() error {
		if done {
			return nil
		}
		done = true
		err := x.Close()
		if !keep {
			os.RemoveAll(dir)
		}
		if cerr := closeOut(); err == nil {
			err = cerr
		}
		return err
	}
	return nil
}

// dispatcher picks the protocol decoder of each connection, emitting to s.
func (d *decodeFlags) dispatcher(o decode.Options, s decode.Sink) *dispatch.Dispatcher {
	protocols := dispatch.Protocols()
	d.tls.wrap(protocols)
	return dispatch.New(dispatch.Config{
		Ports:     d.ports.ports,
		Sniff:     !d.noSniff,
		Options:   o,
		Sink:      s,
		Protocols: protocols,
	})
}

// captureConfig is the engine configuration the flags ask for.
func (d *decodeFlags) captureConfig(disp *dispatch.Dispatcher) capture.Config {
	// d.bpfFilter was compiled (and its error reported) by options().
	cfg := capture.Config{
		ServerPort:      disp.IsServerPort,
		IdleTimeout:     d.idle,
		MaxConns:        d.maxConns,
		VerifyChecksums: d.verifySums,
		CountChecksums:  d.stats,
	}
	if len(d.portFilter) > 0 {
		want := map[uint16]bool{}
		for _, p := range d.portFilter {
			want[p] = true
		}
		cfg.Filter = func(a, b uint16) bool { return want[a] || want[b] }
	}
	if d.bpfFilter != nil {
		cfg.PacketFilter = d.bpfFilter.Match
	}
	return cfg
}

// engine builds a file-reading engine of --workers workers decoding into
// s (one worker runs on the caller's goroutine).
func (d *decodeFlags) engine(o decode.Options, s decode.Sink) *capture.Engine {
	cfg := d.captureConfig(d.dispatcher(o, s))
	n := d.workers
	if n == 0 {
		n = d.workerCount(-1) // size unknown here: readFile sets d.workers from it
	}
	tuneGC()
	return capture.NewParallel(cfg, n, func(s decode.Sink) capture.Factory { return d.dispatcher(o, s) }, s)
}

func readCommand() *command {
	var df decodeFlags
	var readPath, cpuProfile, memProfile string
	var rf readOnlyFlags
	return &command{
		name:    "read",
		summary: "decode pcap or pcapng files (gzip too) into records",
		usage:   "mailtap read [flags] FILE|DIR...   (or -r FILE; - for standard input; several files are merged by time)",
		flags: func() *pflag.FlagSet {
			fs := pflag.NewFlagSet("read", pflag.ContinueOnError)
			fs.SortFlags = false
			fs.StringVarP(&readPath, "read", "r", "", "capture file to read")
			df = decodeFlags{}
			df.register(fs)
			rf = readOnlyFlags{}
			fs.Int64VarP(&rf.count, "count", "c", 0, "stop after this many packets (as tshark -c)")
			fs.BoolVarP(&rf.quiet, "quiet", "q", false, "write no records, only a summary of what was decoded (on standard output)")
			fs.StringVar(&cpuProfile, "cpuprofile", "", "write a Go CPU profile of the run to this file (go tool pprof)")
			fs.StringVar(&memProfile, "memprofile", "", "write a Go allocation profile of the run to this file when it ends (go tool pprof -sample_index=alloc_space)")
			return fs
		},
		run: func(_ *pflag.FlagSet, args []string, stdout, stderr io.Writer) error {
			paths, err := capturePaths(readPath, args)
			if err != nil {
				return err
			}
			if rf.count < 0 {
				return usagef("-c %d: a number of packets, at least 1", rf.count)
			}
			if rf.quiet && df.output != "-" && df.output != "" {
				return usagef("-q writes no records: drop -o %s", df.output)
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			if memProfile != "" {
				f, err := os.Create(memProfile)
				if err != nil {
					return err
				}
				// one sample per 4 KiB allocated, not 512: the small
				// objects a decoder allocates per message are counted
				runtime.MemProfileRate = 4096
				defer func() {
					if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
						fmt.Fprintln(stderr, "mailtap: --memprofile:", err)
					}
					f.Close()
				}()
			}
			ctx, stop := signalContext(context.Background())
			defer stop()
			if len(paths) > 1 || rf.count > 0 || rf.quiet {
				return readFiles(ctx, paths, &df, rf, stdout, stderr)
			}
			return readFile(ctx, paths[0], &df, stdout, stderr)
		},
	}
}

// capturePath is the one capture file named by -r or as the argument.
func capturePath(readPath string, args []string) (string, error) {
	switch {
	case readPath == "" && len(args) == 1:
		return args[0], nil
	case readPath == "" && len(args) == 0:
		return "", usagef("no capture file given")
	case readPath != "" && len(args) > 0 || len(args) > 1:
		n := len(args)
		if readPath != "" {
			n++
		}
		return "", usagef("one capture file at a time (got %d)", n)
	}
	return readPath, nil
}

// signalContext is done on the first SIGINT or SIGTERM, with an exitError
// of 130 or 143 as its cause; a second signal kills the process as usual.
func signalContext(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-ch:
			signal.Stop(ch)
			code := 130
			if s == syscall.SIGTERM {
				code = 143
			}
			cancel(exitError{code})
		case <-ctx.Done():
		}
	}()
	return ctx, func() { signal.Stop(ch); cancel(nil) }
}

// readFile decodes path until its end or until ctx is done; then what was
// decoded is written as whole records, and ctx's cause returned.
func readFile(ctx context.Context, path string, df *decodeFlags, stdout, stderr io.Writer) error {
	o, err := df.options()
	if err != nil {
		return err
	}
	src, err := openSource(path)
	if err != nil {
		return err
	}
	defer src.Close()
	if err := df.tls.useSource(src, path); err != nil {
		return err
	}
	out, err := df.openOutput(stdout)
	if err != nil {
		return err
	}
	defer func() { out.close() }()
	if t, ok := out.sink.(*sink.Text); ok {
		t.GroupSessions(textPending) // a file: each session reads in time order
	}
	if err := df.withExtraction(&o, out); err != nil {
		return err
	}
	size := src.Size()
	if path == "-" {
		size = -1 // not known
	}
	df.workers = df.workerCount(size)
	eng := df.engine(o, out.sink)
	prog := newProgress(stderr, src.Size())
	runErr := capture.RunFile(ctx, src, eng, func(read, _ int64) { prog.update(read, eng.Stats().Packets) })
	prog.done()
	if err := out.flush(); err != nil {
		return err
	}
	if df.stats {
		printStats(stderr, eng.Stats())
	}
	if ctx.Err() != nil {
		// Interrupted: every connection was closed, its records
		// written whole.
		if err := out.close(); err != nil {
			return err
		}
		if out.stats != nil {
			fmt.Fprintln(stderr, out.stats())
		}
		return context.Cause(ctx)
	}
	if out.stats != nil {
		// A publishing sink: wait for its acks, then say what it did.
		cerr := out.close()
		fmt.Fprintln(stderr, out.stats())
		if cerr != nil {
			return cerr
		}
	}
	if errors.Is(runErr, capture.ErrTruncated) {
		// Everything before the cut was decoded and written.
		fmt.Fprintf(stderr, "mailtap read: warning: %s: %v\n", path, runErr)
		return nil
	}
	if runErr != nil {
		return fmt.Errorf("%s: %w", path, runErr)
	}
	return out.close()
}

func printStats(w io.Writer, s capture.Stats) {
	fmt.Fprintf(w, "packets %d (%d bytes), tcp %d, not tcp %d, unknown link %d, malformed %d, fragments %d\n",
		s.Packets, s.Bytes, s.TCP, s.NotTCP, s.UnknownLink, s.Malformed, s.Fragments)
	fmt.Fprintf(w, "connections %d (evicted %d, port reuse %d, ignored packets %d), gaps %d (%d bytes), bad checksums %d, filtered %d\n",
		s.Conns, s.ConnsEvicted, s.PortReuse, s.Ignored, s.Gaps, s.GapBytes, s.BadChecksum, s.Filtered)
}
