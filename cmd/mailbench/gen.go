package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/mailtap/mailtap/capture/synth"
)

// genSpec describes a capture to generate.
type genSpec struct {
	Path   string
	Size   int64 // stop once the file is at least this big
	MSS    int   // TCP payload per segment
	Seed   uint64
	Batch  int // sessions running at once
	MaxMsg int // largest message
	stderr io.Writer
}

// genResult is what a generated capture holds.
type genResult struct {
	Bytes    int64
	Packets  int64
	Sessions map[string]int // by protocol
	Messages map[string]int // mails / retrieved / fetched, by protocol
	Payload  int64          // message bytes
	Took     time.Duration
}

// batchBytes bounds the message bytes scripted at once: synth keeps a
// batch's packets in memory until they are written.
const batchBytes = 96 << 20

// generate writes a pcap of many concurrent SMTP, POP3 and IMAP sessions,
// batch after batch, until it reaches spec.Size.
func generate(spec genSpec) (*genResult, error) {
	start := time.Now()
	f, err := os.Create(spec.Path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	pw := pcapgo.NewWriter(bw)
	if err := pw.WriteFileHeader(synth.Snaplen, layers.LinkTypeEthernet); err != nil {
		return nil, err
	}
	res := &genResult{Bytes: 24, Sessions: map[string]int{}, Messages: map[string]int{}}
	rng := rand.New(rand.NewPCG(spec.Seed, 0x6d61696c))
	g := newGenerator(rng, spec.MaxMsg)
	t := synth.DefaultStart
	session := 0
	lastReport := time.Now()
	for res.Packets == 0 || res.Bytes < spec.Size {
		c := synth.NewCapture(synth.LinkEthernet)
		var planned int64
		for i := 0; i < spec.Batch && planned < batchBytes; i++ {
			session++
			opts := synth.Options{
				Start: t.Add(time.Duration(i) * 3 * time.Millisecond),
				MSS:   spec.MSS,
				Gap:   5 * time.Microsecond,
				Think: 500 * time.Microsecond,
			}
			planned += g.session(c, session, opts, res)
		}
		pkts, err := c.Packets()
		if err != nil {
			return nil, err
		}
		for _, p := range pkts {
			ci := gopacket.CaptureInfo{Timestamp: p.Time, CaptureLength: len(p.Data), Length: len(p.Data)}
			if err := pw.WritePacket(ci, p.Data); err != nil {
				return nil, err
			}
			res.Bytes += int64(16 + len(p.Data))
			res.Packets++
		}
		t = pkts[len(pkts)-1].Time.Add(time.Millisecond)
		if spec.stderr != nil && time.Since(lastReport) > 5*time.Second {
			fmt.Fprintf(spec.stderr, "  %s: %d MB, %d sessions\n", spec.Path, res.Bytes>>20, session)
			lastReport = time.Now()
		}
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	res.Took = time.Since(start)
	return res, f.Close()
}

// generator writes the sessions' scripts.
type generator struct {
	rng    *rand.Rand
	maxMsg int
	text   []string // lines of text, without CRLF
	b64    []string // lines of base64
}

func newGenerator(rng *rand.Rand, maxMsg int) *generator {
	g := &generator{rng: rng, maxMsg: maxMsg}
	words := strings.Fields("the quarterly report is attached please review before the meeting on " +
		"thursday we need numbers for storage network licences and the new mail relay " +
		"regards from the operations team about backups invoices delivery queue status")
	for i := 0; i < 4096; i++ {
		var sb strings.Builder
		for sb.Len() < 60+rng.IntN(14) {
			if sb.Len() > 0 {
				sb.WriteByte(' ')
			}
			sb.WriteString(words[rng.IntN(len(words))])
		}
		g.text = append(g.text, sb.String())
	}
	raw := make([]byte, 57*8192) // 57 bytes encode to one 76-char line
	for i := range raw {
		raw[i] = byte(rng.Uint32())
	}
	for i := 0; i < len(raw); i += 57 {
		g.b64 = append(g.b64, base64.StdEncoding.EncodeToString(raw[i:i+57]))
	}
	return g
}

// msgSize draws a message size from 1 KB to maxMsg: mostly small, a few
// large, the way a mail store looks.
func (g *generator) msgSize() int {
	r := g.rng.Float64()
	var lo, hi float64
	switch {
	case r < 0.70:
		lo, hi = 1<<10, 16<<10
	case r < 0.90:
		lo, hi = 16<<10, 1<<20
	case r < 0.99:
		lo, hi = 1<<20, 5<<20
	default:
		lo, hi = 5<<20, float64(g.maxMsg)
	}
	hi = min(hi, float64(g.maxMsg))
	lo = min(lo, hi)
	return int(lo + g.rng.Float64()*(hi-lo))
}

// message builds an RFC 5322 message of about size bytes with CRLF line
// ends and no line starting with a dot (so it needs no dot-stuffing): plain
// text when small, else multipart with a base64 attachment.
func (g *generator) message(id string, size int) string {
	var sb strings.Builder
	sb.Grow(size + 1024)
	fmt.Fprintf(&sb, "From: Sender %s <sender-%s@example.org>\r\nTo: <rcpt@example.net>\r\n", id, id)
	fmt.Fprintf(&sb, "Subject: Report %s\r\nDate: Mon, 03 Mar 2025 09:30:00 +0000\r\nMessage-ID: <%s@example.org>\r\nMIME-Version: 1.0\r\n", id, id)
	if size < 32<<10 {
		sb.WriteString("Content-Type: text/plain; charset=utf-8\r\n\r\n")
		for i := g.rng.IntN(len(g.text)); sb.Len() < size; i++ {
			sb.WriteString(g.text[i%len(g.text)])
			sb.WriteString("\r\n")
		}
		return sb.String()
	}
	const boundary = "=_mailbench_boundary"
	fmt.Fprintf(&sb, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", boundary, boundary)
	for i := 0; i < 20; i++ {
		sb.WriteString(g.text[g.rng.IntN(len(g.text))])
		sb.WriteString("\r\n")
	}
	fmt.Fprintf(&sb, "--%s\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"data-%s.bin\"\r\n\r\n", boundary, id)
	for i := g.rng.IntN(len(g.b64)); sb.Len() < size; i++ {
		sb.WriteString(g.b64[i%len(g.b64)])
		sb.WriteString("\r\n")
	}
	fmt.Fprintf(&sb, "--%s--\r\n", boundary)
	return sb.String()
}

// session scripts one session of a random protocol and returns its
// message bytes.
func (g *generator) session(c *synth.Capture, n int, opts synth.Options, res *genResult) int64 {
	client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(n >> 8), byte(n)}), uint16(20000+n%40000))
	msgs := 1 + g.rng.IntN(3)
	var total int64
	r := g.rng.IntN(10)
	switch {
	case r < 6:
		cn := c.Conn(client, netip.MustParseAddrPort("10.0.0.25:25"), opts)
		cn.Server("220 mx.example.net ESMTP Postfix\r\n")
		cn.Client(fmt.Sprintf("EHLO client-%d.example.org\r\n", n))
		cn.Server("250-mx.example.net\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250 8BITMIME\r\n")
		for i := 0; i < msgs; i++ {
			id := fmt.Sprintf("s%d.%d", n, i)
			m := g.message(id, g.msgSize())
			cn.Client(fmt.Sprintf("MAIL FROM:<sender-%s@example.org>\r\n", id))
			cn.Server("250 2.1.0 Ok\r\n")
			cn.Client("RCPT TO:<rcpt@example.net>\r\n")
			cn.Server("250 2.1.5 Ok\r\n")
			cn.Client("DATA\r\n")
			cn.Server("354 End data with <CR><LF>.<CR><LF>\r\n")
			cn.Client(m + ".\r\n")
			cn.Server(fmt.Sprintf("250 2.0.0 Ok: queued as Q%d\r\n", n*4+i))
			total += int64(len(m))
		}
		cn.Client("QUIT\r\n")
		cn.Server("221 2.0.0 Bye\r\n")
		cn.Close(synth.ClientSide)
		res.Sessions["smtp"]++
		res.Messages["smtp"] += msgs
	case r < 8:
		cn := c.Conn(client, netip.MustParseAddrPort("10.0.0.110:110"), opts)
		cn.Server("+OK Dovecot ready.\r\n")
		cn.Client(fmt.Sprintf("USER user%d\r\n", n))
		cn.Server("+OK\r\n")
		cn.Client("PASS secret\r\n")
		cn.Server("+OK Logged in.\r\n")
		cn.Client("STAT\r\n")
		cn.Server(fmt.Sprintf("+OK %d 0\r\n", msgs))
		for i := 1; i <= msgs; i++ {
			m := g.message(fmt.Sprintf("p%d.%d", n, i), g.msgSize())
			cn.Client(fmt.Sprintf("RETR %d\r\n", i))
			cn.Server(fmt.Sprintf("+OK %d octets\r\n%s.\r\n", len(m), m))
			cn.Client(fmt.Sprintf("DELE %d\r\n", i))
			cn.Server("+OK Marked to be deleted.\r\n")
			total += int64(len(m))
		}
		cn.Client("QUIT\r\n")
		cn.Server("+OK Logging out, messages deleted.\r\n")
		cn.Close(synth.ServerSide)
		res.Sessions["pop3"]++
		res.Messages["pop3"] += msgs
	default:
		cn := c.Conn(client, netip.MustParseAddrPort("10.0.0.143:143"), opts)
		cn.Server("* OK [CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN] Dovecot ready.\r\n")
		cn.Client(fmt.Sprintf("a1 LOGIN user%d secret\r\n", n))
		cn.Server("a1 OK [CAPABILITY IMAP4rev1 LITERAL+] Logged in\r\n")
		cn.Client("a2 SELECT INBOX\r\n")
		cn.Server(fmt.Sprintf("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n* %d EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 1700000000] UIDs valid\r\na2 OK [READ-WRITE] Select completed.\r\n", msgs))
		for i := 1; i <= msgs; i++ {
			m := g.message(fmt.Sprintf("i%d.%d", n, i), g.msgSize())
			cn.Client(fmt.Sprintf("a%d UID FETCH %d (UID FLAGS BODY.PEEK[])\r\n", 2+i, 100+i))
			cn.Server(fmt.Sprintf("* %d FETCH (UID %d FLAGS (\\Seen) BODY[] {%d}\r\n%s)\r\na%d OK Fetch completed.\r\n", i, 100+i, len(m), m, 2+i))
			total += int64(len(m))
		}
		cn.Client("a9 LOGOUT\r\n")
		cn.Server("* BYE Logging out\r\na9 OK Logout completed.\r\n")
		cn.Close(synth.ClientSide)
		res.Sessions["imap"]++
		res.Messages["imap"] += msgs
	}
	res.Payload += total
	return total
}
