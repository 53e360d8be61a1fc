// Package dispatch chooses the protocol decoder for each connection: by
// the server port map first, else by sniffing the first bytes (a server
// greeting "220 ", "+OK", "* OK", or a client's first command).
package dispatch

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mailtap/mailtap/decode"
)

// NewFunc creates a protocol decoder.
type NewFunc func(c decode.ConnInfo, o decode.Options, s decode.Sink) decode.Decoder

// PortSpec says what a server port carries.
type PortSpec struct {
	Proto decode.Proto
	TLS   bool // implicit TLS (465, 993, 995)
}

// Ports maps server ports to protocols.
type Ports map[uint16]PortSpec

// DefaultPorts are the IANA mail ports.
func DefaultPorts() Ports {
	return Ports{
		25:  {Proto: decode.ProtoSMTP},
		587: {Proto: decode.ProtoSMTP},
		465: {Proto: decode.ProtoSMTP, TLS: true},
		110: {Proto: decode.ProtoPOP3},
		995: {Proto: decode.ProtoPOP3, TLS: true},
		143: {Proto: decode.ProtoIMAP},
		993: {Proto: decode.ProtoIMAP, TLS: true},
	}
}

// Set parses one --ports value: "smtp=25,587,2525" or "imaps=993" (an "s"
// suffix or a "+tls" suffix on a port marks implicit TLS: "smtp=465+tls").
// A protocol named with "=" alone ("pop3=") removes its ports.
func (p Ports) Set(v string) error {
	name, list, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("--ports %q: want proto=port[,port...]", v)
	}
	proto, tlsAll, err := ProtoOf(name)
	if err != nil {
		return fmt.Errorf("--ports %q: %w", v, err)
	}
	if strings.TrimSpace(list) == "" {
		p.Remove(proto)
		return nil
	}
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		tls := tlsAll
		if s, ok := strings.CutSuffix(f, "+tls"); ok {
			f, tls = s, true
		}
		n, err := strconv.ParseUint(f, 10, 16)
		if err != nil || n == 0 {
			return fmt.Errorf("--ports %q: bad port %q", v, f)
		}
		p[uint16(n)] = PortSpec{Proto: proto, TLS: tls}
	}
	return nil
}

// Remove deletes every port of proto.
func (p Ports) Remove(proto decode.Proto) {
	for port, spec := range p {
		if spec.Proto == proto {
			delete(p, port)
		}
	}
}

// ProtoOf maps a protocol name as written in --ports to its protocol and
// whether the name implies implicit TLS ("imaps").
func ProtoOf(name string) (decode.Proto, bool, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "smtp", "submission":
		return decode.ProtoSMTP, false, nil
	case "smtps":
		return decode.ProtoSMTP, true, nil
	case "pop3", "pop":
		return decode.ProtoPOP3, false, nil
	case "pop3s", "pops":
		return decode.ProtoPOP3, true, nil
	case "imap":
		return decode.ProtoIMAP, false, nil
	case "imaps":
		return decode.ProtoIMAP, true, nil
	}
	return "", false, fmt.Errorf("unknown protocol %q (smtp, smtps, pop3, pop3s, imap, imaps)", name)
}

// String lists the map in a stable order, in the form Set accepts.
func (p Ports) String() string {
	by := map[string][]string{}
	for port, s := range p {
		v := strconv.Itoa(int(port))
		if s.TLS {
			v += "+tls"
		}
		by[string(s.Proto)] = append(by[string(s.Proto)], v)
	}
	var out []string
	for _, name := range []string{"smtp", "pop3", "imap"} {
		l := by[name]
		sort.Slice(l, func(i, j int) bool { return portNum(l[i]) < portNum(l[j]) })
		if len(l) > 0 {
			out = append(out, name+"="+strings.Join(l, ","))
		}
	}
	return strings.Join(out, " ")
}

func portNum(s string) int {
	n, _ := strconv.Atoi(strings.TrimSuffix(s, "+tls"))
	return n
}

// Config configures a Dispatcher.
type Config struct {
	Ports Ports
	// Sniff classifies connections on other ports by their first bytes.
	Sniff     bool
	Options   decode.Options
	Sink      decode.Sink
	Protocols map[decode.Proto]NewFunc
}

// Dispatcher is a capture.Factory.
type Dispatcher struct {
	cfg Config
}

