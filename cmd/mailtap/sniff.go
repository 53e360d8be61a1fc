package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/mailtap/mailtap/capture"
	"github.com/mailtap/mailtap/capture/live"
	"github.com/mailtap/mailtap/decode"
)

// sniffFlags are the flags of "mailtap sniff" beyond the decode flags.
type sniffFlags struct {
	iface     string
	workers   int
	bpfPorts  bool
	snaplen   int
	noPromisc bool
	write     string
	every     time.Duration
	duration  time.Duration
	ringMB    int
	rotate    rotateFlags
}

// rotateFlags split -w like tcpdump's -G, -C and -W.
type rotateFlags struct {
	seconds int
	bytes   int64
	files   int
}

func (r rotateFlags) rotation(write string) (live.Rotation, error) {
	switch {
	case r.seconds < 0 || r.bytes < 0 || r.files < 0:
		return live.Rotation{}, usagef("--rotate-seconds, --rotate-bytes and --rotate-files take positive numbers")
	case write == "" && (r.seconds > 0 || r.bytes > 0 || r.files > 0):
		return live.Rotation{}, usagef("--rotate-* rotate the -w file: give -w FILE")
	case r.files > 0 && r.seconds == 0 && r.bytes == 0:
		return live.Rotation{}, usagef("--rotate-files %d: with --rotate-seconds or --rotate-bytes (it sets how many files the ring keeps)", r.files)
	}
	return live.Rotation{Every: time.Duration(r.seconds) * time.Second, Bytes: r.bytes, Files: r.files}, nil
}

func sniffCommand() *command {
	var sf *sniffFlags
	var df *decodeFlags
	return &command{
		name:    "sniff",
		summary: "decode live traffic from a network interface (Linux, root or CAP_NET_RAW)",
		usage:   "mailtap sniff -i IFACE|any [flags]",
		flags: func() *pflag.FlagSet {
			var fs *pflag.FlagSet
			fs, sf, df = sniffFlagSet()
			return fs
		},
		run: func(_ *pflag.FlagSet, args []string, stdout, stderr io.Writer) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q (the interface goes in -i)", args[0])
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return sniff(ctx, sf, df, stdout, stderr)
		},
	}
}

