package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// suricataFacts reads the positive SMTP checks of a suricata-verify
// test.yaml: the values of smtp.* and email.* keys in filters that match
// event_type smtp with a count other than 0. It is a line reader for the
// simple YAML those files use, not a YAML parser.
func suricataFacts(t *testing.T, path string) (pcap string, facts map[string][]string) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	facts = map[string][]string{}
	var block map[string]string
	flush := func() {
		if block != nil && block["event_type"] == "smtp" && block["count"] != "0" {
			for k, v := range block {
				if strings.HasPrefix(k, "smtp.") || strings.HasPrefix(k, "email.") {
					facts[k] = append(facts[k], v)
				}
			}
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
		if block == nil {
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
	return pcap, facts
}

// TestCorpusSuricata checks the SMTP facts that suricata-verify's tests
// assert (HELO, MAIL FROM, RCPT TO, From, To, Subject, Message-ID,
// attachment names) against our records for the same capture.
func TestCorpusSuricata(t *testing.T) {
	root := corpusDir(t)
	yamls, _ := filepath.Glob(filepath.Join(root, "suricata-verify", "*", "tests", "*", "test.yaml"))
	checked := 0
	for _, y := range yamls {
		pcap, facts := suricataFacts(t, y)
		if len(facts) == 0 {
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
		all := map[string]bool{}
		for _, s := range seenInSession(decodeFileLenient(t, pcap, "--ports", "smtp=25,587,2525")) {
			for k := range s {
				all[k] = true
			}
		}
		for key, vals := range facts {
			switch {
			case key == "smtp.helo", key == "smtp.mail_from", strings.HasPrefix(key, "smtp.rcpt_to"),
				key == "email.from", strings.HasPrefix(key, "email.to"), strings.HasPrefix(key, "email.cc"),
				key == "email.subject", strings.HasPrefix(key, "email.attachment"):
			default:
				continue
			}
			for _, v := range vals {
				checked++
				if !suricataMatch(all, v) {
					t.Errorf("%s: %s = %q not in our records", rel(y), key, v)
				}
			}
		}
	}
	if checked < 100 {
		t.Fatalf("only %d Suricata facts checked", checked)
	}
	t.Logf("checked %d Suricata facts", checked)
}

// suricataMatch finds v among our values, allowing for Suricata's angle
// brackets around paths and its raw "Name <addr>" header values.
func suricataMatch(all map[string]bool, v string) bool {
	w := strings.ToLower(strings.TrimSpace(v))
	for _, c := range []string{w, strings.Trim(w, "<>"), addrOnly(w)} {
		if all[c] {
			return true
		}
	}
	// Cut values: Suricata cuts file names at 256 bytes, we cut HELO and
	// paths at 1 KiB.
	for g := range all {
		if len(w) >= 250 && strings.HasPrefix(g, w) || len(g) >= 1000 && strings.HasPrefix(w, g) {
			return true
		}
	}
	return w == "" || w == "<>" && all[""]
}
