package replay

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/dispatch"
	"github.com/mailtap/mailtap/replay/server/mailstore"
)

// TypeSession is the record type of a replay result.
const TypeSession = "replay.session"

// Skip reasons (Result.Skipped starts with one of them).
const (
	SkipEncrypted  = "encrypted"
	SkipPartial    = "partial"
	SkipMidstream  = "midstream"
	SkipTooLong    = "too long"
	SkipNoClient   = "no client bytes"
	SkipAuth       = "auth cannot be replayed"
	SkipProtocol   = "protocol"
	SkipNoTarget   = "no target"
	SkipNothingRun = "nothing sent"
)

// Result is the outcome of replaying one session.
type Result struct {
	V       int          `json:"v"`
	Type    string       `json:"type"`
	Session uint64       `json:"session"`
	Proto   decode.Proto `json:"proto"`
	Client  string       `json:"client"`
	Server  string       `json:"server"`
	Target  string       `json:"target,omitempty"`
	Compare string       `json:"compare,omitempty"`
	// Commands is how many commands (the greeting included) were
	// compared; Matched how many showed no divergence.
	Commands int `json:"commands"`
	Matched  int `json:"matched"`
	// Divergences counts every divergence; Diverged lists the first
	// maxDiverged of them.
	Divergences int          `json:"divergences"`
	Diverged    []Divergence `json:"diverged,omitempty"`
	// Unverifiable counts the comparisons that depend on content the
	// capture never showed (placeholders of the built-in server): not
	// divergences, and their commands do not count as matched;
	// Unverified lists the first maxDiverged.
	Unverifiable int          `json:"unverifiable,omitempty"`
	Unverified   []Divergence `json:"unverified,omitempty"`
	// TextDiffs counts reply texts that differ (after masking); Details
	// lists the first maxDiverged. They never fail the run.
	TextDiffs int      `json:"text_diffs"`
	Details   []Detail `json:"details,omitempty"`
	// Timeouts counts turns the server did not finish answering within
	// the timeout; Abandoned is set when one never finished and the
	// rest of the session was not sent (NotSent commands).
	Timeouts  int  `json:"timeouts,omitempty"`
	Abandoned bool `json:"abandoned,omitempty"`
	NotSent   int  `json:"not_sent,omitempty"`
	// Stopped says why the replay stopped early without a divergence
	// (tls_not_decrypted: the session went TLS and the capture has no
	// cleartext of what followed).
	Stopped string `json:"stopped,omitempty"`
	// NotCompared lists the default rules that applied only because the
	// target was the built-in server (its own capabilities).
	NotCompared []string `json:"not_compared,omitempty"`
	Skipped     string   `json:"skipped,omitempty"`
	Error       string   `json:"error,omitempty"`

	// latencies (ms) of the captured and replayed commands, for the summary.
	capLat, repLat []float64
	start          time.Time
}

// Failed reports whether the session was replayed and did not match.
func (r *Result) Failed() bool { return r.Skipped == "" && (r.Divergences > 0 || r.Error != "") }

// maxDiverged bounds the divergences and details listed per session.
const maxDiverged = 32

// Options configure Replay.
type Options struct {
	// Timeout bounds each turn's wait for the server; zero means 5 s. A
	// turn not answered within it is a timeout divergence; the session
	// waits up to Abandon more for the answer before giving up.
	Timeout time.Duration
	Abandon time.Duration
	// MaxServerBytes bounds the replayed server bytes kept per session;
	// zero means 64 MiB.
	MaxServerBytes int64
	// Compare says what is compared; nil means full with the defaults.
	Compare *CompareConfig
	// Users are the passwords to answer CRAM-MD5 and APOP with and to
	// put in PLAIN, LOGIN and USER/PASS.
	Users map[string]string
	// Skip lists verbs (upper case) left out of the replay.
	Skip map[string]bool
	// TLSConfig is used for implicit TLS targets and STARTTLS upgrades.
	TLSConfig *tls.Config
	// TLS says the target speaks implicit TLS.
	TLS bool
	// Store is the built-in server's store when that is the target:
	// SMTP deliveries are checked to have the captured message's hash.
	Store *mailstore.Store
	// Pace, when Speed > 0, holds every session start and client turn
	// to its captured time relative to Captured, divided by Speed, from
	// Live (the run's start); Speed 0 sends as soon as answered.
	Pace Pace

	run *runState
}