// New returns a Dispatcher.
func New(cfg Config) *Dispatcher {
	if cfg.Ports == nil {
		cfg.Ports = DefaultPorts()
	}
	return &Dispatcher{cfg: cfg}
}

// IsServerPort reports whether port is in the port map.
func (d *Dispatcher) IsServerPort(port uint16) bool {
	_, ok := d.cfg.Ports[port]
	return ok
}

// NewConn returns the decoder for a new connection. A connection that
// never carries a byte (a refused connection, a SYN scan) gets no protocol
// decoder and so produces no records. c is capture's view; the decoder
// gets its own copy, and when the roles are the other way round it tells
// capture through decode.RoleSwapper.
func (d *Dispatcher) NewConn(c decode.ConnInfo) decode.Decoder {
	if spec, ok := d.cfg.Ports[c.Server.Port()]; ok {
		if f := d.cfg.Protocols[spec.Proto]; f != nil {
			return &lazy{d: d, f: f, c: c.WithImplicitTLS(spec.TLS)}
		}
	}
	if spec, ok := d.cfg.Ports[c.Client.Port()]; ok && c.Midstream {
		// Direction guessed wrong: the "client" port is a mail port.
		if f := d.cfg.Protocols[spec.Proto]; f != nil {
			return &lazy{d: d, f: f, c: c.Swapped().WithImplicitTLS(spec.TLS), swap: true}
		}
	}
	if !d.cfg.Sniff {
		return ignore{}
	}
	return &sniffer{d: d, c: c}
}

// lazy creates its decoder, f(c, ...), on the first byte (or gap). swap
// asks capture to exchange client and server before the first byte. (The
// fields rather than a closure: one allocation per connection, not two.)
type lazy struct {
	d    *Dispatcher
	f    NewFunc
	c    decode.ConnInfo
	next decode.Decoder
	swap bool
	loss bool // CaptureLoss came before the decoder
}

func (l *lazy) get() decode.Decoder {
	if l.next == nil {
		l.next = l.f(l.c, l.d.cfg.Options, l.d.cfg.Sink)
		if l.loss {
			captureLoss(l.next)
		}
	}
	return l.next
}

// CaptureLoss implements decode.LossMarker.
func (l *lazy) CaptureLoss() {
	if l.next == nil {
		l.loss = true
		return
	}
	captureLoss(l.next)
}

// captureLoss passes a capture loss report on to d, if it takes them.
func captureLoss(d decode.Decoder) {
	if m, ok := d.(decode.LossMarker); ok {
		m.CaptureLoss()
	}
}

func (l *lazy) RolesSwapped() bool { return l.swap }

// Anomaly passes an anomaly capture found in the TCP stream on
// (decode.AnomalyRecorder).
func (l *lazy) Anomaly(kind decode.Anomaly) {
	if r, ok := l.get().(decode.AnomalyRecorder); ok {
		r.Anomaly(kind)
	}
}

func (l *lazy) Data(dir decode.Direction, p []byte, ts time.Time) { l.get().Data(dir, p, ts) }
func (l *lazy) Gap(dir decode.Direction, n int, ts time.Time)     { l.get().Gap(dir, n, ts) }
func (l *lazy) Close(r decode.CloseReason, ts time.Time) {
	if l.next != nil {
		l.next.Close(r, ts)
		l.next = release(l.next)
	}
}

// release hands a closed decoder's storage back (decode.Releaser) and
// returns what stands in for it: a wrapper that closed its decoder takes
// nothing more to it, whatever its caller does.
func release(d decode.Decoder) decode.Decoder {
	if r, ok := d.(decode.Releaser); ok {
		r.Release()
	}
	return ignore{}
}

// ignore is the decoder for connections that are not mail.
type ignore struct{}

func (ignore) Data(decode.Direction, []byte, time.Time) {}
func (ignore) Gap(decode.Direction, int, time.Time)     {}
func (ignore) Close(decode.CloseReason, time.Time)      {}
func (ignore) Ignored() bool                            { return true }

// sniffLimit is how many bytes per direction are held while classifying.
const sniffLimit = 1024

type held struct {
	dir decode.Direction
	gap int
	p   []byte
	ts  time.Time
}

