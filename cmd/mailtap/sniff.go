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
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
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
	lc, err := live.Open(cfg)
	if errors.Is(err, live.ErrTooManyPorts) {
		fmt.Fprintf(stderr, "mailtap sniff: %v; filtering ports after capture instead\n", err)
		cfg.Filter = live.FilterTCP
		lc, err = live.Open(cfg)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", sf.iface, err)
	}
	defer lc.Close()

	out, err := df.openOutput(stdout)
	if err != nil {
		return err
	}
	defer func() { out.close() }()
	if err := df.withExtraction(&o, out); err != nil {
		return err
	}
	sink := &countingSink{s: out.sink, sessions: map[decode.Proto]uint64{}}

	var pw *pcapWriter
	if sf.write != "" {
		pw, err = newPcapWriter(sf.write, sf.iface, lc.LinkType(), lc.Snaplen())
		if err != nil {
			return err
		}
	}

	var ids atomic.Uint64
	workers := make([]*sniffWorker, len(lc.Handles()))
	for i, h := range lc.Handles() {
		workers[i] = &sniffWorker{h: h, eng: sniffEngine(df, o, sink, &ids), pw: pw}
	}
	start := time.Now()
	fmt.Fprintf(stderr, "mailtap sniff: capturing on %s (%s, %d worker(s), filter: %s); Ctrl-C to stop\n",
		sf.iface, lc.LinkType(), len(workers), filterDesc(cfg))

	var wg sync.WaitGroup
	errs := make(chan error, len(workers))
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.run(); err != nil {
				errs <- err
				lc.Interrupt()
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	var timeout <-chan time.Time
	if sf.duration > 0 {
		t := time.NewTimer(sf.duration)
		defer t.Stop()
		timeout = t.C
	}
	var every <-chan time.Time
	if sf.every > 0 {
		t := time.NewTicker(sf.every)
		defer t.Stop()
		every = t.C
	}
	flush := time.NewTicker(250 * time.Millisecond)
	defer flush.Stop()
	var last snapshot
	stopC := ctx.Done()
loop:
	for {
		select {
		case <-stopC:
		case <-timeout:
		case <-done:
			break loop
		case <-flush.C:
			sink.flush(out.flush)
			continue
		case <-every:
			s := takeSnapshot(workers, lc, sink)
			printPeriodic(stderr, s, last, time.Since(start))
			last = s
			continue
		}
		// Stop: the workers read what is left in their rings, close
		// every connection and return.
		stopC, timeout = nil, nil
		lc.Interrupt()
	}
	var runErr error
	select {
	case runErr = <-errs:
	default:
	}
	sink.flush(out.flush)
	if pw != nil {
		if err := pw.close(lc.Stats(), start); err != nil && runErr == nil {
			runErr = err
		}
	}
	printSummary(stderr, sf.iface, takeSnapshot(workers, lc, sink), time.Since(start))
	if runErr != nil {
		return runErr
	}
	if err := sink.flush(out.flush); err != nil {
		return err
	}
	return out.close()
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

// sniffEngine builds one single-goroutine engine, as decodeFlags.engine
// does for read, with session ids drawn from one counter shared by every
// worker (frame numbers are per socket, so they would collide).
func sniffEngine(df *decodeFlags, o decode.Options, s decode.Sink, ids *atomic.Uint64) *capture.Engine {
	disp := df.dispatcher(o, s)
	cfg := df.captureConfig(disp)
	cfg.PacketFilter = nil // the kernel runs --bpf
	cfg.NextID = func() uint64 { return ids.Add(1) }
	return capture.New(cfg, disp)
}

// sniffWorker reads one socket into one engine on its own goroutine.
type sniffWorker struct {
	h   *live.Handle
	eng *capture.Engine
	pw  *pcapWriter

	mu    sync.Mutex
	stats capture.Stats // copy of eng.Stats(), for the other goroutines
}

const tickEvery = time.Second

func (w *sniffWorker) run() error {
	lastTick := time.Now()
	var n int
	var err error
	for {
		var data []byte
		var ci gopacket.CaptureInfo
		var link layers.LinkType
		data, ci, link, err = w.h.Next(tickEvery)
		if err == nil {
			if w.pw != nil {
				w.pw.write(ci, data)
			}
			w.eng.Packet(data, ci, link)
			if n++; n&255 != 0 {
				continue
			}
		} else if !errors.Is(err, live.ErrTimeout) {
			break
		}
		if now := time.Now(); now.Sub(lastTick) >= tickEvery {
			w.eng.Tick(now)
			lastTick = now
		}
		w.publish()
	}
	w.eng.Finish()
	w.publish()
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

func (w *sniffWorker) publish() {
	s := w.eng.Stats()
	w.mu.Lock()
	w.stats = s
	w.mu.Unlock()
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

// pcapWriter writes the packets of every worker to one pcapng file.
type pcapWriter struct {
	mu   sync.Mutex
	f    *os.File
	w    *pcapgo.NgWriter
	err  error
	name string
}

func newPcapWriter(path, iface string, link layers.LinkType, snaplen int) (*pcapWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	intf := pcapgo.DefaultNgInterface
	intf.Name = iface
	intf.LinkType = link
	intf.SnapLength = uint32(snaplen)
	opts := pcapgo.DefaultNgWriterOptions
	opts.SectionInfo.Application = "mailtap " + version
	w, err := pcapgo.NewNgWriterInterface(f, intf, opts)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &pcapWriter{f: f, w: w, name: path}, nil
}

func (p *pcapWriter) write(ci gopacket.CaptureInfo, data []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return
	}
	ci.InterfaceIndex = 0
	p.err = p.w.WritePacket(ci, data)
}

// close writes the kernel counters as interface statistics and closes the
// file.
func (p *pcapWriter) close(st live.Stats, start time.Time) error {
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

// snapshot is what the summary and periodic lines print.
type snapshot struct {
	eng      capture.Stats
	live     live.Stats
	sessions map[decode.Proto]uint64
	mails    uint64
	pop3     uint64
	imap     uint64
}

func takeSnapshot(ws []*sniffWorker, lc *live.Capture, c *countingSink) snapshot {
	var s snapshot
	for _, w := range ws {
		w.mu.Lock()
		st := w.stats
		w.mu.Unlock()
		s.eng.Packets += st.Packets
		s.eng.Bytes += st.Bytes
		s.eng.Conns += st.Conns
		s.eng.ConnsEvicted += st.ConnsEvicted
		s.eng.Gaps += st.Gaps
		s.eng.GapBytes += st.GapBytes
		s.eng.Malformed += st.Malformed
	}
	s.live = lc.Stats()
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
