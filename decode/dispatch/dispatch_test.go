package dispatch

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/mailtap/mailtap/decode"
)

type fake struct {
	proto    decode.Proto
	c        decode.ConnInfo
	data     [3]bytes.Buffer
	closes   int
	released bool
	late     int // calls after Release
}

func (f *fake) Data(d decode.Direction, p []byte, _ time.Time) {
	if f.released {
		f.late++
	}
	f.data[d].Write(p)
}

func (f *fake) Gap(decode.Direction, int, time.Time) {
	if f.released {
		f.late++
	}
}

func (f *fake) Close(decode.CloseReason, time.Time) {
	if f.released {
		f.late++
	}
	f.closes++
}

func (f *fake) Release() { f.released = true }

func (f *fake) Anomaly(decode.Anomaly) {
	if f.released {
		f.late++
	}
}

func newDisp(made *[]*fake) *Dispatcher {
	mk := func(p decode.Proto) NewFunc {
		return func(c decode.ConnInfo, _ decode.Options, _ decode.Sink) decode.Decoder {
			f := &fake{proto: p, c: c}
			*made = append(*made, f)
			return f
		}
	}
	return New(Config{Sniff: true, Protocols: map[decode.Proto]NewFunc{
		decode.ProtoSMTP: mk(decode.ProtoSMTP), decode.ProtoPOP3: mk(decode.ProtoPOP3), decode.ProtoIMAP: mk(decode.ProtoIMAP),
	}})
}

func conn(cport, sport uint16) decode.ConnInfo {
	return decode.ConnInfo{
		Client: netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), cport),
		Server: netip.AddrPortFrom(netip.MustParseAddr("192.0.2.2"), sport),
	}
}

func TestByPort(t *testing.T) {
	var made []*fake
	d := newDisp(&made)
	for _, c := range []struct {
		port  uint16
		proto decode.Proto
		tls   bool
	}{{25, "smtp", false}, {587, "smtp", false}, {465, "smtp", true}, {110, "pop3", false}, {995, "pop3", true}, {143, "imap", false}, {993, "imap", true}} {
		made = nil
		ci := conn(40000, c.port)
		dec := d.NewConn(ci)
		if len(made) != 0 {
			t.Errorf("port %d: decoder made before any byte", c.port)
		}
		dec.Data(decode.ServerToClient, []byte("x"), time.Time{})
		if len(made) != 1 || made[0].proto != c.proto || made[0].c.ImplicitTLS != c.tls {
			t.Errorf("port %d: got %v", c.port, made)
		}
		if sw, ok := dec.(decode.RoleSwapper); ok && sw.RolesSwapped() {
			t.Errorf("port %d: roles swapped", c.port)
		}
	}
}

func TestSniff(t *testing.T) {
	cases := []struct {
		name  string
		steps []struct {
			dir decode.Direction
			s   string
		}
		proto   decode.Proto
		swapped bool
	}{
		{"smtp greeting", steps(decode.ServerToClient, "220 mx ESMTP\r\n", decode.ClientToServer, "EHLO a\r\n"), "smtp", false},
		{"pop3 greeting", steps(decode.ServerToClient, "+OK ready\r\n"), "pop3", false},
		{"imap greeting", steps(decode.ServerToClient, "* OK [CAPABILITY IMAP4rev1] hi\r\n"), "imap", false},
		{"greeting split", steps(decode.ServerToClient, "2", decode.ServerToClient, "20 x\r\n"), "smtp", false},
		{"roles reversed", steps(decode.ClientToServer, "220 mx ESMTP\r\n"), "smtp", true},
		{"client first", steps(decode.ClientToServer, "EHLO host\r\n"), "smtp", false},
		{"imap client first", steps(decode.ClientToServer, "a1 LOGIN bob pw\r\n"), "imap", false},
		{"http", steps(decode.ClientToServer, "GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: x\r\nAccept: */*\r\n\r\n"), "", false},
		{"tls", steps(decode.ClientToServer, "\x16\x03\x01\x02\x00"), "", false},
	}
	for _, c := range cases {
		var made []*fake
		d := newDisp(&made)
		ci := conn(40000, 2526)
		dec := d.NewConn(ci)
		var all [3]string
		for _, s := range c.steps {
			dec.Data(s.dir, []byte(s.s), time.Time{})
			all[s.dir] += s.s
		}
		if c.proto == "" {
			if len(made) != 0 || !dec.(interface{ Ignored() bool }).Ignored() {
				t.Errorf("%s: classified as %v", c.name, made)
			}
			continue
		}
		if len(made) != 1 || made[0].proto != c.proto {
			t.Errorf("%s: got %v", c.name, made)
			continue
		}
		f := made[0]
		if got := dec.(decode.RoleSwapper).RolesSwapped(); got != c.swapped {
			t.Errorf("%s: RolesSwapped %v", c.name, got)
		}
		srvDir, cliDir := decode.ServerToClient, decode.ClientToServer
		if c.swapped {
			srvDir, cliDir = cliDir, srvDir
			if f.c.Server.Port() != 40000 {
				t.Errorf("%s: roles not swapped: %+v", c.name, f.c)
			}
		}
		if f.data[decode.ServerToClient].String() != all[srvDir] || f.data[decode.ClientToServer].String() != all[cliDir] {
			t.Errorf("%s: replayed bytes %q / %q", c.name, f.data[decode.ClientToServer].String(), f.data[decode.ServerToClient].String())
		}
	}
}