func (o *Options) defaults() {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Abandon <= 0 {
		o.Abandon = 2 * o.Timeout
	}
	if o.MaxServerBytes <= 0 {
		o.MaxServerBytes = 64 << 20
	}
	if o.Compare == nil {
		o.Compare, _ = NewCompareConfig(CompareFull, nil, false)
	}
	if o.run == nil {
		o.run = newRunState()
	}
}

// Pace says when to send: see Options.Pace.
type Pace struct {
	Speed          float64
	Live, Captured time.Time
}

// wait sleeps until the live time that corresponds to captured time at.
func (p Pace) wait(at time.Time) {
	if p.Speed <= 0 || at.IsZero() || p.Captured.IsZero() || at.Before(p.Captured) {
		return
	}
	due := p.Live.Add(time.Duration(float64(at.Sub(p.Captured)) / p.Speed))
	if d := time.Until(due); d > 0 {
		time.Sleep(d)
	}
}

// lateWindow is when the answers of a timed-out turn were late: from
// the turn's send time plus the timeout until its last answer bytes
// (zero: never complete).
type lateWindow struct{ from, until time.Time }

// chunk is server bytes with their arrival time.
type chunk struct {
	ts   time.Time
	data []byte
}

// liveTurn is one replayed turn: the client bytes sent and when, and the
// server's answer as it arrived.
type liveTurn struct {
	client []byte
	sent   time.Time
	server []chunk
}

// Replay drives s against addr and compares: see ReplayResult.
func Replay(s *Session, addr string, o Options) *Result {
	o.defaults()
	ex := Drive(s, addr, o)
	return ex.Compare(o)
}

// Exchange is one driven session, not yet compared.
type Exchange struct {
	s        *Session
	res      *Result
	greeting []chunk
	turns    []liveTurn
	timedOut int // turns that timed out
	// late are the timed-out turns' windows of late answers.
	late      []lateWindow
	abandoned bool
}