// sniffer holds the first bytes of a connection on an unknown port until
// it can tell the protocol, then replays them into the chosen decoder.
// When the first bytes show the roles reversed, it replays what it held
// with the directions reversed and tells capture (RolesSwapped), which
// delivers every later byte with the corrected direction.
type sniffer struct {
	d       *Dispatcher
	c       decode.ConnInfo
	held    []held
	n       [3]int
	first   [3][]byte
	next    decode.Decoder
	given   bool // gave up: not mail
	swapped bool
	// socksDone: a SOCKS handshake was stripped.
	socksDone bool
	// anomalies capture reported before the protocol was known
	notes []decode.Anomaly
	loss  bool // CaptureLoss came before the decoder
}

// CaptureLoss implements decode.LossMarker.
func (s *sniffer) CaptureLoss() {
	if s.next == nil {
		s.loss = true
		return
	}
	captureLoss(s.next)
}

func (s *sniffer) Ignored() bool { return s.given }

func (s *sniffer) RolesSwapped() bool { return s.swapped }

// Anomaly passes an anomaly capture found in the TCP stream on to the
// protocol decoder (decode.AnomalyRecorder), or holds it until the
// protocol is known.
func (s *sniffer) Anomaly(kind decode.Anomaly) {
	if s.next == nil {
		if !s.given && !slices.Contains(s.notes, kind) {
			s.notes = append(s.notes, kind)
		}
		return
	}
	if r, ok := s.next.(decode.AnomalyRecorder); ok {
		r.Anomaly(kind)
	}
}

func (s *sniffer) Data(dir decode.Direction, p []byte, ts time.Time) {
	if s.next != nil {
		s.next.Data(dir, p, ts)
		return
	}
	if s.given {
		return
	}
	if s.n[dir]+len(p) > 4*sniffLimit {
		s.giveUp()
		return
	}
	if len(s.held) == 0 && !s.socksDone {
		s.firstData(dir, p, ts)
		return
	}
	s.held = append(s.held, held{dir: dir, p: append([]byte(nil), p...), ts: ts})
	if len(s.first[dir]) < sniffLimit {
		room := sniffLimit - len(s.first[dir])
		s.first[dir] = append(s.first[dir], p[:min(room, len(p))]...)
	}
	s.n[dir] += len(p)
	s.classify()
}

// firstData takes the connection's first bytes (nothing held, nothing
// stripped). Most connections are told by these alone (a greeting, a first
// command), so they are classified in place and go to the decoder
// directly; they are copied only when more are needed.
func (s *sniffer) firstData(dir decode.Direction, p []byte, ts time.Time) {
	s.first[dir] = p[:min(sniffLimit, len(p))]
	s.n[dir] += len(p)
	// With one direction's bytes and nothing held, classify neither
	// strips (a tunnel's handshake needs both directions) nor replays.
	s.classify()
	switch {
	case s.next != nil:
		s.first = [3][]byte{}
		if s.swapped {
			dir = dir.Reverse()
		}
		s.next.Data(dir, p, ts)
	case !s.given:
		s.first[dir] = append([]byte(nil), s.first[dir]...)
		s.held = append(s.held, held{dir: dir, p: append([]byte(nil), p...), ts: ts})
	}
}

func (s *sniffer) Gap(dir decode.Direction, n int, ts time.Time) {
	if s.next != nil {
		s.next.Gap(dir, n, ts)
		return
	}
	if s.given {
		return
	}
	s.held = append(s.held, held{dir: dir, gap: n, ts: ts})
}

func (s *sniffer) Close(r decode.CloseReason, ts time.Time) {
	if s.next != nil {
		s.next.Close(r, ts)
		s.next = release(s.next)
	}
}

