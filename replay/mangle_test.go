package replay

import (
	"slices"
	"testing"
	"time"

	"github.com/mailtap/mailtap/replay/mangle"
)

// A target behind a proxy that stops advertising STARTTLS and 8BITMIME
// and answers 5.7.1 where the server says 5.1.1: the EHLO set and the
// RCPT code diverge; the same proxy holding the MAIL answer past the
// timeout: a timeout divergence on MAIL.
func TestReplayThroughMangleProxy(t *testing.T) {
	rec, ss := loadPcap(t, "gen-smtp-pipelining.pcap")
	srv, addrs, err := StartServer(rec.Seed(ss), Protos(ss)...)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	px, err := mangle.Start("127.0.0.1:0", mangle.Config{Target: addrs["smtp"], Drop: []string{"STARTTLS", "8BITMIME"},
		Codes: map[string]string{"5.1.1": "5.7.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	direct := Replay(ss[0], addrs["smtp"], Options{})
	r := Replay(ss[0], px.Addr(), Options{})
	var ehloDirect, ehlo, code *Divergence
	for i, d := range direct.Diverged {
		if d.Field == "EHLO" {
			ehloDirect = &direct.Diverged[i]
		}
	}
	for i, d := range r.Diverged {
		switch {
		case d.Field == "EHLO":
			ehlo = &r.Diverged[i]
		case d.Field == "code" && d.Verb == "RCPT" && d.Index == 4:
			code = &r.Diverged[i]
		}
	}
	if ehlo == nil || !slices.Contains(ehlo.Removed, "STARTTLS") || !slices.Contains(ehlo.Removed, "8BITMIME") ||
		(ehloDirect != nil && (slices.Contains(ehloDirect.Removed, "STARTTLS") || slices.Contains(ehloDirect.Removed, "8BITMIME"))) {
		t.Errorf("EHLO: direct %+v, through the proxy %+v", ehloDirect, ehlo)
	}
	if code == nil || code.Captured != "5.1.1" || code.Replayed != "5.7.1" {
		t.Errorf("RCPT code: %+v", r.Diverged)
	}

	slow, err := mangle.Start("127.0.0.1:0", mangle.Config{Target: addrs["smtp"], DelayVerb: "MAIL", Delay: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	r = Replay(ss[0], slow.Addr(), Options{Timeout: 150 * time.Millisecond, Abandon: 3 * time.Second})
	i := slices.IndexFunc(r.Diverged, func(d Divergence) bool { return d.Kind == KindTimeout })
	// MAIL, RCPT, RCPT and DATA were one pipelined turn: all late.
	if r.Timeouts != 1 || i < 0 || r.Diverged[i].Verb != "MAIL" || r.Diverged[i].Index != 2 || r.Abandoned {
		t.Errorf("delayed MAIL: %+v", r)
	}
}