// Drive replays s against addr: the greeting is read, then every turn's
// client bytes (rewritten for --user, without --skip verbs) are sent and
// the answer read until it is as complete as the captured one. A turn not
// answered within the timeout is waited for up to Abandon more; past it
// the session is abandoned (nothing more is sent).
func Drive(s *Session, addr string, o Options) *Exchange {
	o.defaults()
	res := &Result{V: decode.SchemaVersion, Type: TypeSession, Session: s.ID, Proto: s.Proto,
		Client: s.Conn.Client.String(), Server: s.Conn.Server.String(), Target: addr, Compare: o.Compare.Level}
	ex := &Exchange{s: s, res: res}
	if s.Skip == "" {
		s.Skip = authSkip(s, o.Users)
	}
	if s.Skip != "" {
		res.Target, res.Compare, res.Skipped = "", "", s.Skip
		return ex
	}
	want, live := newFramer(s.Proto), newFramer(s.Proto)
	if want == nil {
		res.Target, res.Compare, res.Skipped = "", "", fmt.Sprintf("%s %q cannot be replayed", SkipProtocol, s.Proto)
		return ex
	}
	if s.Conn.ImplicitTLS && (addr == "" || !o.TLS) {
		res.Target, res.Compare, res.Skipped = "", "", "tls_not_decrypted: implicit TLS and no TLS target (--target "+string(s.Proto)+"s=HOST:PORT)"
		return ex
	}
	if addr == "" {
		res.Compare, res.Skipped = "", SkipNoTarget+": no server for "+string(s.Proto)
		return ex
	}
	o.Pace.wait(s.Conn.Start)
	res.start = time.Now()
	if s.Conn.ImplicitTLS && !Decrypted(s) {
		// Everything the client sent is ciphertext: check the target
		// takes the handshake and greets, then stop.
		if err := ProbeGreeting(s.Proto, addr, true, o.TLSConfig, o.Timeout); err != nil {
			res.Error = err.Error()
			return ex
		}
		res.Compare, res.Skipped = "", "tls_not_decrypted: implicit TLS (handshake and greeting checked)"
		return ex
	}
	conn, err := net.DialTimeout("tcp", addr, o.Timeout)
	if err != nil {
		res.Error = err.Error()
		return ex
	}
	if o.TLS {
		tc := tls.Client(conn, tlsConfig(o.TLSConfig, addr))
		tc.SetDeadline(time.Now().Add(o.Timeout))
		if err := tc.Handshake(); err != nil {
			conn.Close()
			res.Error = "TLS: " + err.Error()
			return ex
		}
		conn = tc
	}
	defer func() { conn.Close() }()
	d := &driver{conn: conn, live: live, timeout: o.Timeout, abandon: o.Abandon, max: o.MaxServerBytes}
	// Every server of these protocols greets first. When the capture has
	// no complete greeting (none at all, or one without its line end, in
	// crafted captures), the live greeting is still read here, and the
	// live count keeps that offset from the captured one. A greeting that
	// arrived late in the capture (after the client's first bytes) counts
	// in that turn instead: no offset.
	g := want.server(s.Greeting)
	offset := 0
	if g == 0 && (len(s.Greeting) > 0 || !hasGreeting(s)) {
		offset = 1
	}
	ex.greeting, err = d.read(g + offset)
	if err == nil && d.late {
		ex.timedOut++
	}
	var auths []decode.Auth
	if s.Record != nil {
		auths = s.Record.Auths
	}
	rw := newRewriter(s.Proto, o.Users, o.Skip, auths)
	for _, c := range ex.greeting {
		rw.server(c.data)
	}
	tlsAt := tlsTurn(s)
	for ti, t := range s.Turns {
		if err != nil {
			break
		}
		if ti == tlsAt {
			// The client asked for TLS: upgrade with the target. When
			// the capture holds only ciphertext from here, that checks
			// the target can, and the replay stops; a decrypted session
			// goes on over TLS.
			tc := tls.Client(conn, tlsConfig(o.TLSConfig, addr))
			tc.SetDeadline(time.Now().Add(o.Timeout))
			herr := tc.Handshake()
			conn = tc
			if herr != nil {
				res.Error = "STARTTLS upgrade: " + herr.Error()
			}
			if herr != nil || !Decrypted(s) {
				if !Decrypted(s) {
					res.Stopped = "tls_not_decrypted"
				}
				break
			}
			tc.SetDeadline(time.Time{})
			d.conn = tc
		}
		want.client(t.Client)
		n := want.server(t.Server)
		client, dropped := rw.client(t.Client)
		n -= dropped
		live.client(client)
		o.Pace.wait(t.At)
		lt := liveTurn{client: client, sent: time.Now()}
		if len(client) > 0 {
			conn.SetWriteDeadline(time.Now().Add(o.Timeout))
			if _, err = conn.Write(client); err != nil {
				if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
					// The server closed the connection before this turn:
					// compared as a session that ended there.
					err = errClosed
				}
				break
			}
		}
		lt.server, err = d.read(n + offset)
		if err == nil && s.Proto == decode.ProtoIMAP {
			// Unsolicited answers the captured client waited for before
			// its next turn (EXISTS during an IDLE, from another
			// session's delivery): wait for as many, within the timeout,
			// so the client does not say DONE before they come.
			if want, exists := trailingEvents(t.Server); want > 0 {
				var more []chunk
				more, err = d.readUntagged(want, exists, joinChunks(lt.server))
				lt.server = append(lt.server, more...)
			}
		}
		ex.turns = append(ex.turns, lt)
		for _, c := range lt.server {
			rw.server(c.data)
		}
		if d.late {
			ex.timedOut++
			// Answers that completed in this turn after the timeout came
			// late.
			w := lateWindow{from: lt.sent.Add(o.Timeout)}
			if n := len(lt.server); n > 0 && err == nil {
				w.until = lt.server[n-1].ts
			}
			ex.late = append(ex.late, w)
		}
	}
	if errors.Is(err, errAbandoned) {
		ex.abandoned = true
		err = nil
	}
	if err != nil && !errors.Is(err, errClosed) {
		res.Error = err.Error()
	}
	res.Timeouts = d.timeouts
	return ex
}

