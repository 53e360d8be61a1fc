package main

import (
	"bufio"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// corpusCaptures lists every capture file under the corpus.
func corpusCaptures(t *testing.T) []string {
	root := corpusDir(t)
	var files []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && (d.Name() == "baseline" || d.Name() == "tests" || d.Name() == ".tools") {
			return filepath.SkipDir
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".pcap", ".pcapng", ".cap":
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	return files
}

// TestCorpusDecodesEverything runs every third-party capture through the
// whole pipeline with every record level: nothing may panic or fail, and
// each record must carry the common fields of the schema.
func TestCorpusDecodesEverything(t *testing.T) {
	files := corpusCaptures(t)
	if len(files) < 100 {
		t.Fatalf("found only %d corpus captures", len(files))
	}
	all := corpusDecoded(t)
	for _, f := range files {
		out, errOut, code := all[f].out, all[f].errOut, all[f].code
		if code != 0 {
			// A capture that is itself corrupt may end with an error
			// line, but never with a crash (which the test would not
			// survive) and never with exit 2.
			if code != exitRuntime || strings.Count(string(errOut), "\n") > 1 {
				t.Errorf("%s: exit %d: %s", f, code, errOut)
			}
		}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			line := sc.Text()
			for _, k := range []string{`"v":1,`, `"type":`, `"proto":`, `"session":`, `"ts":`, `"client":`, `"server":`} {
				if !strings.Contains(line, k) {
					t.Errorf("%s: record lacks %s: %.200s", f, k, line)
					break
				}
			}
		}
	}
}

// zeekRow is one row of a Zeek smtp.log baseline.
type zeekRow struct {
	file               string
	origPort           int
	helo, mailfrom     string
	rcptto             []string
	subject, lastReply string
}

func readZeekSMTPLog(t *testing.T, path string) []zeekRow {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var fields []string
	var rows []zeekRow
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#fields") {
			fields = strings.Split(line, "\t")[1:]
			continue
		}
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		vals := strings.Split(line, "\t")
		get := func(name string) string {
			for i, f := range fields {
				if f == name && i < len(vals) {
					return vals[i]
				}
			}
			return "-"
		}
		port, _ := strconv.Atoi(get("id.orig_p"))
		r := zeekRow{file: path, origPort: port, helo: get("helo"), mailfrom: get("mailfrom"), subject: get("subject"), lastReply: get("last_reply")}
		if rc := get("rcptto"); rc != "-" && rc != "(empty)" {
			r.rcptto = strings.Split(rc, ",")
		}
		rows = append(rows, r)
	}
	return rows
}

// TestCorpusZeekSMTPLog checks every SMTP transaction that Zeek's own test
// baselines (smtp.log) list for the corpus captures: MAIL FROM, each RCPT
// TO, the Subject and the final reply code must all be in our smtp.mail
// records for the same client port.
func TestCorpusZeekSMTPLog(t *testing.T) {
	root := corpusDir(t)
	logs, _ := filepath.Glob(filepath.Join(root, "zeek", "*", "baseline", "*", "smtp.log"))
	if len(logs) == 0 {
		t.Fatal("no zeek smtp.log baselines found")
	}
	decoded := map[string][]record{}
	checked := 0
	for _, lg := range logs {
		capDir := filepath.Dir(filepath.Dir(filepath.Dir(lg)))
		caps, _ := filepath.Glob(filepath.Join(capDir, "*.pcap*"))
		if len(caps) != 1 {
			t.Errorf("%s: want one capture in %s, found %v", lg, capDir, caps)
			continue
		}
		recs, ok := decoded[caps[0]]
		if !ok {
			// Zeek finds SMTP on any port (8240 through an HTTP CONNECT
			// tunnel here); so do we, by sniffing.
			recs = corpusRecords(t, caps[0])
			decoded[caps[0]] = recs
		}
		mails := ofType(recs, "smtp.mail")
		for _, row := range readZeekSMTPLog(t, lg) {
			if row.mailfrom == "-" || len(row.rcptto) == 0 {
				continue // an invalid transaction Zeek logs without a sender or recipient
			}
			checked++
			if m := findMail(mails, row); m == nil {
				t.Errorf("%s: no smtp.mail for client port %d from %q to %q (subject %q, reply %q)",
					rel(lg), row.origPort, row.mailfrom, row.rcptto, row.subject, row.lastReply)
			} else {
				checkMail(t, rel(lg), m, row)
			}
		}
	}
	t.Logf("checked %d Zeek transactions in %d baselines", checked, len(logs))
}

func rel(p string) string {
	if i := strings.Index(p, "corpus"+string(filepath.Separator)); i >= 0 {
		return p[i+7:]
	}
	return p
}

func clientPort(r record) int {
	c := r.str("client")
	i := strings.LastIndexByte(c, ':')
	n, _ := strconv.Atoi(c[i+1:])
	return n
}

func rcptAddrs(m record) []string {
	var out []string
	for _, x := range m.list("rcpt_to") {
		if o, ok := x.(map[string]any); ok {
			out = append(out, record(o).str("addr"))
		}
	}
	return out
}

func findMail(mails []record, row zeekRow) record {
	var found record
	for _, m := range mails {
		if clientPort(m) != row.origPort || m.str("mail_from") != row.mailfrom {
			continue
		}
		got := strings.Join(rcptAddrs(m), ",")
		all := true
		for _, r := range row.rcptto {
			if !strings.Contains(","+got+",", ","+r+",") {
				all = false
			}
		}
		if !all {
			continue
		}
		if row.subject != "-" && m.obj("message").str("subject") != zeekUnescape(row.subject) {
			continue
		}
		// A BDAT attempt cut by a gap, then DATA, is two records for
		// Zeek's one transaction: the one the server answered matches.
		if found == nil || found.obj("reply") == nil {
			found = m
		}
	}
	return found
}

func checkMail(t *testing.T, where string, m record, row zeekRow) {
	if row.lastReply == "-" {
		return
	}
	code, _ := strconv.Atoi(row.lastReply[:3])
	if got := int(m.obj("reply").num("code")); got != code {
		t.Errorf("%s: port %d %s: reply code %d, Zeek says %q", where, row.origPort, row.mailfrom, got, row.lastReply)
	}
}

// zeekUnescape undoes Zeek's \xNN escaping of log values.
func zeekUnescape(s string) string {
	if !strings.Contains(s, `\x`) {
		return s
	}
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b = append(b, byte(v))
				i += 3
				continue
			}
		}
		b = append(b, s[i])
	}
	return string(b)
}

// TestWorkersSameOutput checks that the output does not depend on the
// number of workers, on the project's captures and on the corpus (its
// three-worker side is the shared corpus decode).
func TestWorkersSameOutput(t *testing.T) {
	files := pcapFiles(t)
	var shared map[string]*decoded
	if _, err := os.Stat(filepath.Join("..", "..", "..", "shared", "corpus", "INDEX.md")); err == nil {
		files = append(files, corpusCaptures(t)...)
		shared = corpusDecoded(t)
	}
	for _, f := range files {
		one, _, c1 := runCLI("read", "--level", "commands", "--workers", "1", f)
		var many []byte
		var cn int
		if d := shared[f]; d != nil {
			many, cn = d.out, d.code
		} else {
			many, _, cn = runCLI(append(append([]string{}, corpusArgs...), f)...)
		}
		if c1 != cn || string(one) != string(many) {
			t.Errorf("%s: --workers 3 differs from --workers 1 (exit %d vs %d):\n%s", f, cn, c1, firstDiff(string(one), string(many)))
		}
	}
}
