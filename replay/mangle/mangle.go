// Package mangle is a TCP proxy that makes a mail server behave a little
// differently, for testing that mailtap replay notices: it takes
// capabilities out of EHLO, CAPA and IMAP CAPABILITY answers, rewrites
// enhanced status codes, and can hold the answer to one command back.
// It works on the server's lines; the client's bytes pass unchanged.
package mangle

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// Config says what the proxy changes.
type Config struct {
	// Target is the server's address.
	Target string
	// Drop are capability keywords taken out (case-insensitive): EHLO
	// lines "250-KEYWORD ...", CAPA lines "KEYWORD ...", and words of IMAP
	// CAPABILITY lists and [CAPABILITY ...] codes.
	Drop []string
	// Codes rewrites enhanced status codes in SMTP replies ("5.1.1" ->
	// "5.7.1").
	Codes map[string]string
	// DelayVerb and Delay hold back the server's answer to the first
	// client line whose verb (first word, or second after an IMAP tag)
	// is DelayVerb, by Delay.
	DelayVerb string
	Delay     time.Duration
}

// Proxy serves connections on a listener.
type Proxy struct {
	cfg Config
	ln  net.Listener
	wg  sync.WaitGroup
}

// Start listens on addr ("127.0.0.1:0") and serves until Close.
func Start(addr string, cfg Config) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &Proxy{cfg: cfg, ln: ln}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the proxy's address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Close stops accepting and waits for the accept loop.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.conn(c)
	}
}

func (p *Proxy) conn(c net.Conn) {
	defer c.Close()
	s, err := net.DialTimeout("tcp", p.cfg.Target, 5*time.Second)
	if err != nil {
		return
	}
	defer s.Close()
	hold := make(chan struct{}, 1) // the delayed verb was sent
	go func() {
		p.client(c, s, hold)
		s.(*net.TCPConn).CloseWrite()
	}()
	p.server(s, c, hold)
}

// client copies the client's bytes, watching for the delayed verb.
func (p *Proxy) client(c, s net.Conn, hold chan<- struct{}) {
	r := bufio.NewReader(c)
	fired := p.cfg.DelayVerb == ""
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			if !fired && verbIs(line, p.cfg.DelayVerb) {
				fired = true
				hold <- struct{}{}
			}
			if _, werr := s.Write(line); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func verbIs(line []byte, verb string) bool {
	f := strings.Fields(string(line))
	for i := 0; i < len(f) && i < 2; i++ {
		if strings.EqualFold(f[i], verb) {
			return true
		}
	}
	return false
}

// server copies the server's lines, changed, to the client.
func (p *Proxy) server(s, c net.Conn, hold <-chan struct{}) {
	r := bufio.NewReader(s)
	for {
		line, err := r.ReadBytes('\n')
		select {
		case <-hold:
			time.Sleep(p.cfg.Delay)
		default:
		}
		if len(line) > 0 {
			if out, keep := p.Line(line); keep {
				if _, werr := c.Write(out); werr != nil {
					return
				}
			}
		}
		if err == io.EOF || err != nil {
			return
		}
	}
}

// Line changes one server line; keep false drops it.
func (p *Proxy) Line(line []byte) (out []byte, keep bool) {
	body := bytes.TrimRight(line, "\r\n")
	end := line[len(body):]
	s := string(body)
	// EHLO extension lines: "250-KEYWORD ..." (never the last line, which
	// a client needs; Postfix ends with CHUNKING, which then stays).
	if strings.HasPrefix(s, "250-") {
		kw, _, _ := strings.Cut(s[4:], " ")
		if p.dropped(kw) {
			return nil, false
		}
	}
	// POP3 CAPA lines: a bare keyword line.
	if kw, _, _ := strings.Cut(s, " "); p.dropped(kw) && !strings.HasPrefix(s, "*") && !strings.Contains(s, ":") {
		return nil, false
	}
	// IMAP capability lists.
	if strings.Contains(strings.ToUpper(s), "CAPABILITY ") {
		words := strings.Split(s, " ")
		kept := words[:0]
		for _, w := range words {
			bare := strings.TrimRight(w, "]")
			if p.dropped(bare) {
				if strings.HasSuffix(w, "]") && len(kept) > 0 {
					kept[len(kept)-1] += "]"
				}
				continue
			}
			kept = append(kept, w)
		}
		s = strings.Join(kept, " ")
	}
	// SMTP enhanced codes: "550 5.1.1 text" / "550-5.1.1 text".
	if len(s) > 9 && (s[3] == ' ' || s[3] == '-') && s[0] >= '2' && s[0] <= '5' {
		code, rest, _ := strings.Cut(s[4:], " ")
		if nc, ok := p.cfg.Codes[code]; ok {
			s = s[:4] + nc + " " + rest
		}
	}
	return append([]byte(s), end...), true
}

func (p *Proxy) dropped(kw string) bool {
	for _, d := range p.cfg.Drop {
		if strings.EqualFold(d, kw) {
			return true
		}
	}
	return false
}
