package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// suricataFilter is one positive SMTP check of a suricata-verify
// test.yaml: the smtp.* and email.* values that must all hold on one event
// (one transaction of one session), the keys it must not have, and the
// number of events it expects.
type suricataFilter struct {
	fields map[string]string
	absent []string
	count  int // -1: not given
	txID   int // -1: not given
}

// suricataFacts reads the positive SMTP checks of a suricata-verify
// test.yaml: filters that match event_type smtp with a count other than
// 0. It is a line reader for the simple YAML those files use, not a YAML
// parser.
func suricataFacts(t *testing.T, path string) (pcap string, filters []suricataFilter) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var block map[string]string
	flush := func() {
		// A filter for releases before 8.0.7 (lt-version) describes
		// behaviour Suricata has since dropped (a trailing QUIT
		// transaction); the others describe the current one.
		if block != nil && block["event_type"] == "smtp" && block["count"] != "0" && block["lt-version"] == "" {
			sf := suricataFilter{fields: map[string]string{}, count: -1, txID: -1}
			for k, v := range block {
				if strings.HasPrefix(k, "smtp.") || strings.HasPrefix(k, "email.") {
					sf.fields[k] = v
				}
			}
			if n, err := strconv.Atoi(block["count"]); err == nil {
				sf.count = n
			}
			if n, err := strconv.Atoi(block["tx_id"]); err == nil {
				sf.txID = n
			}
			list := block["not-has-key"]
			if strings.HasPrefix(list, "[") {
				list = strings.TrimSuffix(list[1:], "]")
			}
			for _, k := range strings.Split(list, ",") {
				if k = strings.Trim(strings.TrimSpace(k), `"'`); k != "" {
					sf.absent = append(sf.absent, k)
				}
			}
			filters = append(filters, sf)
		}
		block = nil
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "pcap:") {
			pcap = strings.TrimSpace(strings.TrimPrefix(line, "pcap:"))
			continue
		}
		if strings.HasPrefix(line, "- filter:") || strings.HasPrefix(line, "- ") && !strings.Contains(line, ":") {
			flush()
			block = map[string]string{}
			continue
		}
		if block == nil || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.Trim(strings.TrimSpace(v), `"'`)
		block[strings.TrimSpace(k)] = v
	}
	flush()
	return pcap, filters
}

// suricataKeys are the keys compared, each with the field of ours it
// names; indexed keys (smtp.rcpt_to[1]) compare the element at that index.
var suricataKeys = map[string]func(ev record, i int) (string, bool){
	"smtp.helo": func(ev record, _ int) (string, bool) { return ev.str("helo"), ev.str("helo") != "" },
	// A transaction without MAIL has mail_from "", as the null path <>
	// does: our records cannot say "no MAIL" apart, so "" is absent for a
	// not-has-key check and "<>" for a value check.
	"smtp.mail_from": func(ev record, _ int) (string, bool) { return ev.str("mail_from"), ev.str("mail_from") != "" },
	"smtp.rcpt_to": func(ev record, i int) (string, bool) {
		l := ev.list("rcpt_to")
		if i >= len(l) {
			return "", false
		}
		return record(l[i].(map[string]any)).str("addr"), true
	},
	"email.from": func(ev record, _ int) (string, bool) {
		m := ev.obj("message")
		return m.str("from"), m.str("from") != ""
	},
	"email.to":         func(ev record, i int) (string, bool) { return nth(ev.obj("message").list("to"), i) },
	"email.cc":         func(ev record, i int) (string, bool) { return nth(ev.obj("message").list("cc"), i) },
	"email.subject":    func(ev record, _ int) (string, bool) { m := ev.obj("message"); return m.str("subject"), m != nil },
	"email.message_id": func(ev record, _ int) (string, bool) { m := ev.obj("message"); return m.str("message_id"), m != nil },
	"email.attachment": func(ev record, i int) (string, bool) {
		l := ev.obj("message").list("attachments")
		if i >= len(l) {
			return "", false
		}
		return record(l[i].(map[string]any)).str("filename"), true
	},
}

func nth(l []any, i int) (string, bool) {
	if i >= len(l) {
		return "", false
	}
	s, _ := l[i].(string)
	return s, true
}

// suricataKey splits "smtp.rcpt_to[1]" into its field function and index.
func suricataKey(k string) (func(record, int) (string, bool), int) {
	i := 0
	if b := strings.IndexByte(k, '['); b >= 0 && strings.HasSuffix(k, "]") {
		i, _ = strconv.Atoi(k[b+1 : len(k)-1])
		k = k[:b]
	}
	return suricataKeys[k], i
}