func (s *sniffer) classify() {
	srv, cli := s.first[decode.ServerToClient], s.first[decode.ClientToServer]
	if len(cli) > 0 && (cli[0] == 5 || cli[0] == 4) && !s.socksDone {
		// Maybe a SOCKS proxy (Arkime's socks5-smtp-503 trace): once
		// both sides' handshakes are through, classify what follows.
		c, sv, state := socksLen(cli, srv)
		switch state {
		case socksMore:
			if len(cli) >= sniffLimit || len(srv) >= sniffLimit {
				s.giveUp()
			}
			return
		case socksOK:
			s.socksDone = true
			s.strip(c, sv)
			s.classify()
			return
		}
		// socksNot: fall through to the usual checks.
	}
	if bytes.HasPrefix(cli, []byte("CONNECT ")) {
		// An HTTP CONNECT tunnel: once both sides' HTTP headers are
		// through (and the proxy said 200), classify what follows.
		ce := bytes.Index(cli, []byte("\r\n\r\n"))
		se := bytes.Index(srv, []byte("\r\n\r\n"))
		if ce < 0 || se < 0 {
			if len(cli) >= sniffLimit || len(srv) >= sniffLimit {
				s.giveUp()
			}
			return
		}
		if !bytes.HasPrefix(srv, []byte("HTTP/1.")) || !bytes.Contains(srv[:se], []byte(" 200")) {
			s.giveUp()
			return
		}
		s.strip(ce+4, se+4)
		s.classify()
		return
	}
	proto, swap := decode.ProtoUnknown, false
	if p := greeting(srv); p != "" {
		proto = p
	} else if p := greeting(cli); p != "" && len(srv) == 0 {
		proto, swap = p, true
	} else if p := clientHello(cli); p != "" {
		proto = p
	} else if p := clientHello(srv); p != "" {
		proto, swap = p, true
	}
	if proto == decode.ProtoUnknown {
		if len(cli) >= 64 || len(srv) >= 64 || binaryStart(srv) || binaryStart(cli) {
			s.giveUp()
		}
		return
	}
	f := s.d.cfg.Protocols[proto]
	if f == nil {
		s.giveUp()
		return
	}
	c := s.c
	if swap {
		c = c.Swapped()
		s.swapped = true
	}
	s.next = f(c, s.d.cfg.Options, s.d.cfg.Sink)
	for _, k := range s.notes {
		s.Anomaly(k)
	}
	s.notes = nil
	if s.loss {
		captureLoss(s.next)
	}
	// The held bytes came with capture's directions of the time; once
	// this call returns, capture delivers with the swapped ones.
	for _, h := range s.held {
		d := h.dir
		if s.swapped {
			d = d.Reverse()
		}
		if h.gap != 0 {
			s.next.Gap(d, h.gap, h.ts)
		}
		if len(h.p) > 0 {
			s.next.Data(d, h.p, h.ts)
		}
	}
	s.held = nil
}

func (s *sniffer) giveUp() {
	s.given = true
	s.held = nil
	s.first = [3][]byte{}
}

// strip drops the first c client bytes and sv server bytes from what is
// held (a tunnel's own headers).
func (s *sniffer) strip(c, sv int) {
	drop := [3]int{decode.ClientToServer: c, decode.ServerToClient: sv}
	kept := s.held[:0]
	for _, h := range s.held {
		if n := min(drop[h.dir], len(h.p)); n > 0 {
			h.p = h.p[n:]
			drop[h.dir] -= n
			if len(h.p) == 0 && h.gap == 0 {
				continue
			}
		}
		kept = append(kept, h)
	}
	s.held = kept
	s.first[decode.ClientToServer] = s.first[decode.ClientToServer][c:]
	s.first[decode.ServerToClient] = s.first[decode.ServerToClient][sv:]
}

type socksState uint8

const (
	socksNot  socksState = iota // not a (successful) SOCKS handshake
	socksMore                   // could be; more bytes needed
	socksOK                     // complete: c and sv bytes to strip
)