// TestSniffSwapAfterGreeting: once the sniffer has said the roles are
// reversed, capture delivers with the corrected directions, and they reach
// the decoder unchanged (before, the sniffer reversed them a second time).
func TestSniffSwapAfterGreeting(t *testing.T) {
	var made []*fake
	d := newDisp(&made)
	ci := conn(2526, 40000) // capture took the greeting's sender for the client
	dec := d.NewConn(ci)
	sw := dec.(decode.RoleSwapper)
	if sw.RolesSwapped() {
		t.Fatal("swapped before any byte")
	}
	dec.Data(decode.ClientToServer, []byte("220 mx ESMTP\r\n"), time.Time{})
	if !sw.RolesSwapped() {
		t.Fatal("greeting from the client side: roles not reported swapped")
	}
	// Capture's corrected directions from here on.
	dec.Data(decode.ClientToServer, []byte("EHLO a\r\n"), time.Time{})
	dec.Data(decode.ServerToClient, []byte("250 mx\r\n"), time.Time{})
	if len(made) != 1 {
		t.Fatalf("decoders %v", made)
	}
	f := made[0]
	if got := f.data[decode.ServerToClient].String(); got != "220 mx ESMTP\r\n250 mx\r\n" {
		t.Errorf("server bytes %q", got)
	}
	if got := f.data[decode.ClientToServer].String(); got != "EHLO a\r\n" {
		t.Errorf("client bytes %q", got)
	}
	if f.c.Server.Port() != 2526 || f.c.Client.Port() != 40000 {
		t.Errorf("decoder's roles %v -> %v", f.c.Client, f.c.Server)
	}
	if ci.Server.Port() != 40000 {
		t.Errorf("caller's ConnInfo changed: %+v", ci)
	}
}

// TestMailPortOnClientSide: a midstream connection whose "client" port is
// a mail port asks capture to swap before the first byte.
func TestMailPortOnClientSide(t *testing.T) {
	var made []*fake
	d := newDisp(&made)
	ci := conn(25, 40000)
	ci.Midstream = true
	dec := d.NewConn(ci)
	if !dec.(decode.RoleSwapper).RolesSwapped() {
		t.Fatal("roles not reported swapped")
	}
	dec.Data(decode.ServerToClient, []byte("250 ok\r\n"), time.Time{})
	if len(made) != 1 || made[0].c.Server.Port() != 25 || made[0].data[decode.ServerToClient].String() != "250 ok\r\n" {
		t.Errorf("decoder %+v", made)
	}
}

func steps(args ...any) []struct {
	dir decode.Direction
	s   string
} {
	var out []struct {
		dir decode.Direction
		s   string
	}
	for i := 0; i < len(args); i += 2 {
		out = append(out, struct {
			dir decode.Direction
			s   string
		}{args[i].(decode.Direction), args[i+1].(string)})
	}
	return out
}