// tlsTurn returns the index of the first turn sent after a successful
// STARTTLS/STLS in the capture (its bytes are TLS), or -1.
func tlsTurn(s *Session) int {
	if s.Record == nil || s.Record.TLS == nil || !s.Record.TLS.StartTLS {
		return -1
	}
	if Decrypted(s) {
		// Plaintext all along: the turn after the STARTTLS/STLS one.
		for i, t := range s.Turns {
			if isStartTLS(t.Client) {
				return i + 1
			}
		}
		return -1
	}
	for i, t := range s.Turns {
		if looksTLS(t.Client) {
			return i
		}
	}
	return -1
}

// isStartTLS reports whether a client turn is a STARTTLS (SMTP, IMAP after
// its tag) or STLS (POP3) command.
func isStartTLS(p []byte) bool {
	f := strings.Fields(string(p))
	if len(f) == 0 || len(f) > 2 {
		return false
	}
	v := strings.ToUpper(f[len(f)-1])
	return v == "STARTTLS" || v == "STLS"
}

// looksTLS reports whether p starts with a TLS handshake record.
func looksTLS(p []byte) bool {
	return len(p) >= 3 && p[0] == 0x16 && p[1] == 0x03
}

func tlsConfig(c *tls.Config, addr string) *tls.Config {
	if c == nil {
		c = &tls.Config{}
	}
	c = c.Clone()
	if c.ServerName == "" {
		host, _, _ := net.SplitHostPort(addr)
		c.ServerName = host
	}
	return c
}

var (
	errAbandoned = errors.New("abandoned: no answer")
	errClosed    = errors.New("server closed the connection")
)

type driver struct {
	conn     net.Conn
	live     framer
	timeout  time.Duration
	abandon  time.Duration
	max      int64
	kept     int64
	count    int
	timeouts int
	late     bool // the last read went past the timeout
	buf      [32 << 10]byte
}

// read reads until the live count of responses reaches n. Past the
// timeout the turn is counted as timed out (late) and the read goes on
// until the abandon deadline; past that it returns errAbandoned. EOF
// returns errClosed.
func (d *driver) read(n int) ([]chunk, error) {
	var out []chunk
	d.late = false
	if d.count >= n {
		return out, nil
	}
	start := time.Now()
	d.conn.SetReadDeadline(start.Add(d.timeout))
	for d.count < n {
		k, err := d.conn.Read(d.buf[:])
		if k > 0 {
			d.count = d.live.server(d.buf[:k])
			if d.kept+int64(k) <= d.max {
				out = append(out, chunk{ts: time.Now(), data: bytes.Clone(d.buf[:k])})
				d.kept += int64(k)
			}
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if !d.late {
					d.late = true
					d.timeouts++
					d.conn.SetReadDeadline(start.Add(d.timeout + d.abandon))
					continue
				}
				return out, errAbandoned
			}
			if d.count >= n {
				return out, nil
			}
			return out, errClosed
		}
	}
	return out, nil
}

// trailingEvents counts the IMAP mailbox events ("* n EXISTS",
// "* n EXPUNGE", "* n FETCH") after the last tagged answer or
// continuation request of server bytes: what came unsolicited, after
// the answer the driver waits for (an IDLE's notifications). exists is
// the last EXISTS among them (0: none).
func trailingEvents(p []byte) (n int, exists int) {
	for _, l := range bytes.Split(p, []byte("\n")) {
		switch {
		case bytes.HasPrefix(l, []byte("* ")):
			f := bytes.Fields(l)
			if len(f) >= 3 && isDigit(f[1][0]) {
				switch string(bytes.ToUpper(f[2])) {
				case "EXISTS":
					n++
					exists, _ = strconv.Atoi(string(f[1]))
				case "EXPUNGE", "FETCH":
					n++
				}
			}
		case len(l) > 0 && (l[0] == '+' || isDigit(l[0]) || l[0] >= 'A' && l[0] <= 'z') && bytes.Contains(l, []byte(" ")) && !bytes.HasPrefix(l, []byte(" ")):
			// A tagged answer or a continuation request (lines of a
			// literal may look like it too: an approximation).
			if f := bytes.Fields(l); l[0] == '+' || len(f) >= 2 && isStatus(f[1]) {
				n, exists = 0, 0
			}
		}
	}
	return n, exists
}