// sniffFlagSet returns sniff's flags bound to fresh flag structs.
func sniffFlagSet() (*pflag.FlagSet, *sniffFlags, *decodeFlags) {
	sf, df := &sniffFlags{}, &decodeFlags{}
	fs := pflag.NewFlagSet("sniff", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.StringVarP(&sf.iface, "interface", "i", "", "interface to capture on, or any")
	fs.IntVar(&sf.workers, "workers", runtime.NumCPU(), "capture sockets, each with its own decoder (the kernel spreads connections over them by a symmetric flow hash)")
	fs.BoolVar(&sf.bpfPorts, "bpf-ports", true, "kernel filter: only TCP on the mail ports (--ports, or --port-filter when given); --bpf-ports=false keeps every TCP packet")
	fs.IntVar(&sf.snaplen, "snaplen", 262144, "bytes kept of each packet")
	fs.BoolVar(&sf.noPromisc, "no-promisc", false, "do not put the interface in promiscuous mode")
	fs.StringVarP(&sf.write, "write", "w", "", "also write the packets seen to this pcapng file")
	fs.IntVar(&sf.rotate.seconds, "rotate-seconds", 0, "start a new -w file every N seconds of capture time (tcpdump -G): FILE, FILE1, FILE2 ...")
	fs.Int64Var(&sf.rotate.bytes, "rotate-bytes", 0, "start a new -w file before one would pass N bytes (tcpdump -C, in bytes)")
	fs.IntVar(&sf.rotate.files, "rotate-files", 0, "keep a ring of N -w files, FILE0 ... FILE<N-1>, overwriting the oldest (tcpdump -W)")
	fs.DurationVar(&sf.every, "stats", 0, "print statistics on stderr this often, e.g. --stats 10s (0: only the summary at the end)")
	fs.DurationVar(&sf.duration, "duration", 0, "stop after this long (0: on SIGINT or SIGTERM)")
	fs.IntVar(&sf.ringMB, "ring-mb", 32, "kernel ring buffer per worker, in MiB")
	// The decode flags shared with read, except those sniff defines
	// itself (--workers, --stats).
	shared := pflag.NewFlagSet("decode", pflag.ContinueOnError)
	df.register(shared)
	shared.VisitAll(func(f *pflag.Flag) {
		if fs.Lookup(f.Name) == nil && (f.Shorthand == "" || fs.ShorthandLookup(f.Shorthand) == nil) {
			fs.AddFlag(f)
		}
	})
	return fs, sf, df
}

// sniff captures until ctx is done or the duration has passed, then
// closes every connection and prints a summary on stderr.
func sniff(ctx context.Context, sf *sniffFlags, df *decodeFlags, stdout, stderr io.Writer) error {
	if sf.iface == "" {
		return usagef("no interface given (-i IFACE, or -i any)")
	}
	if sf.workers < 1 {
		return usagef("--workers %d: at least 1", sf.workers)
	}
	if sf.snaplen < 64 || sf.snaplen > 262144 {
		return usagef("--snaplen %d: between 64 and 262144", sf.snaplen)
	}
	if sf.ringMB < 4 {
		return usagef("--ring-mb %d: at least 4", sf.ringMB)
	}
	rot, err := sf.rotate.rotation(sf.write)
	if err != nil {
		return err
	}
	o, err := df.options()
	if err != nil {
		return err
	}
	cfg := live.Config{
		Interface:   sf.iface,
		Workers:     sf.workers,
		Snaplen:     sf.snaplen,
		Promiscuous: !sf.noPromisc && sf.iface != "any",
		Filter:      live.FilterTCP,
		RingBytes:   sf.ringMB << 20,
	}
	if sf.bpfPorts {
		cfg.Filter = live.FilterPorts
		cfg.Ports = sniffPorts(df)
	}
	if df.bpf != "" {
		// A --bpf expression replaces the port filter, in the kernel.
		cfg.Filter = live.FilterExpr
		cfg.Expr = df.bpf
	}
	lc, fellBack, err := openLive(cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", sf.iface, err)
	}
	defer lc.Close()
	if fellBack {
		fmt.Fprintf(stderr, "mailtap sniff: %v; filtering ports after capture instead\n", live.ErrTooManyPorts)
		cfg.Filter = live.FilterTCP
	}

	out, err := df.openOutput(stdout)
	if err != nil {
		return err
	}
	defer func() { out.close() }()
	if err := df.withExtraction(&o, out); err != nil {
		return err
	}
	sink := &countingSink{s: out.sink, sessions: map[decode.Proto]uint64{}}
	df.tls.goLive(ctx)
	disp := df.dispatcher(o, sink)

	fmt.Fprintf(stderr, "mailtap sniff: capturing on %s (%s, %d worker(s), filter: %s); Ctrl-C to stop\n",
		sf.iface, lc.LinkType(), len(lc.Handles()), filterDesc(cfg))
	if sf.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, sf.duration)
		defer cancel()
	}
	// Every 250 ms: the output is flushed, and every --stats a line
	// printed.
	var last snapshot
	var lastPrint time.Duration
	st, runErr := live.Run(ctx, lc, live.RunOptions{
		Engine:      df.captureConfig(disp),
		Factory:     disp,
		Write:       sf.write,
		Rotate:      rot,
		Application: "mailtap " + version,
		Every:       250 * time.Millisecond,
		Periodic: func(rs live.RunStats) {
			sink.flush(out.flush)
			if sf.every > 0 && rs.Elapsed-lastPrint >= sf.every {
				s := takeSnapshot(rs, sink)
				printPeriodic(stderr, s, last, rs.Elapsed)
				if out.stats != nil {
					fmt.Fprintf(stderr, "mailtap sniff: %s\n", out.stats())
				}
				last, lastPrint = s, rs.Elapsed
			}
		},
	})
	sink.flush(out.flush)
	printSummary(stderr, sf.iface, takeSnapshot(st, sink), st.Elapsed)
	if out.stats != nil {
		// A publishing sink: wait for its acks, then say what it did.
		// Records it could not deliver fail the run.
		if cerr := out.close(); cerr != nil && runErr == nil {
			runErr = cerr
		}
		fmt.Fprintf(stderr, "  %s\n", out.stats())
	}
	if runErr != nil {
		return runErr
	}
	if err := sink.flush(out.flush); err != nil {
		return err
	}
	return out.close()
}

// openLive opens the sockets of cfg; when the kernel filter cannot hold
// every port (ErrTooManyPorts) it keeps every TCP packet instead and says
// so (the engine still filters by --port-filter).
func openLive(cfg live.Config) (lc *live.Capture, fellBack bool, err error) {
	lc, err = live.Open(cfg)
	if errors.Is(err, live.ErrTooManyPorts) {
		cfg.Filter = live.FilterTCP
		lc, err = live.Open(cfg)
		fellBack = err == nil
	}
	return lc, fellBack, err
}

