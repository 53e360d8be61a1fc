package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// pcaps/real-tls.pcap was recorded by pcaps/record/record-tls.sh: Postfix and Dovecot
// with TLS, Python clients with keylog_filename and curl with SSLKEYLOGFILE. The
// Python clients wrote what they saw to pcaps/real-tls.truth.json.

type truthSession struct {
	Proto      string  `json:"proto"`
	ServerPort int     `json:"server_port"`
	ClientPort int     `json:"client_port"`
	Commands   [][]any `json:"commands"`
	Messages   []string
	Auth       *struct {
		User    string `json:"user"`
		Success bool   `json:"success"`
	} `json:"auth"`
}

func loadTruth(t *testing.T, name ...string) []truthSession {
	t.Helper()
	path := "../../pcaps/real-tls.truth.json"
	if len(name) > 0 {
		path = name[0]
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ts []truthSession
	if err := json.Unmarshal(b, &ts); err != nil {
		t.Fatal(err)
	}
	return ts
}

// bySession groups records by session, keyed by client port.
func bySession(recs []record) (sessions map[string]record, cmds map[string][]record, msgs map[string][]string) {
	sessions, cmds, msgs = map[string]record{}, map[string][]record{}, map[string][]string{}
	for _, r := range recs {
		port := r.str("client")[strings.LastIndexByte(r.str("client"), ':')+1:]
		switch r.str("type") {
		case "session":
			sessions[port] = r
		case "command":
			cmds[port] = append(cmds[port], r)
		case "smtp.mail", "pop3.message", "imap.message":
			msgs[port] = append(msgs[port], r.obj("message").str("sha256"))
		}
	}
	return
}

// checkTruth: every command with the status the client saw, the auth
// user and outcome, and the hash of every message the client sent or
// read are in mailtap's records, in order.
func checkTruth(t *testing.T, truth []truthSession, recs []record, only func(truthSession) bool) {
	t.Helper()
	sessions, cmds, msgs := bySession(recs)
	for _, ts := range truth {
		if only != nil && !only(ts) {
			continue
		}
		port := fmt.Sprint(ts.ClientPort)
		s, ok := sessions[port]
		if !ok {
			t.Errorf("%s session from port %s: no session record", ts.Proto, port)
			continue
		}
		if d, _ := s.obj("tls")["decrypted"].(bool); !d {
			t.Errorf("%s session from port %s not decrypted: %v", ts.Proto, port, s)
			continue
		}
		i := 0
		for _, c := range cmds[port] {
			if i < len(ts.Commands) && c.str("verb") == ts.Commands[i][0] && sawStatus(c, fmt.Sprint(ts.Commands[i][1])) {
				i++
			}
		}
		if i < len(ts.Commands) {
			var got []string
			for _, c := range cmds[port] {
				got = append(got, fmt.Sprint(c.str("verb"), " ", c["status"]))
			}
			t.Errorf("%s session from port %s: command %v not found in order in %v", ts.Proto, port, ts.Commands[i], got)
		}
		if ts.Auth != nil {
			a := s.obj("auth")
			if a.str("user") != ts.Auth.User || a["success"] != ts.Auth.Success {
				t.Errorf("%s session from port %s: auth %v, want %+v", ts.Proto, port, a, *ts.Auth)
			}
		}
		for _, m := range ts.Messages {
			found := false
			for _, h := range msgs[port] {
				found = found || h == m
			}
			if !found {
				t.Errorf("%s session from port %s: message %s not in %v", ts.Proto, port, m[:12], msgs[port])
			}
		}
	}
}

// sawStatus: the command record has the status the client saw. imaplib's
// logout() returns the untagged BYE that precedes the tagged OK.
func sawStatus(c record, want string) bool {
	if want == "BYE" {
		return strings.Contains(fmt.Sprint(c.list("untagged")), "BYE")
	}
	return fmt.Sprint(c["status"]) == want
}

func TestRealTLS(t *testing.T) {
	truth := loadTruth(t)
	recs := decodeFile(t, "../../pcaps/real-tls.pcap", "--level", "commands", "--tls-keylog", "../../pcaps/real-tls.keylog")
	checkTruth(t, truth, recs, nil)
	// curl's sessions (no ground truth file): decrypted too.
	for _, s := range ofType(recs, "session") {
		if d, _ := s.obj("tls")["decrypted"].(bool); !d || s.list("anomalies") != nil {
			t.Errorf("session %v", s)
		}
	}
	// The keys embedded in a pcapng by editcap --inject-secrets.
	checkTruth(t, truth, decodeFile(t, "../../pcaps/real-tls-dsb.pcapng", "--level", "commands"), nil)
}

// TestRealTLS2MB: a 2 MB message over SMTPS (TLS 1.3).
func TestRealTLS2MB(t *testing.T) {
	truth := loadTruth(t, "../../pcaps/real-tls-2mb.truth.json")
	recs := decodeFile(t, "../../pcaps/real-tls-2mb.pcap", "--level", "commands", "--tls-keylog", "../../pcaps/real-tls-2mb.keylog")
	checkTruth(t, truth, recs, nil)
	mails := ofType(recs, "smtp.mail")
	if len(mails) != 1 || mails[0].obj("message").num("size") < 2e6 {
		t.Fatalf("mails %v", mails)
	}
}

// TestRealTLSPartialKeylog: a key log with the SMTP sessions' secrets only.
func TestRealTLSPartialKeylog(t *testing.T) {
	truth := loadTruth(t)
	recs := decodeFile(t, "../../pcaps/real-tls.pcap", "--level", "commands", "--tls-keylog", "../../pcaps/real-tls-partial.keylog")
	checkTruth(t, truth, recs, func(ts truthSession) bool { return ts.Proto == "smtp" })
	sessions, _, _ := bySession(recs)
	n := 0
	for _, s := range sessions {
		if s.str("proto") == "smtp" {
			continue
		}
		n++
		if s.str("state") != "encrypted" || s.obj("tls")["decrypted"] != false || !strings.Contains(fmt.Sprint(s.list("anomalies")), "tls_no_key") {
			t.Errorf("session without key: %v", s)
		}
	}
	if n != 6 {
		t.Errorf("%d POP3/IMAP sessions, want 6", n)
	}
}

// knownVerbs are the commands counted in tshark's output (tshark also
// shows AUTH continuation lines and literal contents as requests).
var knownVerbs = map[string]bool{}

func init() {
	for _, v := range strings.Fields("EHLO HELO STAR AUTH MAIL RCPT DATA QUIT RSET NOOP BDAT VRFY CAPA STLS USER PASS STAT LIST UIDL RETR DELE TOP APOP " +
		"CAPABILITY STARTTLS LOGIN AUTHENTICATE SELECT EXAMINE FETCH APPEND LOGOUT LSUB STATUS UID IDLE CLOSE EXPUNGE SEARCH STORE CREATE DELETE") {
		knownVerbs[v] = true
	}
}

// TestRealTLSTshark: tshark with the same key log recovers no command
// that mailtap misses.
func TestRealTLSTshark(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed")
	}
	out, err := exec.Command(tshark, "-r", "../../pcaps/real-tls.pcap", "-o", "tls.keylog_file:../../pcaps/real-tls.keylog",
		"-d", "tcp.port==587,smtp", "-Y", "smtp.req || pop.request || imap.request",
		"-T", "fields", "-e", "tcp.srcport", "-e", "smtp.req.command", "-e", "pop.request.command", "-e", "imap.request.command").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	want := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		for _, v := range f[1:] {
			v = strings.ToUpper(v)
			if knownVerbs[v] {
				want[f[0]+" "+v]++
			}
		}
	}
	if len(want) < 40 {
		t.Fatalf("tshark found only %d commands: %s", len(want), out)
	}
	recs := decodeFile(t, "../../pcaps/real-tls.pcap", "--level", "commands", "--tls-keylog", "../../pcaps/real-tls.keylog")
	got := map[string]int{}
	_, cmds, _ := bySession(recs)
	for port, cs := range cmds {
		for _, c := range cs {
			v := c.str("verb")
			if c.str("proto") == "smtp" && len(v) > 4 {
				v = v[:4] // tshark shows SMTP verbs by their first four letters
			}
			got[port+" "+v]++
		}
	}
	for k, n := range want {
		if got[k] < n {
			t.Errorf("tshark sees %d × %s, mailtap %d", n, k, got[k])
		}
	}
}
