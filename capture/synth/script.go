package synth

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Script is a capture described by a transcript file. The format is line
// based:
//
//	# First comment lines: the description (shown by pcapgen --list).
//	@capture link=ethernet out=smtp-basic.pcap,gen-smtp-gz.pcap.gz
//	@conn client=192.0.2.10:49152 server=198.51.100.25:25 start=2025-03-03T09:30:00Z
//	S: 220 mail.example.net ESMTP Postfix
//	C: EHLO client.example.org
//	@step split=6 reorder=0
//	C: MAIL FROM:<a@example.org>
//	C~ "raw bytes, Go-quoted, no CRLF added\n"
//	@tls client hello sni=mail.example.com
//	@close server
//
// "C: text" and "S: text" are lines sent by the client or server with CRLF
// appended; consecutive lines of one side form one write (one step), so
// pipelined commands are consecutive C: lines. "C~"/"S~" add a Go-quoted
// string as is. A directive or a change of side ends the write.
//
// Directives:
//
//	@capture link=ethernet|sll|sll2|null|raw out=NAME[,NAME...]
//	@conn client=ADDR:PORT server=ADDR:PORT [start=RFC3339] [mss=N] [vlan=N]
//	      [midstream] [only=client|server] [offload=client|server]
//	      [gap=D] [think=D] [rto=D]
//	      [client_isn=N] [server_isn=N]
//	@step [split=N,N..] [segsize=N] [delay=D] [reorder=I,..] [retransmit=I,..]
//	      [resend=OFF:LEN,..] [drop=I,..] [dup=I,..] [frag=I:SIZE[:rev],..]
//	      (options for the next write)
//	@tls client|server hello [sni=NAME] | @tls client|server appdata n=N [seed=S]
//	@tls server serverhello n=N [seed=S]
//	@wait D       @close client|server (FIN)       @reset client|server (RST)
type Script struct {
	Name    string   // file name without extension
	Desc    string   // the leading comment lines, joined by spaces
	Outputs []string // file names to write
	Capture *Capture
}