// sniffPorts are the ports of the kernel filter: --port-filter when given,
// else every server port of the port map.
func sniffPorts(df *decodeFlags) []uint16 {
	var ps []uint16
	if len(df.portFilter) > 0 {
		for _, p := range df.portFilter {
			ps = append(ps, uint16(p))
		}
		return ps
	}
	for p := range df.ports.ports {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps
}

func filterDesc(cfg live.Config) string {
	switch cfg.Filter {
	case live.FilterPorts:
		var s []string
		for _, p := range cfg.Ports {
			s = append(s, fmt.Sprint(p))
		}
		return "tcp port " + strings.Join(s, ",")
	case live.FilterTCP:
		return "tcp"
	case live.FilterExpr:
		return fmt.Sprintf("%q", cfg.Expr)
	}
	return "none"
}

// countingSink serialises Emit from the workers and counts what passes.
type countingSink struct {
	mu       sync.Mutex
	s        decode.Sink
	sessions map[decode.Proto]uint64
	mails    uint64 // smtp.mail
	pop3     uint64 // pop3.message
	imap     uint64 // imap.message
}

func (c *countingSink) Emit(r decode.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := r.Head()
	switch h.Type {
	case decode.TypeSession:
		c.sessions[h.Proto]++
	case decode.TypeSMTPMail:
		c.mails++
	case decode.TypePOP3Message:
		c.pop3++
	case decode.TypeIMAPMessage:
		c.imap++
	}
	c.s.Emit(r)
}

func (c *countingSink) flush(f func() error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return f()
}

// snapshot is what the summary and periodic lines print.
type snapshot struct {
	eng      capture.Stats
	live     live.Stats
	sessions map[decode.Proto]uint64
	mails    uint64
	pop3     uint64
	imap     uint64
}

func takeSnapshot(rs live.RunStats, c *countingSink) snapshot {
	s := snapshot{eng: rs.Engine, live: rs.Kernel}
	c.mu.Lock()
	s.sessions = map[decode.Proto]uint64{}
	for k, v := range c.sessions {
		s.sessions[k] = v
	}
	s.mails, s.pop3, s.imap = c.mails, c.pop3, c.imap
	c.mu.Unlock()
	return s
}

func (s snapshot) sessionList() string {
	var parts []string
	var total uint64
	for _, p := range []decode.Proto{decode.ProtoSMTP, decode.ProtoPOP3, decode.ProtoIMAP} {
		parts = append(parts, fmt.Sprintf("%s %d", p, s.sessions[p]))
		total += s.sessions[p]
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}

func printPeriodic(w io.Writer, s, last snapshot, elapsed time.Duration) {
	fmt.Fprintf(w, "mailtap sniff: %s: %d packets (%d new), %s; sessions %s; mails %d, pop3 messages %d, imap messages %d; kernel drops %d\n",
		elapsed.Round(time.Second), s.live.Packets, s.live.Packets-last.live.Packets, mb(s.live.Bytes),
		s.sessionList(), s.mails, s.pop3, s.imap, s.live.Drops)
}

func printSummary(w io.Writer, iface string, s snapshot, elapsed time.Duration) {
	fmt.Fprintf(w, "mailtap sniff: %s on %s: %d packets, %s\n", elapsed.Round(time.Millisecond), iface, s.live.Packets, mb(s.live.Bytes))
	fmt.Fprintf(w, "  sessions %s\n", s.sessionList())
	fmt.Fprintf(w, "  transactions %d (smtp mails %d, pop3 messages %d, imap messages %d)\n", s.mails+s.pop3+s.imap, s.mails, s.pop3, s.imap)
	fmt.Fprintf(w, "  kernel: %d packets passed the filter, %d dropped (ring full %d times)\n", s.live.Received, s.live.Drops, s.live.Freezes)
	fmt.Fprintf(w, "  mailtap: %d dropped, %d cut by the snaplen, %d malformed; reassembly gaps %d (%d bytes), connections evicted %d\n",
		s.live.Skipped, s.live.Truncated, s.eng.Malformed, s.eng.Gaps, s.eng.GapBytes, s.eng.ConnsEvicted)
}

func mb(n uint64) string {
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}
