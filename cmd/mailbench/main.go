// Command mailbench measures mailtap against tshark, tcpflow and a bare
// read loop on the same capture files, in one run.
//
// Usage:
//
//	go run ./cmd/mailbench                       # generate 2 × 1 GB captures in a temp dir, time every tool
//	go run ./cmd/mailbench --size 4GB --captures mtu
//	go run ./cmd/mailbench capture.pcap          # time the tools on your own capture
//
// It generates mixed captures with capture/synth (many concurrent SMTP,
// POP3 and IMAP sessions, messages from 1 KB to 20 MB): one with 1500-byte
// MTU segments (MSS 1460) and one with 64 KiB loopback-sized segments. It
// builds mailtap, then runs, one after the other on each file: cat, the
// bare read loop (pcapgo + DecodingLayerParser, in a child of its own),
// the same loop with gopacket's TCP reassembly and then also SHA-256 of
// every reassembled byte (the work no decoder keeping the JSON contract on
// gopacket can skip: what is left above it is protocol, MIME and JSON),
// mailtap read with 1 worker and with N, tshark with its SMTP/POP/IMAP
// dissectors, and tcpflow. For each it reports wall time, MB/s, packets/s,
// CPU time and peak RSS (the child's rusage), and the ratios. Tools that
// are not installed are reported as skipped. Generated files are deleted
// at the end unless --keep is given.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

func main() {
	// Children of their own, so that the process doing the timing stays
	// small: Linux charges a child's peak RSS with its parent's at exec
	// (os/exec starts children with CLONE_VM), so a big parent would
	// inflate every figure.
	if len(os.Args) == 3 && os.Args[1] == "floor" {
		c, err := floor(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, "mailbench floor:", err)
			os.Exit(1)
		}
		json.NewEncoder(os.Stdout).Encode(c)
		return
	}
	if len(os.Args) == 3 && (os.Args[1] == "required" || os.Args[1] == "reassembly") {
		c, err := required(os.Args[2], os.Args[1] == "required")
		if err != nil {
			fmt.Fprintln(os.Stderr, "mailbench "+os.Args[1]+":", err)
			os.Exit(1)
		}
		json.NewEncoder(os.Stdout).Encode(c)
		return
	}
	if len(os.Args) == 3 && os.Args[1] == "gen" {
		var spec genSpec
		if err := json.Unmarshal([]byte(os.Args[2]), &spec); err != nil {
			fmt.Fprintln(os.Stderr, "mailbench gen:", err)
			os.Exit(2)
		}
		spec.stderr = os.Stderr
		res, err := generate(spec)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mailbench gen:", err)
			os.Exit(1)
		}
		json.NewEncoder(os.Stdout).Encode(res)
		return
	}
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mailbench:", err)
		os.Exit(1)
	}
}

type options struct {
	dir      string
	size     string
	captures []string
	workers  int
	keep     bool
	mailtap  string
	skip     []string
	maxMsg   string
	batch    int
	runs     int
	generate bool
}