func TestPortsFlag(t *testing.T) {
	p := Ports{}
	for _, v := range []string{"smtp=25,2525", "imaps=993", "pop3=110,1995+tls"} {
		if err := p.Set(v); err != nil {
			t.Fatal(err)
		}
	}
	if got := p.String(); got != "smtp=25,2525 pop3=110,1995+tls imap=993+tls" {
		t.Errorf("String() = %q", got)
	}
	for _, bad := range []string{"smtp", "ftp=21", "smtp=0", "smtp=70000", "smtp=x"} {
		if err := p.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
}

func TestSniffHTTPConnectTunnel(t *testing.T) {
	var made []*fake
	d := newDisp(&made)
	dec := d.NewConn(conn(40000, 8240))
	dec.Data(decode.ClientToServer, []byte("CONNECT mx.example:25 HTTP/1.0\r\n\r\n"), time.Time{})
	dec.Data(decode.ServerToClient, []byte("HTTP/1.0 200 Connection established\r\n\r\n220 mx ESMTP\r\n"), time.Time{})
	dec.Data(decode.ClientToServer, []byte("EHLO me\r\n"), time.Time{})
	if len(made) != 1 || made[0].proto != decode.ProtoSMTP {
		t.Fatalf("got %v", made)
	}
	if got := made[0].data[decode.ServerToClient].String(); got != "220 mx ESMTP\r\n" {
		t.Errorf("server bytes after tunnel %q", got)
	}
	if got := made[0].data[decode.ClientToServer].String(); got != "EHLO me\r\n" {
		t.Errorf("client bytes after tunnel %q", got)
	}
}

func TestSniffSOCKS(t *testing.T) {
	cases := []struct {
		name     string
		cli, srv []string
	}{
		{"socks5", []string{"\x05\x01\x00", "\x05\x01\x00\x03\x0emx.example.net\x00\x19", "EHLO me\r\n"},
			[]string{"\x05\x00", "\x05\x00\x00\x01\x0a\x00\x00\x01\xd1\xcd", "220 mx ESMTP\r\n"}},
		{"socks5-userpass", []string{"\x05\x01\x02", "\x01\x04user\x04pass", "\x05\x01\x00\x01\xc0\x00\x02\x01\x00\x6e", "USER a\r\n"},
			[]string{"\x05\x02", "\x01\x00", "\x05\x00\x00\x01\x0a\x00\x00\x01\xd1\xcd", "+OK pop\r\n"}},
		{"socks4", []string{"\x04\x01\x00\x8f\xc0\x00\x02\x01bob\x00", "a1 LOGIN x y\r\n"},
			[]string{"\x00\x5a\x00\x00\x00\x00\x00\x00", "* OK imap\r\n"}},
	}
	for _, c := range cases {
		var made []*fake
		d := newDisp(&made)
		dec := d.NewConn(conn(40000, 1080))
		var wantCli, wantSrv string
		for i := 0; i < len(c.cli) || i < len(c.srv); i++ {
			if i < len(c.cli) {
				dec.Data(decode.ClientToServer, []byte(c.cli[i]), time.Time{})
			}
			if i < len(c.srv) {
				dec.Data(decode.ServerToClient, []byte(c.srv[i]), time.Time{})
			}
		}
		wantCli, wantSrv = c.cli[len(c.cli)-1], c.srv[len(c.srv)-1]
		if len(made) != 1 {
			t.Errorf("%s: not classified", c.name)
			continue
		}
		if got := made[0].data[decode.ClientToServer].String(); got != wantCli {
			t.Errorf("%s: client bytes %q", c.name, got)
		}
		if got := made[0].data[decode.ServerToClient].String(); got != wantSrv {
			t.Errorf("%s: server bytes %q", c.name, got)
		}
	}
	// A refused SOCKS request is not mail.
	var made []*fake
	d := newDisp(&made)
	dec := d.NewConn(conn(40000, 1080))
	dec.Data(decode.ClientToServer, []byte("\x05\x01\x00"), time.Time{})
	dec.Data(decode.ServerToClient, []byte("\x05\xff"), time.Time{})
	if len(made) != 0 || !dec.(interface{ Ignored() bool }).Ignored() {
		t.Errorf("refused SOCKS classified: %v", made)
	}
}

// TestSniffReusedBuffer: capture reuses its buffers between calls, so
// bytes the sniffer holds must be its own copies, whether the first bytes
// classify the connection at once or only with what follows; every byte
// reaches the decoder once, in order, with the corrected direction.
func TestSniffReusedBuffer(t *testing.T) {
	for _, c := range []struct {
		name    string
		chunks  []string
		dirs    []decode.Direction
		swapped bool
	}{
		{"greeting at once", []string{"220 mx ESMTP\r\n", "EHLO a\r\n"}, []decode.Direction{decode.ServerToClient, decode.ClientToServer}, false},
		{"greeting split", []string{"2", "20 mx\r\n", "EHLO a\r\n"}, []decode.Direction{decode.ServerToClient, decode.ServerToClient, decode.ClientToServer}, false},
		{"command split", []string{"EH", "LO a\r\n", "250 ok\r\n"}, []decode.Direction{decode.ClientToServer, decode.ClientToServer, decode.ServerToClient}, false},
		{"reversed at once", []string{"+OK hi\r\n", "USER x\r\n"}, []decode.Direction{decode.ClientToServer, decode.ServerToClient}, true},
		{"reversed split", []string{"* O", "K hi\r\n", "a1 NOOP\r\n"}, []decode.Direction{decode.ClientToServer, decode.ClientToServer, decode.ServerToClient}, true},
	} {
		var made []*fake
		d := newDisp(&made)
		dec := d.NewConn(conn(40000, 9999))
		var want [3]string
		buf := make([]byte, 64)
		for i, s := range c.chunks {
			dir := c.dirs[i] // as first seen: capture corrects it once told
			if c.swapped {
				want[dir.Reverse()] += s
			} else {
				want[dir] += s
			}
			if sw, ok := dec.(decode.RoleSwapper); ok && sw.RolesSwapped() {
				dir = dir.Reverse()
			}
			p := buf[:copy(buf, s)]
			dec.Data(dir, p, time.Time{})
			for j := range p {
				p[j] = '#' // capture reusing its buffer
			}
		}
		if sw, ok := dec.(decode.RoleSwapper); !ok || sw.RolesSwapped() != c.swapped {
			t.Errorf("%s: roles swapped not %v", c.name, c.swapped)
		}
		if len(made) != 1 {
			t.Fatalf("%s: %d decoders", c.name, len(made))
		}
		for dir := range want {
			if got := made[0].data[dir].String(); got != want[dir] {
				t.Errorf("%s: direction %d got %q, want %q", c.name, dir, got, want[dir])
			}
		}
	}
}

// TestRelease: a decoder is released (decode.Releaser) right after its
// Close, and nothing reaches it afterwards, whatever the caller does.
func TestRelease(t *testing.T) {
	for _, c := range []struct {
		name  string
		sport uint16
		first string
	}{{"by port", 25, "x"}, {"sniffed", 9999, "220 mx\r\n"}} {
		var made []*fake
		d := newDisp(&made)
		dec := d.NewConn(conn(40000, c.sport))
		dec.Data(decode.ServerToClient, []byte(c.first), time.Time{})
		if len(made) != 1 {
			t.Fatalf("%s: %d decoders", c.name, len(made))
		}
		f := made[0]
		dec.Close(decode.CloseFIN, time.Time{})
		if f.closes != 1 || !f.released {
			t.Errorf("%s: closed %d times, released %v", c.name, f.closes, f.released)
		}
		dec.Data(decode.ClientToServer, []byte("QUIT\r\n"), time.Time{})
		dec.Gap(decode.ClientToServer, 5, time.Time{})
		dec.(decode.AnomalyRecorder).Anomaly(decode.AnomalyDataOnSYN)
		dec.(decode.LossMarker).CaptureLoss()
		dec.Close(decode.CloseFIN, time.Time{})
		if f.late != 0 || f.closes != 1 || len(made) != 1 {
			t.Errorf("%s: %d calls after release, %d closes, %d decoders", c.name, f.late, f.closes, len(made))
		}
	}
}