// socksLen measures a SOCKS 4/4a (client request, 8-byte reply with 0x5a)
// or SOCKS 5 (RFC 1928: method selection, optional RFC 1929
// user/password, CONNECT request and reply) handshake at the start of
// both directions.
func socksLen(cli, srv []byte) (c, sv int, st socksState) {
	need := func(b []byte, n int) bool { return len(b) >= n }
	if cli[0] == 4 {
		// VN CD DSTPORT(2) DSTIP(4) USERID NUL [HOST NUL for 4a]
		if !need(cli, 9) {
			return 0, 0, socksMore
		}
		if cli[1] != 1 {
			return 0, 0, socksNot
		}
		end := bytes.IndexByte(cli[8:], 0)
		if end < 0 {
			return 0, 0, socksMore
		}
		c = 8 + end + 1
		if cli[4] == 0 && cli[5] == 0 && cli[6] == 0 && cli[7] != 0 { // 4a: host name follows
			h := bytes.IndexByte(cli[c:], 0)
			if h < 0 {
				return 0, 0, socksMore
			}
			c += h + 1
		}
		if !need(srv, 8) {
			return 0, 0, socksMore
		}
		if srv[0] != 0 || srv[1] != 0x5a {
			return 0, 0, socksNot
		}
		return c, 8, socksOK
	}
	// SOCKS 5: VER NMETHODS METHODS...
	if !need(cli, 2) {
		return 0, 0, socksMore
	}
	c = 2 + int(cli[1])
	if !need(srv, 2) || !need(cli, c) {
		return 0, 0, socksMore
	}
	if srv[0] != 5 {
		return 0, 0, socksNot
	}
	sv = 2
	switch srv[1] {
	case 0: // no authentication
	case 2: // user/password: VER ULEN USER PLEN PASS; reply VER STATUS
		if !need(cli, c+2) {
			return 0, 0, socksMore
		}
		ul := int(cli[c+1])
		if !need(cli, c+2+ul+1) {
			return 0, 0, socksMore
		}
		c += 2 + ul + 1 + int(cli[c+2+ul])
		if !need(srv, sv+2) {
			return 0, 0, socksMore
		}
		if srv[sv+1] != 0 {
			return 0, 0, socksNot
		}
		sv += 2
	default:
		return 0, 0, socksNot
	}
	// Request and reply: VER CMD|REP RSV ATYP ADDR PORT(2).
	addrLen := func(b []byte, at int) (int, socksState) {
		if !need(b, at+5) {
			return 0, socksMore
		}
		switch b[at+3] {
		case 1:
			return 4 + 6, socksOK
		case 4:
			return 16 + 6, socksOK
		case 3:
			return 1 + int(b[at+4]) + 6, socksOK
		}
		return 0, socksNot
	}
	n, st := addrLen(cli, c)
	if st != socksOK {
		return 0, 0, st
	}
	if cli[c] != 5 || cli[c+1] != 1 {
		return 0, 0, socksNot
	}
	if !need(cli, c+n) {
		return 0, 0, socksMore
	}
	c += n
	m, st := addrLen(srv, sv)
	if st != socksOK {
		return 0, 0, st
	}
	if srv[sv] != 5 || srv[sv+1] != 0 {
		return 0, 0, socksNot
	}
	if !need(srv, sv+m) {
		return 0, 0, socksMore
	}
	return c, sv + m, socksOK
}

// greeting recognises a server's first line.
func greeting(b []byte) decode.Proto {
	switch {
	case len(b) < 4:
		return ""
	case bytes.HasPrefix(b, []byte("220 ")) || bytes.HasPrefix(b, []byte("220-")) || bytes.HasPrefix(b, []byte("554 ")):
		return decode.ProtoSMTP
	case bytes.HasPrefix(b, []byte("+OK")):
		return decode.ProtoPOP3
	case bytes.HasPrefix(b, []byte("* OK")) || bytes.HasPrefix(b, []byte("* PREAUTH")) || bytes.HasPrefix(b, []byte("* BYE")):
		return decode.ProtoIMAP
	}
	return ""
}

// clientHello recognises a client's first command (captures that miss the
// greeting).
func clientHello(b []byte) decode.Proto {
	line, _, ok := bytes.Cut(b, []byte("\n"))
	if !ok {
		return ""
	}
	u := strings.ToUpper(string(bytes.TrimRight(line, "\r")))
	for _, v := range []string{"EHLO ", "HELO ", "MAIL FROM:", "LHLO "} {
		if strings.HasPrefix(u, v) {
			return decode.ProtoSMTP
		}
	}
	for _, v := range []string{"USER ", "APOP ", "CAPA", "STLS", "AUTH "} {
		if strings.HasPrefix(u, v) && !strings.Contains(u, " LOGIN ") {
			return decode.ProtoPOP3
		}
	}
	if tag, rest, ok := strings.Cut(u, " "); ok && tag != "" {
		for _, v := range []string{"CAPABILITY", "LOGIN ", "AUTHENTICATE ", "STARTTLS", "ID ", "SELECT ", "NOOP"} {
			if strings.HasPrefix(rest, v) {
				return decode.ProtoIMAP
			}
		}
	}
	return ""
}

// binaryStart reports bytes no mail protocol starts with (TLS, HTTP/2...).
func binaryStart(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	c := b[0]
	return c < 0x20 && c != '\r' && c != '\n' || c >= 0x7f
}