// suricataEvents are our counterparts of Suricata's smtp events: one per
// smtp.mail record, and one per SMTP session that has none (its HELO).
func suricataEvents(recs []record) []record {
	var evs []record
	withMail := map[float64]bool{}
	for _, r := range recs {
		if r.str("type") == "smtp.mail" {
			evs = append(evs, r)
			withMail[r.num("session")] = true
		}
	}
	for _, r := range recs {
		if r.str("type") == "session" && r.str("proto") == "smtp" && !withMail[r.num("session")] {
			// Suricata's transaction 0 of a session without mail.
			evs = append(evs, record{"session": r["session"], "seq": float64(1), "helo": r["helo"]})
		}
	}
	return evs
}

// matches reports whether ev satisfies every field of f; checked counts
// the fields compared.
func (f suricataFilter) matches(ev record) (ok bool, checked int) {
	if f.txID >= 0 {
		// Suricata's tx_id counts a flow's transactions from 0, as our
		// seq does from 1.
		checked++
		if int(ev.num("seq")) != f.txID+1 {
			return false, checked
		}
	}
	for k, want := range f.fields {
		if strings.HasPrefix(k, "email.") && ev.obj("message") == nil {
			// Any email.* value says Suricata parsed a message.
			return false, checked + 1
		}
		get, i := suricataKey(k)
		if get == nil {
			continue
		}
		checked++
		got, present := get(ev, i)
		if k == "smtp.mail_from" && want == "<>" && ev["mail_from"] == "" {
			present = true
		}
		if !present || !suricataMatch(got, want) {
			return false, checked
		}
	}
	for _, k := range f.absent {
		if get, i := suricataKey(k); get != nil {
			if _, present := get(ev, i); present {
				return false, checked
			}
		}
	}
	return true, checked
}

// TestCorpusSuricata checks the SMTP events that suricata-verify's tests
// assert (HELO, MAIL FROM, RCPT TO by position, From, To, Cc, Subject,
// Message-ID, attachment names) against our records for the same capture:
// all the values of one check must hold on one of our transactions (or,
// for HELO alone, sessions), each compared with its own field, as many
// times as the check's count says.
func TestCorpusSuricata(t *testing.T) {
	root := corpusDir(t)
	yamls, _ := filepath.Glob(filepath.Join(root, "suricata-verify", "*", "tests", "*", "test.yaml"))
	checked := 0
	for _, y := range yamls {
		pcap, filters := suricataFacts(t, y)
		if len(filters) == 0 {
			continue
		}
		capDir := filepath.Dir(filepath.Dir(filepath.Dir(y)))
		if pcap != "" {
			pcap = filepath.Join(filepath.Dir(y), pcap)
		} else {
			m, _ := filepath.Glob(filepath.Join(capDir, "*.pcap*"))
			if len(m) != 1 {
				continue
			}
			pcap = m[0]
		}
		if _, err := os.Stat(pcap); err != nil {
			// Some tests point at another test's capture by a path
			// relative to the upstream tree.
			alt := filepath.Join(root, "suricata-verify", filepath.Base(filepath.Dir(pcap)), filepath.Base(pcap))
			if _, err := os.Stat(alt); err != nil {
				continue
			}
			pcap = alt
		}
		evs := suricataEvents(decodeFileLenient(t, pcap, "--ports", "smtp=25,587,2525"))
		for _, f := range filters {
			n, fields := 0, 0
			for _, ev := range evs {
				ok, c := f.matches(ev)
				fields = max(fields, c)
				if ok {
					n++
				}
			}
			checked += fields
			switch {
			case n == 0:
				t.Errorf("%s: no transaction of ours has %v (absent %v); ours: %s", rel(y), f.fields, f.absent, summarize(evs))
			case f.count > 0 && n != f.count:
				t.Errorf("%s: %d transactions of ours have %v (absent %v), Suricata %d; ours: %s", rel(y), n, f.fields, f.absent, f.count, summarize(evs))
			}
		}
	}
	if checked < 100 {
		t.Fatalf("only %d Suricata facts checked", checked)
	}
	t.Logf("checked %d Suricata facts", checked)
}

// summarize renders events briefly for a failure message.
func summarize(evs []record) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "\n  session %v helo %q from %q rcpt %v", ev["session"], ev.str("helo"), ev.str("mail_from"), rcptAddrs(ev))
		if m := ev.obj("message"); m != nil {
			fmt.Fprintf(&b, " msg from %q to %v subject %q", m.str("from"), m.list("to"), m.str("subject"))
		}
	}
	return b.String()
}

// suricataMatch compares one of our values with Suricata's, allowing for
// its angle brackets around paths and its raw "Name <addr>" header values.
func suricataMatch(got, want string) bool {
	g := strings.ToLower(strings.TrimSpace(got))
	w := strings.ToLower(strings.TrimSpace(want))
	for _, c := range []string{w, strings.Trim(w, "<>"), addrOnly(w)} {
		if c == g || c == addrOnly(g) {
			return true
		}
	}
	// Cut values: Suricata cuts file names at 256 bytes, we cut HELO and
	// paths at 1 KiB.
	if len(w) >= 250 && strings.HasPrefix(g, w) || len(g) >= 1000 && strings.HasPrefix(w, g) {
		return true
	}
	return w == "<>" && g == ""
}