func isStatus(w []byte) bool {
	switch string(bytes.ToUpper(w)) {
	case "OK", "NO", "BAD", "BYE":
		return true
	}
	return false
}

func joinChunks(cs []chunk) []byte {
	var out []byte
	for _, c := range cs {
		out = append(out, c.data...)
	}
	return out
}

// readUntagged reads until the turn's server bytes (got so far) end with
// want mailbox events — or, when the capture's ended with an EXISTS, an
// EXISTS at least as high (a server may announce two arrivals at once) —
// or the timeout passes; a missing one is not a timeout (the comparison
// shows it), and what arrives is kept.
func (d *driver) readUntagged(want, exists int, got []byte) ([]chunk, error) {
	var out []chunk
	enough := func() bool {
		n, e := trailingEvents(got)
		if exists > 0 {
			return e >= exists
		}
		return n >= want
	}
	if enough() {
		return out, nil
	}
	d.conn.SetReadDeadline(time.Now().Add(d.timeout))
	for !enough() {
		k, err := d.conn.Read(d.buf[:])
		if k > 0 {
			d.count = d.live.server(d.buf[:k])
			got = append(got, d.buf[:k]...)
			if d.kept+int64(k) <= d.max {
				out = append(out, chunk{ts: time.Now(), data: bytes.Clone(d.buf[:k])})
				d.kept += int64(k)
			}
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return out, nil
			}
			return out, errClosed
		}
	}
	return out, nil
}

// event is bytes of one direction at a time, fed to a decoder.
type event struct {
	dir  decode.Direction
	data []byte
	ts   time.Time
}

// capturedEvents lays the captured greeting and turns out one
// millisecond apart (their latencies come from the captured records).
func capturedEvents(s *Session) []event {
	ts := s.Conn.Start
	var ev []event
	if len(s.Greeting) > 0 {
		ev = append(ev, event{decode.ServerToClient, s.Greeting, ts})
	}
	for _, t := range s.Turns {
		ts = ts.Add(time.Millisecond)
		ev = append(ev, event{decode.ClientToServer, t.Client, ts})
		if len(t.Server) > 0 {
			ts = ts.Add(time.Millisecond)
			ev = append(ev, event{decode.ServerToClient, t.Server, ts})
		}
	}
	return ev
}

// liveEvents lays the replayed exchange out at the times it happened.
func (ex *Exchange) liveEvents() []event {
	var ev []event
	for _, c := range ex.greeting {
		ev = append(ev, event{decode.ServerToClient, c.data, c.ts})
	}
	for _, t := range ex.turns {
		ev = append(ev, event{decode.ClientToServer, t.client, t.sent})
		for _, c := range t.server {
			ev = append(ev, event{decode.ServerToClient, c.data, c.ts})
		}
	}
	return ev
}

// decodeCommands decodes an exchange into command records.
func decodeCommands(s *Session, ev []event) []*decode.CommandRecord {
	var cmds []*decode.CommandRecord
	sink := decode.SinkFunc(func(r decode.Record) {
		if c, ok := r.(*decode.CommandRecord); ok {
			cmds = append(cmds, c)
		}
	})
	c := s.Conn
	c.Midstream = false
	if Decrypted(s) {
		c.ImplicitTLS = false // the exchange is plaintext
	}
	o := decode.Options{Level: decode.LevelCommands, ShowSecrets: true}
	newDec := dispatch.Protocols()[s.Proto]
	if newDec == nil {
		return nil
	}
	dec := newDec(c, o, sink)
	ts := c.Start
	for _, e := range ev {
		if len(e.data) == 0 {
			continue
		}
		ts = e.ts
		dec.Data(e.dir, e.data, ts)
	}
	dec.Close(decode.CloseFIN, ts.Add(time.Millisecond))
	return cmds
}