func run(args []string, stdout, stderr io.Writer) error {
	var o options
	fs := pflag.NewFlagSet("mailbench", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.StringVar(&o.dir, "dir", "", "directory for generated captures and tool output (default: a new temp dir; never inside the repository)")
	fs.StringVar(&o.size, "size", "1GB", "size of each generated capture (e.g. 512MB, 1GB, 4GB)")
	fs.StringSliceVar(&o.captures, "captures", []string{"mtu", "lo"}, "captures to generate: mtu (1500-byte MTU, MSS 1460), lo (64 KiB segments)")
	fs.IntVar(&o.workers, "workers", runtime.NumCPU(), "workers for the multi-worker mailtap run")
	fs.BoolVar(&o.keep, "keep", false, "keep the generated captures")
	fs.StringVar(&o.mailtap, "mailtap", "", "mailtap binary to time (default: go build ./cmd/mailtap)")
	fs.StringSliceVar(&o.skip, "skip", nil, "tools to leave out: cat, floor, reassembly, required, mailtap, extract, tshark, tcpflow")
	fs.StringVar(&o.maxMsg, "max-message", "20MB", "largest generated message")
	fs.IntVar(&o.batch, "concurrent", 64, "sessions in flight at once in generated captures")
	fs.IntVar(&o.runs, "runs", 1, "run every tool this many times, alternating, and report the run of median CPU time")
	fs.BoolVar(&o.generate, "generate", false, "generate captures (--captures) also when capture files are given; the given ones are timed first")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: mailbench [flags] [capture.pcap ...]\n\nWithout files it generates captures. Flags:\n%s", fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	size, err := parseSize(o.size)
	if err != nil {
		return fmt.Errorf("--size: %w", err)
	}
	maxMsg, err := parseSize(o.maxMsg)
	if err != nil || maxMsg < 1024 {
		return fmt.Errorf("--max-message %q: want at least 1KB", o.maxMsg)
	}
	root := moduleRoot()
	if o.dir == "" {
		if o.dir, err = os.MkdirTemp("", "mailbench"); err != nil {
			return err
		}
		if !o.keep {
			defer os.RemoveAll(o.dir)
		}
	} else if root != "" && within(o.dir, root) {
		return fmt.Errorf("--dir %s is inside the repository; pick a directory outside it", o.dir)
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(filepath.Join(o.dir, "extract-out"))
	}
	skip := map[string]bool{}
	for _, s := range o.skip {
		skip[s] = true
	}

	mailtap := o.mailtap
	if mailtap == "" && !skip["mailtap"] {
		if root == "" {
			return errors.New("not inside the mailtap module: give --mailtap BINARY")
		}
		mailtap = filepath.Join(o.dir, "mailtap")
		fmt.Fprintln(stderr, "building mailtap ...")
		b := exec.Command("go", "build", "-o", mailtap, "./cmd/mailtap")
		b.Dir, b.Stdout, b.Stderr = root, stderr, stderr
		if err := b.Run(); err != nil {
			return fmt.Errorf("go build ./cmd/mailtap: %w", err)
		}
	}
	hasWorkers := false
	if mailtap != "" {
		out, _ := exec.Command(mailtap, "help", "read").CombinedOutput()
		hasWorkers = strings.Contains(string(out), "--workers")
	}

	type capFile struct {
		path string
		desc string
		gen  *genResult
		tmp  bool
	}
	var files []capFile
	for _, a := range fs.Args() {
		files = append(files, capFile{path: a, desc: "given"})
	}
	if o.runs < 1 {
		return fmt.Errorf("--runs %d: at least 1", o.runs)
	}
	if len(files) == 0 || o.generate {
		for i, name := range o.captures {
			spec := genSpec{Size: size, Seed: uint64(i + 1), Batch: o.batch, MaxMsg: int(maxMsg), stderr: stderr}
			switch name {
			case "mtu":
				spec.MSS = 1460
			case "lo":
				spec.MSS = 65483 // 64 KiB IPv4 datagrams, as TSO/GRO on lo make them
			default:
				return fmt.Errorf("--captures: unknown capture %q (mtu, lo)", name)
			}
			spec.Path = filepath.Join(o.dir, fmt.Sprintf("mixed-%s.pcap", name))
			fmt.Fprintf(stderr, "generating %s (%s, MSS %d) ...\n", spec.Path, o.size, spec.MSS)
			res, err := generateChild(spec)
			if err != nil {
				return fmt.Errorf("generate %s: %w", spec.Path, err)
			}
			files = append(files, capFile{path: spec.Path, desc: fmt.Sprintf("generated, MSS %d", spec.MSS), gen: res, tmp: !o.keep})
		}
	}

	fmt.Fprintf(stdout, "mailbench, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintln(stdout, machine())
	times := "once, one after the other"
	if o.runs > 1 {
		times = fmt.Sprintf("%d times, the tools alternating, each shown by its run of median CPU time", o.runs)
	}
	fmt.Fprintf(stdout, "\nEach tool ran %s, on the same file, read from the page cache. Peak RSS is the child's ru_maxrss;\n"+
		"Linux counts in it the RSS of the parent at exec (%.0f MB here), so small figures are upper bounds.\n", times, float64(selfHWM())/1024)
	for _, cf := range files {
		st, err := os.Stat(cf.path)
		if err != nil {
			return err
		}
		b := &bench{file: cf.path, size: st.Size(), dir: o.dir, stderr: stderr}
		fmt.Fprintf(stdout, "\n### %s (%s, %.2f GB)\n\n", filepath.Base(cf.path), cf.desc, float64(st.Size())/1e9)
		if g := cf.gen; g != nil {
			fmt.Fprintf(stdout, "Generated in %v: %d packets; sessions smtp %d, pop3 %d, imap %d; messages smtp %d, pop3 %d, imap %d (%.0f MB of messages).\n\n",
				g.Took.Round(time.Second), g.Packets, g.Sessions["smtp"], g.Sessions["pop3"], g.Sessions["imap"],
				g.Messages["smtp"], g.Messages["pop3"], g.Messages["imap"], float64(g.Payload)/1e6)
		}
		// Warm the page cache so every tool reads from memory alike.
		warm(cf.path)
		fmt.Fprintf(stdout, "Load before the runs: load average %s, CPU pressure %s (other work shares this machine; wall times stretch with it, CPU times much less).\n\n", loadavg(), cpuPressure())
		var rows []*result
		add := func(r *result) {
			rows = append(rows, r)
			fmt.Fprintf(stderr, "  %-28s %s\n", r.name, r.short())
		}
		var packets int64
		var one, many, extract, tshark *result
		var runs []*toolRun
		self, _ := os.Executable()
		if !skip["cat"] {
			runs = append(runs, &toolRun{name: "cat", tool: "cat", discard: true, cmd: func() *exec.Cmd { return exec.Command("cat", cf.path) }})
		}
		if !skip["floor"] {
			runs = append(runs, &toolRun{name: "bare read loop (floor)", cmd: func() *exec.Cmd { return exec.Command(self, "floor", cf.path) },
				post: func(r *result) {
					var fc floorCounts
					if json.Unmarshal([]byte(r.firstLine), &fc) == nil {
						packets = fc.Packets
						r.note = fmt.Sprintf("%d packets, %d TCP", fc.Packets, fc.TCP)
					}
				}})
		}
		for _, mode := range []string{"reassembly", "required"} {
			if skip[mode] {
				continue
			}
			name := map[string]string{"reassembly": "read loop + gopacket reassembly", "required": "+ SHA-256 of every byte (required work)"}[mode]
			runs = append(runs, &toolRun{name: name, cmd: func() *exec.Cmd { return exec.Command(self, mode, cf.path) },
				post: func(r *result) {
					var rc requiredCounts
					if json.Unmarshal([]byte(r.firstLine), &rc) == nil {
						r.note = fmt.Sprintf("%d streams, %.0f MB reassembled", rc.Streams, float64(rc.Reassembled)/1e6)
					}
				}})
		}
		if mailtap != "" {
			args := []string{"read", cf.path}
			if hasWorkers {
				args = []string{"read", "--workers", "1", cf.path}
			}
			note := func(r *result) { r.note = r.records.String() + cf.gen.check(r.records) }
			runs = append(runs, &toolRun{name: "mailtap read, 1 worker", cmd: func() *exec.Cmd { return exec.Command(mailtap, args...) }, post: note, keep: &one})
			if hasWorkers && o.workers > 1 {
				runs = append(runs, &toolRun{name: fmt.Sprintf("mailtap read, %d workers", o.workers),
					cmd:  func() *exec.Cmd { return exec.Command(mailtap, "read", "--workers", strconv.Itoa(o.workers), cf.path) },
					post: note, keep: &many})
			} else if !hasWorkers {
				add(&result{name: "mailtap read, N workers", skipped: "mailtap read has no --workers flag yet"})
			}
			if !skip["extract"] {
				// Each run extracts into a new directory, and none is
				// removed until the end (with --dir): on ext4, creating
				// files shortly after deleting as many in the same block
				// group costs several times more kernel time (the
				// kernel steps over recently freed inodes), which would
				// measure the previous run's clean-up, not extraction.
				// (They go at the end, with o.dir or on their own.)
				var dir string
				nrun := 0
				runs = append(runs, &toolRun{name: "mailtap read --extract, 1 worker",
					cmd: func() *exec.Cmd {
						nrun++
						dir = filepath.Join(o.dir, "extract-out", fmt.Sprintf("%s-%d", filepath.Base(cf.path), nrun))
						os.MkdirAll(filepath.Dir(dir), 0o755) // (an error shows in the run)
						return exec.Command(mailtap, append(args[:len(args)-1:len(args)-1], "--extract", dir, cf.path)...)
					},
					post: func(r *result) {
						n, sz := dirSize(dir)
						r.note = r.records.String() + fmt.Sprintf("; %d files, %.0f MB written on %s", n, float64(sz)/1e6, fsType(dir))
					}, keep: &extract})
			}
		}
		if !skip["tshark"] {
			runs = append(runs, &toolRun{name: "tshark (smtp||pop||imap)", tool: "tshark", cmd: func() *exec.Cmd {
				return exec.Command("tshark", "-r", cf.path,
					"-Y", "smtp || pop || imap", "-T", "fields", "-e", "frame.number", "-e", "smtp.req.command",
					"-e", "smtp.response.code", "-e", "pop.request.command", "-e", "imap.request")
			}, post: func(r *result) { r.note = fmt.Sprintf("%d lines", r.lines) }, keep: &tshark})
		}
		if !skip["tcpflow"] {
			out := filepath.Join(o.dir, "tcpflow-out")
			runs = append(runs, &toolRun{name: "tcpflow", tool: "tcpflow", discard: true, cmd: func() *exec.Cmd {
				os.RemoveAll(out)
				return exec.Command("tcpflow", "-r", cf.path, "-o", out)
			}, post: func(r *result) {
				n, sz := dirSize(out)
				r.note = fmt.Sprintf("%d files, %.0f MB written", n, float64(sz)/1e6)
				os.RemoveAll(out)
			}})
		}
		// Alternate the tools run after run, so that a change in the
		// machine's load spreads over all of them.
		for i := 0; i < o.runs; i++ {
			for _, rn := range runs {
				r := b.measure(rn.name, rn.tool, rn.discard, rn.cmd())
				if r.err == nil && r.skipped == "" && rn.post != nil {
					rn.post(r)
				}
				if o.runs > 1 {
					fmt.Fprintf(stderr, "  run %d: %-28s CPU %.2f s  %s\n", i+1, r.name, r.cpu.Seconds(), r.short())
				}
				rn.results = append(rn.results, r)
			}
		}
		for _, rn := range runs {
			r := rn.median()
			if rn.keep != nil {
				*rn.keep = r
			}
			add(r)
		}
		printTable(stdout, rows, b.size, packets)
		printRatios(stdout, rows, one, many, extract, tshark)
		if cf.tmp {
			os.Remove(cf.path)
		}
	}
	return nil
}

// toolRun is a tool to time on a capture: cmd makes a fresh command for each
// run, post notes what it printed or wrote, keep receives the median run.
type toolRun struct {
	name    string
	tool    string
	discard bool
	cmd     func() *exec.Cmd
	post    func(*result)
	keep    **result
	results []*result
}

// median is the run of median CPU time (the lower of the two middle ones
// for an even count), or the first that failed or was skipped.
func (rn *toolRun) median() *result {
	ok := make([]*result, 0, len(rn.results))
	for _, r := range rn.results {
		if r.err != nil || r.skipped != "" {
			return r
		}
		ok = append(ok, r)
	}
	sort.Slice(ok, func(i, j int) bool { return ok[i].cpu < ok[j].cpu })
	return ok[(len(ok)-1)/2]
}

// result is one timed run.
type result struct {
	name      string
	wall      time.Duration
	cpu       time.Duration
	rssKB     int64
	err       error
	skipped   string
	note      string
	lines     int64
	firstLine string
	records   recordCounts
}

func (r *result) short() string {
	switch {
	case r.skipped != "":
		return "skipped: " + r.skipped
	case r.err != nil:
		return "failed: " + r.err.Error()
	}
	return fmt.Sprintf("%8.2fs  %6.0f MB RSS  %s", r.wall.Seconds(), float64(r.rssKB)/1024, r.note)
}

// recordCounts counts mailtap's JSON lines by type.
type recordCounts struct {
	total, sessions, mails, pop3, imap int64
}

func (c recordCounts) String() string {
	return fmt.Sprintf("%d records: %d sessions, %d smtp.mail, %d pop3.message, %d imap.message", c.total, c.sessions, c.mails, c.pop3, c.imap)
}

func (c *recordCounts) add(line string) {
	c.total++
	switch {
	case strings.Contains(line, `"type":"session"`):
		c.sessions++
	case strings.Contains(line, `"type":"smtp.mail"`):
		c.mails++
	case strings.Contains(line, `"type":"pop3.message"`):
		c.pop3++
	case strings.Contains(line, `"type":"imap.message"`):
		c.imap++
	}
}

type bench struct {
	file   string
	size   int64
	dir    string
	stderr io.Writer
}

// measure runs cmd with its stdout read line by line (or sent to
// /dev/null with discard), and takes wall time, CPU time and peak RSS from
// the child's rusage. tool, when set, is looked up in PATH first and the
// run is skipped when it is missing.
func (b *bench) measure(name, tool string, discard bool, cmd *exec.Cmd) *result {
	r := &result{name: name}
	if tool != "" {
		if _, err := exec.LookPath(tool); err != nil {
			r.skipped = tool + " is not installed"
			return r
		}
	}
	var errBuf strings.Builder
	cmd.Stderr = &limitedWriter{w: &errBuf, n: 4096}
	var pipe io.ReadCloser
	if !discard {
		var err error
		if pipe, err = cmd.StdoutPipe(); err != nil {
			r.err = err
			return r
		}
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		r.err = err
		return r
	}
	if pipe != nil {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			line := sc.Text()
			if r.lines == 0 {
				r.firstLine = line
			}
			r.lines++
			r.records.add(line)
		}
		io.Copy(io.Discard, pipe)
	}
	err := cmd.Wait()
	r.wall = time.Since(start)
	if ps := cmd.ProcessState; ps != nil {
		r.cpu = ps.UserTime() + ps.SystemTime()
		r.rssKB = maxRSSKB(ps)
	}
	if err != nil {
		r.err = fmt.Errorf("%v: %s", err, strings.TrimSpace(errBuf.String()))
	}
	return r
}

type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

func printTable(w io.Writer, rows []*result, size, packets int64) {
	fmt.Fprintln(w, "| tool | wall | MB/s (wall) | packets/s (wall) | CPU (user+sys) | MB/s (CPU) | peak RSS | output |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---|")
	for _, r := range rows {
		switch {
		case r.skipped != "":
			fmt.Fprintf(w, "| %s | – | – | – | – | – | – | skipped: %s |\n", r.name, r.skipped)
			continue
		case r.err != nil:
			fmt.Fprintf(w, "| %s | – | – | – | – | – | – | failed: %s |\n", r.name, oneLine(r.err.Error()))
			continue
		}
		secs := r.wall.Seconds()
		pps := "–"
		if packets > 0 {
			pps = fmt.Sprintf("%.0f k", float64(packets)/secs/1e3)
		}
		cpuRate := "–"
		if c := r.cpu.Seconds(); c > 0 {
			cpuRate = fmt.Sprintf("%.0f", float64(size)/1e6/c)
		}
		fmt.Fprintf(w, "| %s | %.2f s | %.0f | %s | %.2f s | %s | %.0f MB | %s |\n",
			r.name, secs, float64(size)/1e6/secs, pps, r.cpu.Seconds(), cpuRate, float64(r.rssKB)/1024, r.note)
	}
}

func printRatios(w io.Writer, rows []*result, one, many, extract, tshark *result) {
	ok := func(r *result) bool { return r != nil && r.err == nil && r.skipped == "" && r.wall > 0 && r.cpu > 0 }
	var floor, required *result
	for _, r := range rows {
		if strings.HasPrefix(r.name, "bare read loop") {
			floor = r
		}
		if strings.HasSuffix(r.name, "(required work)") {
			required = r
		}
	}
	fmt.Fprintln(w)
	ratio := func(label string, a, b *result, target string) {
		if ok(a) && ok(b) {
			fmt.Fprintf(w, "- %s: %.1f× by CPU time, %.1f× by wall time %s\n", label,
				a.cpu.Seconds()/b.cpu.Seconds(), a.wall.Seconds()/b.wall.Seconds(), target)
		}
	}
	ratio("tshark ÷ mailtap (1 worker)", tshark, one, "(targets of issue 15, by CPU time: ≥ 30× on MTU-1500 captures, ≥ 15× on 64 KiB ones)")
	ratio("tshark ÷ mailtap (N workers)", tshark, many, "")
	ratio("mailtap (1 worker) ÷ bare read loop", one, floor, "(target ≤ 6× by CPU time)")
	ratio("mailtap (N workers) ÷ bare read loop", many, floor, "")
	if ok(required) {
		ratio("required work (read, reassembly, SHA-256) ÷ bare read loop", required, floor, "(what 6× leaves to protocol, MIME and JSON is the rest)")
		ratio("tshark ÷ required work", tshark, required, "(the most any decoder keeping the contract could reach against tshark)")
	}
	ratio("mailtap --extract ÷ mailtap read (1 worker)", extract, one, "(target ≤ 1.3×)")
	if ok(one) && ok(many) {
		fmt.Fprintf(w, "- speed-up from 1 to N workers: %.2f× by wall time (target ≥ 1.8× for 2 workers on an idle machine, never below 1× on a busy one; CPU time %.2f s vs %.2f s)\n",
			one.wall.Seconds()/many.wall.Seconds(), one.cpu.Seconds(), many.cpu.Seconds())
	}
	for _, r := range []*result{one, many, extract} {
		if ok(r) {
			fmt.Fprintf(w, "- %s peak RSS: %.0f MB (target < 120 MB at 4 GB)\n", r.name, float64(r.rssKB)/1024)
		}
	}
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

// machine describes the host: CPUs, CPU model, memory, kernel, Go.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := "?"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				mem = fmt.Sprintf("%.1f GB", float64(kb)/1024/1024)
			}
		}
	}
	kernel := "?"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("Machine: %d CPUs (nproc), %s, %s RAM, Linux %s, %s.", runtime.NumCPU(), model, mem, kernel, runtime.Version())
}

