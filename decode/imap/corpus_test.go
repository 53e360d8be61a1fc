package imap

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailtap/mailtap/capture"
	"github.com/mailtap/mailtap/decode"
)

func corpusPath(t *testing.T, rel string) string {
	t.Helper()
	p := filepath.Join("..", "..", "..", "shared", "corpus", rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("corpus not available (%v): it lives in ../shared/corpus next to the repository", err)
	}
	return p
}

// tee keeps the raw bytes of a connection and forwards them.
type tee struct {
	decode.Decoder
	raw [3]bytes.Buffer
}

func (t *tee) Data(dir decode.Direction, p []byte, ts time.Time) {
	t.raw[dir].Write(p)
	t.Decoder.Data(dir, p, ts)
}

type nop struct{}

func (nop) Data(decode.Direction, []byte, time.Time) {}
func (nop) Gap(decode.Direction, int, time.Time)     {}
func (nop) Close(decode.CloseReason, time.Time)      {}

type corpusConn struct {
	recs []decode.Record
	tee  *tee
}

// decodePcap runs every port-143 connection of a capture through the
// IMAP decoder.
func decodePcap(t *testing.T, rel string) []*corpusConn {
	t.Helper()
	src, err := capture.OpenFile(corpusPath(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var conns []*corpusConn
	f := capture.FactoryFunc(func(c decode.ConnInfo) decode.Decoder {
		if c.Server.Port() != 143 {
			return nop{}
		}
		cc := &corpusConn{}
		conns = append(conns, cc)
		cc.tee = &tee{Decoder: New(c, decode.Options{Level: decode.LevelCommands}, decode.SinkFunc(func(r decode.Record) { cc.recs = append(cc.recs, r) }))}
		return cc.tee
	})
	e := capture.New(capture.Config{ServerPort: func(p uint16) bool { return p == 143 }}, f)
	if err := e.Run(src, nil); err != nil {
		t.Fatal(err)
	}
	return conns
}

var literalRE = regexp.MustCompile(`\{(\d+)\}\r\n`)

// literalHashes extracts literals from a raw stream naively (good enough
// for captures whose bodies hold no literal markers) and hashes them.
func literalHashes(raw []byte) []string {
	var out []string
	for len(raw) > 0 {
		m := literalRE.FindSubmatchIndex(raw)
		if m == nil {
			break
		}
		n, _ := strconv.Atoi(string(raw[m[2]:m[3]]))
		body := raw[m[1]:]
		if n > len(body) {
			n = len(body)
		}
		out = append(out, sha(string(body[:n])))
		raw = body[n:]
	}
	return out
}

func allPaired(t *testing.T, recs []decode.Record) {
	t.Helper()
	for _, c := range commands(recs) {
		if c.Status == nil {
			t.Errorf("command %s %s unanswered", c.Tag, c.Verb)
		}
	}
}

func TestCorpusArkimeIMAP(t *testing.T) {
	conns := decodePcap(t, "arkime/imap/imap.pcap")
	if len(conns) != 1 {
		t.Fatalf("%d IMAP connections", len(conns))
	}
	recs := conns[0].recs
	allPaired(t, recs)
	cmds := commands(recs)
	if len(cmds) != 26 || cmds[0].Tag != "a0000" || cmds[25].Tag != "a0025" || cmds[25].Verb != "CLOSE" {
		t.Errorf("%d commands:\n%s", len(cmds), pairs(recs))
	}
	s := session(t, recs)
	if s.Auth == nil || s.Auth.User != "neulingern" || !*s.Auth.Success || !slices.Equal(s.Mailboxes, []string{"INBOX"}) {
		t.Errorf("session %+v auth %+v", s, s.Auth)
	}
	if s.BytesClient != 3790-56*40 && s.BytesServer == 0 {
		t.Errorf("bytes %d/%d", s.BytesClient, s.BytesServer)
	}
	ms := messages(recs)
	if len(ms) != 26 {
		t.Fatalf("%d messages, want 13+1+12", len(ms))
	}
	want := literalHashes(conns[0].tee.raw[decode.ServerToClient].Bytes())
	var got, from []string
	for _, m := range ms {
		got = append(got, m.Message.SHA256)
		from = append(from, m.Message.From)
		if (!strings.HasPrefix(m.Section, "BODY[HEADER.FIELDS (DATE FROM SUBJECT") && m.Section != "RFC822") || m.Mailbox != "INBOX" {
			t.Errorf("message %+v", m)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("hashes differ from the literals sent:\n got %q\nwant %q", got, want)
	}
	if !slices.ContainsFunc(from, func(s string) bool { return strings.Contains(s, "hardcase_890@yahoo.com") }) {
		t.Errorf("from %q", from)
	}
	mb := mailboxes(recs)
	var acts []string
	for _, m := range mb {
		acts = append(acts, m.Action+" "+m.Op+" "+strings.Join(m.Flags, ",")+" "+m.Seqs+" "+m.Status)
	}
	wantActs := []string{`store +FLAGS.SILENT \Seen,\Deleted 4 OK`, `store -FLAGS.SILENT \Flagged,\Answered 4 OK`, `expunge   4 OK`}
	if !slices.Equal(acts, wantActs) {
		t.Errorf("mailbox actions %q", acts)
	}
}

func TestCorpusStartTLS(t *testing.T) {
	conns := decodePcap(t, "zeek/imap-starttls/imap-starttls.pcap")
	if len(conns) != 1 {
		t.Fatalf("%d connections", len(conns))
	}
	recs := conns[0].recs
	wantPairs(t, recs, ". CAPABILITY OK\n. STARTTLS OK\n")
	s := session(t, recs)
	wantCaps := strings.Split("IMAP4rev1 CHILDREN ENABLE ID IDLE LIST-EXTENDED LIST-STATUS LITERAL+ MOVE NAMESPACE SASL-IR SORT SPECIAL-USE THREAD=ORDEREDSUBJECT UIDPLUS UNSELECT WITHIN STARTTLS AUTH=LOGIN AUTH=PLAIN", " ")
	if !slices.Equal(s.Capabilities, wantCaps) {
		t.Errorf("caps %q", s.Capabilities)
	}
	if s.State != decode.StateEncrypted || s.TLS == nil || !s.TLS.StartTLS || len(s.Anomalies) != 0 {
		t.Errorf("session %+v tls %+v", s, s.TLS)
	}
}

func TestCorpusBrutesharkPlain(t *testing.T) {
	conns := decodePcap(t, "bruteshark/IMAP_-_Authenticate_Plain_Base64/IMAP_-_Authenticate_Plain_Base64_.pcap")
	if len(conns) != 3 {
		t.Fatalf("%d connections", len(conns))
	}
	var appends, fetches int
	for _, cc := range conns {
		recs := cc.recs
		allPaired(t, recs)
		s := session(t, recs)
		for _, m := range messages(recs) {
			switch m.Direction {
			case "append":
				appends++
				raw := cc.tee.raw[decode.ClientToServer].String()
				i := strings.Index(raw, "{452+}\r\n")
				if i < 0 || m.Message.SHA256 != sha(raw[i+8:i+8+452]) || m.Mailbox != "Sent" || m.Status != "OK" {
					t.Errorf("append %+v %+v", m, m.Message)
				}
			case "fetch":
				fetches++
			}
		}
		if s.Auth != nil && (s.Auth.Mechanism != "PLAIN" || s.Auth.User != "digitalinvestigator@networksims.com" || !*s.Auth.Success) {
			t.Errorf("auth %+v", s.Auth)
		}
	}
	if appends != 1 || fetches < 3 {
		t.Errorf("appends %d fetches %d", appends, fetches)
	}
}

func TestCorpusServerOnlyLargeLiteral(t *testing.T) {
	conns := decodePcap(t, "suricata-verify/tcp-async-01/input.pcap")
	if len(conns) != 1 {
		t.Fatalf("%d connections", len(conns))
	}
	recs := conns[0].recs
	ms := messages(recs)
	want := literalHashes(conns[0].tee.raw[decode.ServerToClient].Bytes())
	if len(ms) == 0 || len(ms) != len(want) {
		t.Fatalf("%d messages, %d literals", len(ms), len(want))
	}
	for i, m := range ms {
		if m.Message.SHA256 != want[i] && !m.Message.Truncated {
			t.Errorf("message %d hash differs", i)
		}
	}
	if ms[0].UID != 1320886124 || ms[0].Section != "BODY[]" {
		t.Errorf("first %+v", ms[0])
	}
}

func TestCorpusAuthMechanisms(t *testing.T) {
	tests := []struct{ file, mech, user string }{
		{"bruteshark/IMAP_-_Authenticate_CRAM-MD5/IMAP_-_Authenticate_CRAM-MD5.cap", "CRAM-MD5", "hemmingway"},
		{"bruteshark/IMAP_-_Authenticate_Digest-MD5/IMAP_-_Authenticate_Digest-MD5.pcap", "DIGEST-MD5", "hemmingway"},
		{"bruteshark/IMAP_-_Authenticate_XYMPKI/IMAP_-_Authenticate_XYMPKI.pcap", "XYMPKI", ""},
		{"bruteshark/IMAP_-_Login_Plaintext_2/IMAP_-_Login_Plaintext_2.pcap", "LOGIN", "a71128.eed98"},
		{"bruteshark/IMAP_-_Login_Plaintext_3/IMAP_-_Login_Plaintext_3.pcap", "LOGIN", "bhodgyalo59"},
		{"ndpi/imap/imap.pcap", "LOGIN", "samir"},
	}
	for _, tt := range tests {
		t.Run(tt.mech+"-"+tt.user, func(t *testing.T) {
			conns := decodePcap(t, tt.file)
			if len(conns) == 0 {
				t.Fatal("no IMAP connection")
			}
			recs := conns[0].recs
			s := session(t, recs)
			if s.Auth == nil || s.Auth.Mechanism != tt.mech || s.Auth.User != tt.user || !*s.Auth.Success {
				t.Errorf("auth %+v", s.Auth)
			}
			for _, c := range commands(recs) {
				// Plaintext_2 lost the segment with one LSUB answer.
				if c.Status == nil && s.State != decode.StatePartial {
					t.Errorf("unanswered %s %s", c.Tag, c.Verb)
				}
			}
			if slices.Contains(s.Anomalies, "unmatched_tag") || slices.Contains(s.Anomalies, "client_syntax") {
				t.Errorf("anomalies %q\n%s", s.Anomalies, pairs(recs))
			}
		})
	}
}