// statusKey renders a status for comparison ("" when unanswered).
func statusKey(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// Compare observes the captured and the replayed exchange with the same
// decoders and compares them (o.Compare), filling the result.
func (ex *Exchange) Compare(o Options) *Result {
	o.defaults()
	res := ex.res
	s := ex.s
	if res.Skipped != "" {
		return res
	}
	want := observe(s, capturedEvents(s), hasGreeting(s), o.Skip)
	got := observe(s, ex.liveEvents(), true, nil)
	if want[0].Verb == "" {
		got[0] = Obs{} // a crafted capture without a greeting
	}
	if o.Store != nil && s.Proto == decode.ProtoSMTP {
		checkDelivered(s, want, got, o.Store)
	}
	for _, c := range s.Commands {
		if c.LatencyMS != nil {
			res.capLat = append(res.capLat, *c.LatencyMS)
		}
	}
	// A command timed out when its answer completed in a timed-out turn
	// past the timeout (not when its latency is long: an IDLE's answer
	// comes when the client says DONE), or never came in a session with
	// a timed-out turn.
	timedOut := map[int]bool{}
	for i, g := range got {
		if i == 0 {
			continue
		}
		if g.Latency != nil {
			res.repLat = append(res.repLat, *g.Latency)
			done := g.At.Add(time.Duration(*g.Latency * float64(time.Millisecond)))
			for _, w := range ex.late {
				if done.After(w.from) && (w.until.IsZero() || !done.After(w.until)) {
					timedOut[i] = true
				}
			}
		} else if g.Status == nil && (ex.timedOut > 0 || ex.abandoned) {
			timedOut[i] = true
		}
	}
	// Commands left out by --skip are taken out of the captured list.
	if len(o.Skip) > 0 {
		kept := want[:0:0]
		for i, w := range want {
			if i == 0 || !o.Skip[w.Verb] {
				kept = append(kept, w)
			}
		}
		want = kept
	}
	notSent := len(want) + len(got)
	if ex.abandoned || res.Stopped != "" {
		notSent = len(got)
		if res.Stopped != "" {
			// The client's bytes after the upgrade were not sent: compare
			// up to the STARTTLS command.
			want = want[:min(len(want), len(got))]
		}
	}
	res.Abandoned = ex.abandoned
	if ex.abandoned {
		res.NotSent = max(0, len(want)-len(got))
	}
	cc := o.Compare
	if o.Store != nil {
		// The built-in server: its own capabilities are not compared.
		res.NotCompared = cc.notCompared(string(s.Proto))
		cc = cc.forBuiltin()
	}
	cmp := cc.compareObs(s.ID, string(s.Proto), want, got, timedOut, notSent, o.run)
	res.Commands, res.Matched = cmp.commands, cmp.matched
	res.Divergences, res.Unverifiable = len(cmp.divs), len(cmp.unverified)
	res.Unverified = cmp.unverified[:min(len(cmp.unverified), maxDiverged)]
	res.Diverged = cmp.divs[:min(len(cmp.divs), maxDiverged)]
	res.TextDiffs = len(cmp.details)
	res.Details = cmp.details[:min(len(cmp.details), maxDiverged)]
	if ex.timedOut > 0 && !ex.abandoned && len(timedOut) == 0 {
		// A turn was late but no command record shows it (the late
		// answer was a continuation): still a divergence.
		res.Divergences++
		res.Diverged = append(res.Diverged, Divergence{Session: s.ID, Field: "turn", Kind: KindTimeout,
			Replayed: fmt.Sprintf("answer after more than %s", o.Timeout)})
	}
	return res
}

// hasGreeting reports whether the captured server's first line is a
// greeting: SMTP 220 (or 421/554), POP3 +OK/-ERR, IMAP "* OK"/PREAUTH/BYE.
func hasGreeting(s *Session) bool {
	first := s.Greeting
	for i := 0; len(first) == 0 && i < len(s.Turns); i++ {
		first = s.Turns[i].Server
	}
	return greetingOK(s.Proto, first)
}

// greetingOK reports whether a server's first bytes are a greeting of
// the protocol.
func greetingOK(p decode.Proto, first []byte) bool {
	switch p {
	case decode.ProtoSMTP:
		return bytes.HasPrefix(first, []byte("220")) || bytes.HasPrefix(first, []byte("421")) || bytes.HasPrefix(first, []byte("554"))
	case decode.ProtoPOP3:
		return bytes.HasPrefix(first, []byte("+OK")) || bytes.HasPrefix(first, []byte("-ERR"))
	case decode.ProtoIMAP:
		up := bytes.ToUpper(first[:min(len(first), 10)])
		return bytes.HasPrefix(up, []byte("* OK")) || bytes.HasPrefix(up, []byte("* PREAUTH")) || bytes.HasPrefix(up, []byte("* BYE"))
	}
	return true
}

// ProbeGreeting connects to addr, reads the first line and checks that it
// is a greeting of protocol p; it says goodbye and closes.
func ProbeGreeting(p decode.Proto, addr string, useTLS bool, tc *tls.Config, timeout time.Duration) error {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	if useTLS {
		t := tls.Client(conn, tlsConfig(tc, addr))
		if err := t.Handshake(); err != nil {
			return fmt.Errorf("TLS: %w", err)
		}
		conn = t
	}
	var got []byte
	buf := make([]byte, 512)
	for !bytes.Contains(got, []byte("\n")) && len(got) < 512 {
		n, err := conn.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			if len(got) == 0 {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					return fmt.Errorf("no greeting within %s", timeout)
				}
				return fmt.Errorf("no greeting: %v", err)
			}
			break
		}
	}
	if !greetingOK(p, got) {
		line, _, _ := bytes.Cut(got, []byte("\n"))
		return fmt.Errorf("not a %s server: its greeting is %q", p, strings.TrimSpace(string(line[:min(len(line), 80)])))
	}
	bye := map[decode.Proto]string{decode.ProtoSMTP: "QUIT\r\n", decode.ProtoPOP3: "QUIT\r\n", decode.ProtoIMAP: "Z LOGOUT\r\n"}[p]
	conn.Write([]byte(bye))
	return nil
}