// generateChild runs generate in a child process (see main).
func generateChild(spec genSpec) (*genResult, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	arg, _ := json.Marshal(spec)
	cmd := exec.Command(self, "gen", string(arg))
	cmd.Stderr = spec.stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, err
	}
	var res genResult
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// cpuPressure is the share of time some task waited for a CPU (PSI avg10).
func cpuPressure() string {
	b, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return "?"
	}
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, "avg10="); ok {
			return v + "%"
		}
	}
	return "?"
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// check compares mailtap's record counts with what was generated.
func (g *genResult) check(c recordCounts) string {
	if g == nil {
		return ""
	}
	sessions := int64(g.Sessions["smtp"] + g.Sessions["pop3"] + g.Sessions["imap"])
	if c.sessions == sessions && c.mails == int64(g.Messages["smtp"]) && c.pop3 == int64(g.Messages["pop3"]) && c.imap == int64(g.Messages["imap"]) {
		return " (all generated)"
	}
	return fmt.Sprintf(" (MISMATCH: generated %d sessions, %d/%d/%d messages)", sessions, g.Messages["smtp"], g.Messages["pop3"], g.Messages["imap"])
}

// selfHWM is this process's peak RSS in KB (VmHWM).
func selfHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

// warm reads a file once so that it sits in the page cache.
func warm(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	io.Copy(io.Discard, f)
}

func dirSize(dir string) (files int, bytes int64) {
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				files++
				bytes += info.Size()
			}
		}
		return nil
	})
	return files, bytes
}

// parseSize reads 1GB, 512MB, 64KB or a plain number of bytes (powers of
// ten: a "1GB" capture holds 10^9 bytes).
func parseSize(s string) (int64, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"G", 1e9}, {"M", 1e6}, {"K", 1e3}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.m
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return int64(f * float64(mult)), nil
}

// moduleRoot is the directory of the enclosing go.mod, or "".
func moduleRoot() string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return ""
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return ""
	}
	return filepath.Dir(gomod)
}

// within reports whether path is root or below it.
func within(path, root string) bool {
	a, err1 := filepath.Abs(path)
	b, err2 := filepath.Abs(root)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(b, a)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