// LoadScript reads a transcript file.
func LoadScript(path string) (*Script, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	s, err := ParseScript(name, f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ParseScript parses a transcript; name defaults the output to
// "gen-NAME.pcap".
func ParseScript(name string, r io.Reader) (*Script, error) {
	p := &scriptParser{s: &Script{Name: name, Capture: NewCapture(LinkEthernet)}, head: true}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		p.line++
		if err := p.parseLine(strings.TrimRight(sc.Text(), "\r")); err != nil {
			return nil, fmt.Errorf("line %d: %w", p.line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := p.flush(); err != nil {
		return nil, fmt.Errorf("line %d: %w", p.line, err)
	}
	if len(p.s.Capture.conns) == 0 {
		return nil, fmt.Errorf("no @conn")
	}
	if len(p.s.Outputs) == 0 {
		p.s.Outputs = []string{"gen-" + name + ".pcap"}
	}
	return p.s, nil
}

// maxTLSBytes bounds the opaque bytes one @tls directive makes.
const maxTLSBytes = 1 << 20

type scriptParser struct {
	s    *Script
	line int
	head bool // still in the leading comment block
	conn *Conn
	dir  Dir
	buf  strings.Builder // the write being collected
	opts []StepOption    // from @step, for the next write
}

func (p *scriptParser) parseLine(l string) error {
	switch {
	case strings.HasPrefix(l, "#"):
		if p.head {
			d := strings.TrimSpace(strings.TrimPrefix(l, "#"))
			if p.s.Desc != "" && d != "" {
				p.s.Desc += " "
			}
			p.s.Desc += d
		}
		return nil
	case strings.TrimSpace(l) == "":
		p.head = p.head && p.s.Desc == ""
		return nil
	}
	p.head = false
	if strings.HasPrefix(l, "@") {
		if err := p.flush(); err != nil {
			return err
		}
		return p.directive(strings.Fields(l[1:]))
	}
	if len(l) < 2 || (l[0] != 'C' && l[0] != 'S') || (l[1] != ':' && l[1] != '~') {
		return fmt.Errorf("want \"C: \", \"S: \", \"C~ \", \"S~ \", @directive or # comment, got %.20q", l)
	}
	d := ClientSide
	if l[0] == 'S' {
		d = ServerSide
	}
	if p.conn == nil {
		return fmt.Errorf("data before @conn")
	}
	if d != p.dir {
		if err := p.flush(); err != nil {
			return err
		}
		p.dir = d
	}
	text := strings.TrimPrefix(l[2:], " ")
	if l[1] == ':' {
		p.buf.WriteString(text)
		p.buf.WriteString("\r\n")
		return nil
	}
	raw, err := strconv.Unquote(text)
	if err != nil {
		return fmt.Errorf("bad quoted string: %w", err)
	}
	p.buf.WriteString(raw)
	return nil
}

// flush scripts the collected write as one step.
func (p *scriptParser) flush() error {
	if p.buf.Len() == 0 {
		return nil
	}
	data := p.buf.String()
	p.buf.Reset()
	return p.write(p.dir, data)
}

func (p *scriptParser) write(d Dir, data string) error {
	opts := p.opts
	p.opts = nil
	if d == ClientSide {
		p.conn.Client(data, opts...)
	} else {
		p.conn.Server(data, opts...)
	}
	return p.conn.Err()
}

func (p *scriptParser) directive(f []string) error {
	if len(f) == 0 {
		return fmt.Errorf("empty directive")
	}
	name, args := f[0], f[1:]
	if name != "capture" && name != "conn" && p.conn == nil {
		return fmt.Errorf("@%s before @conn", name)
	}
	switch name {
	case "capture":
		return p.capture(args)
	case "conn":
		return p.newConn(args)
	case "step":
		return p.step(args)
	case "tls":
		return p.tls(args)
	case "wait":
		if len(args) != 1 {
			return fmt.Errorf("@wait wants one duration")
		}
		d, err := time.ParseDuration(args[0])
		if err != nil {
			return err
		}
		p.conn.Wait(d)
	case "close", "reset":
		if len(args) != 1 {
			return fmt.Errorf("@%s wants client or server", name)
		}
		d, err := parseDir(args[0])
		if err != nil {
			return err
		}
		if name == "close" {
			p.conn.Close(d)
		} else {
			p.conn.Reset(d)
		}
	default:
		return fmt.Errorf("unknown directive @%s", name)
	}
	return p.conn.Err()
}

func (p *scriptParser) capture(args []string) error {
	if len(p.s.Capture.conns) > 0 {
		return fmt.Errorf("@capture after @conn")
	}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "link":
			l, err := ParseLink(v)
			if err != nil {
				return err
			}
			p.s.Capture.Link = l
		case "out":
			for _, o := range strings.Split(v, ",") {
				if o == "" || strings.ContainsAny(o, `/\`) {
					return fmt.Errorf("bad output name %q", o)
				}
				p.s.Outputs = append(p.s.Outputs, o)
			}
		default:
			return fmt.Errorf("unknown @capture option %q", k)
		}
	}
	return nil
}

func (p *scriptParser) newConn(args []string) error {
	var client, server netip.AddrPort
	var o Options
	var err error
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "client":
			client, err = netip.ParseAddrPort(v)
		case "server":
			server, err = netip.ParseAddrPort(v)
		case "start":
			o.Start, err = time.Parse(time.RFC3339Nano, v)
		case "mss":
			o.MSS, err = strconv.Atoi(v)
		case "vlan":
			var n uint64
			n, err = strconv.ParseUint(v, 10, 12)
			o.VLAN = uint16(n)
		case "midstream":
			o.Midstream = true
		case "only":
			o.Only, err = parseDir(v)
		case "offload":
			o.Offload, err = parseDir(v)
		case "gap":
			o.Gap, err = time.ParseDuration(v)
		case "think":
			o.Think, err = time.ParseDuration(v)
		case "rto":
			o.RTO, err = time.ParseDuration(v)
		case "client_isn", "server_isn":
			var n uint64
			n, err = strconv.ParseUint(v, 10, 32)
			if k == "client_isn" {
				o.ClientISN = uint32(n)
			} else {
				o.ServerISN = uint32(n)
			}
		default:
			return fmt.Errorf("unknown @conn option %q", k)
		}
		if err != nil {
			return fmt.Errorf("@conn %s: %w", k, err)
		}
	}
	if !client.IsValid() || !server.IsValid() {
		return fmt.Errorf("@conn needs client= and server=")
	}
	p.conn = p.s.Capture.Conn(client, server, o)
	p.dir = 0
	return p.conn.Err()
}

func (p *scriptParser) step(args []string) error {
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("@step option %q wants a value", a)
		}
		var err error
		switch k {
		case "split":
			var offs []int
			offs, err = ints(v)
			p.opts = append(p.opts, Split(offs...))
		case "segsize":
			var n int
			n, err = strconv.Atoi(v)
			p.opts = append(p.opts, SegmentSize(n))
		case "delay":
			var d time.Duration
			d, err = time.ParseDuration(v)
			p.opts = append(p.opts, Delay(d))
		case "reorder", "retransmit", "drop", "dup":
			var idx []int
			idx, err = ints(v)
			mk := map[string]func(int) StepOption{"reorder": Reorder, "retransmit": Retransmit, "drop": Drop, "dup": Duplicate}[k]
			for _, i := range idx {
				p.opts = append(p.opts, mk(i))
			}
		case "resend":
			for _, r := range strings.Split(v, ",") {
				var n []int
				n, err = ints(strings.ReplaceAll(r, ":", ","))
				if err == nil && len(n) != 2 {
					err = fmt.Errorf("want OFF:LEN, got %q", r)
				}
				if err != nil {
					break
				}
				p.opts = append(p.opts, Resend(n[0], n[1]))
			}
		case "frag":
			for _, r := range strings.Split(v, ",") {
				parts := strings.Split(r, ":")
				rev := len(parts) == 3 && parts[2] == "rev"
				if len(parts) < 2 || len(parts) > 3 || (len(parts) == 3 && !rev) {
					err = fmt.Errorf("want I:SIZE[:rev], got %q", r)
					break
				}
				var n []int
				if n, err = ints(parts[0] + "," + parts[1]); err != nil {
					break
				}
				p.opts = append(p.opts, Fragment(n[0], n[1], rev))
			}
		default:
			return fmt.Errorf("unknown @step option %q", k)
		}
		if err != nil {
			return fmt.Errorf("@step %s: %w", k, err)
		}
	}
	return nil
}

func (p *scriptParser) tls(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("@tls wants a side and a kind")
	}
	d, err := parseDir(args[0])
	if err != nil {
		return err
	}
	kv := map[string]string{"seed": fmt.Sprint(p.line), "sni": ""}
	for _, a := range args[2:] {
		k, v, ok := strings.Cut(a, "=")
		if _, known := kv[k]; !ok || (!known && k != "n") {
			return fmt.Errorf("bad @tls option %q", a)
		}
		kv[k] = v
	}
	n := 0
	if v, ok := kv["n"]; ok {
		if n, err = strconv.Atoi(v); err != nil || n <= 0 || n > maxTLSBytes {
			return fmt.Errorf("@tls n=%q: want a count from 1 to %d", v, maxTLSBytes)
		}
	}
	var data []byte
	switch args[1] {
	case "hello":
		data = ClientHello(kv["sni"])
	case "serverhello":
		data = ServerHello(kv["seed"], max(n, 1))
	case "appdata":
		if n == 0 {
			return fmt.Errorf("@tls appdata wants n=")
		}
		data = AppData(kv["seed"], n)
	default:
		return fmt.Errorf("unknown @tls kind %q", args[1])
	}
	return p.write(d, string(data))
}

func parseDir(s string) (Dir, error) {
	switch s {
	case "client":
		return ClientSide, nil
	case "server":
		return ServerSide, nil
	}
	return 0, fmt.Errorf("want client or server, got %q", s)
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}