// checkDelivered adds a "delivered sha256" field to every accepted final
// DATA/BDAT: the captured message's hash, and on the replayed side the
// same hash when a message delivered to one of its recipients on the
// built-in server (its Received header taken off) has it.
func checkDelivered(s *Session, want, got []Obs, st *mailstore.Store) {
	var accepted []*decode.SMTPMail
	for _, m := range s.mails {
		if m.Status == decode.TxAccepted && m.Message != nil {
			accepted = append(accepted, m)
		}
	}
	k := 0
	for i := range want {
		w := &want[i]
		if k >= len(accepted) || (w.Verb != "DATA" && w.Verb != "BDAT") || !slices.ContainsFunc(w.Fields, func(f Field) bool { return f.Key == "RCPT" }) {
			continue
		}
		if c, ok := w.Status.(int); !ok || c/100 != 2 {
			continue
		}
		m := accepted[k]
		k++
		sum := "sha256:" + m.Message.SHA256
		w.Fields = append(w.Fields, valueField("delivered sha256", "delivered", sum))
		if i >= len(got) {
			continue
		}
		v := "no message delivered with this hash"
		for _, rc := range m.RcptTo {
			local, _, _ := strings.Cut(rc.Addr, "@")
			if !rc.Accepted || local == "" {
				continue
			}
			snap, err := st.Snapshot(local, mailstore.Inbox)
			if err != nil {
				continue
			}
			for _, dm := range snap.Messages {
				raw, err := dm.Body() // read from its file in a disk store
				if err == nil && sha(withoutFirstField(raw)) == sum {
					v = sum
				}
			}
		}
		got[i].Fields = append(got[i].Fields, valueField("delivered sha256", "delivered", v))
	}
}

// withoutFirstField takes off a message's first header field (the
// server's Received line and its continuations).
func withoutFirstField(raw []byte) []byte {
	i := bytes.IndexByte(raw, '\n')
	for i >= 0 && i+1 < len(raw) && (raw[i+1] == ' ' || raw[i+1] == '\t') {
		j := bytes.IndexByte(raw[i+1:], '\n')
		if j < 0 {
			return nil
		}
		i += 1 + j
	}
	if i < 0 {
		return raw
	}
	return raw[i+1:]
}
