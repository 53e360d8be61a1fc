package message

import (
	"strings"
	"sync"

	"github.com/mailtap/mailtap/decode"
)

// addrCache remembers what recent address field values parsed to. The
// same values come back all the time: a message relayed by SMTP and then
// retrieved by POP3 or IMAP carries the same From and To, and so do a
// mailing list's messages or one correspondent's. net/mail allocates about
// a dozen times per address; a value seen before costs one map lookup.
//
// It is shared by all parsers (of all workers) and bounded: at most
// addrCacheMax values of at most addrKeyMax bytes, and when it is full it
// is emptied. What it stores is copied out of the header it came from, so
// it keeps no header alive.
type addrCache struct {
	mu sync.Mutex
	m  map[string]addrResult
}

// addrResult is what one field value gave: its addresses and the anomalies
// parsing it raised (raised again on a hit, into the message at hand).
type addrResult struct {
	addrs []string // never modified once stored
	anoms []string
}

const (
	addrCacheMax = 1024
	addrKeyMax   = 512
)

var addrs = addrCache{m: make(map[string]addrResult)}

func (c *addrCache) get(v string) (addrResult, bool) {
	if len(v) > addrKeyMax {
		return addrResult{}, false
	}
	c.mu.Lock()
	r, ok := c.m[v]
	c.mu.Unlock()
	return r, ok
}

func (c *addrCache) put(v string, r addrResult) {
	if len(v) > addrKeyMax {
		return
	}
	// One string holds the value and its addresses: two allocations
	// (it and the slice) per value stored, whatever the count.
	n := len(v)
	for _, a := range r.addrs {
		n += len(a)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(v)
	for _, a := range r.addrs {
		b.WriteString(a)
	}
	all := b.String()
	v, all = all[:len(v)], all[len(v):]
	stored := addrResult{addrs: make([]string, len(r.addrs)), anoms: r.anoms}
	for i, a := range r.addrs {
		stored.addrs[i], all = all[:len(a)], all[len(a):]
	}
	c.mu.Lock()
	if len(c.m) >= addrCacheMax {
		clear(c.m)
	}
	c.m[v] = stored
	c.mu.Unlock()
}

// parseAddressValue returns the addresses in one address field value,
// from addrs when it was seen before, and raises the anomalies parsing it
// raises.
func (p *impl) parseAddressValue(v string) []string {
	r, ok := addrs.get(v)
	if !ok {
		// parse with an empty anomaly list, so that what this value
		// raises is known even when the message raised it already
		saved := p.anoms
		p.anoms = nil
		r.addrs = p.parseAddresses(v)
		r.anoms = p.anoms
		p.anoms = saved
		addrs.put(v, r)
	}
	for _, a := range r.anoms {
		p.anomaly(decode.Anomaly(a))
	}
	return r.addrs
}

// parseAddresses parses one address field value with net/mail, and when
// net/mail rejects it takes what it can (looseAddresses).
func (p *impl) parseAddresses(v string) []string {
	list, err := p.ap.ParseList(v)
	if err != nil {
		p.anomaly(decode.AnomalyBadAddressList)
		return p.looseAddresses(v)
	}
	out := make([]string, 0, len(list))
	for _, a := range list {
		out = append(out, p.formatAddress(a.Name, a.Address))
	}
	return out
}
