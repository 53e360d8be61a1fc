package pop3

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"github.com/mailtap/mailtap/decode"
)

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestUserPassOK(t *testing.T) {
	r := run(t, transcripts["user_pass_ok"], cmds)
	r.wantVerbs(
		"USER cicciopernacchio@mail.com +OK",
		"PASS <redacted> +OK",
		"LIST +OK", "UIDL +OK", "RETR 2 +OK", "QUIT +OK")
	s := r.session()
	if s.Auth == nil || s.Auth.Mechanism != "USER" || s.Auth.User != "cicciopernacchio@mail.com" || s.Auth.Password != "<redacted>" || s.Auth.Success == nil || !*s.Auth.Success {
		t.Errorf("auth = %+v", s.Auth)
	}
	if s.Greeting != "POP server ready H migmxus005" || s.State != decode.StateComplete || s.Commands != 6 {
		t.Errorf("session = %+v", s)
	}
	if s.Mode != "keep" || intp(s.Retrieved) != 1 || intp(s.Deleted) != 0 || s.Transactions != 1 {
		t.Errorf("mode %q retrieved %d deleted %d", s.Mode, intp(s.Retrieved), intp(s.Deleted))
	}
	// LIST beats the login text (same numbers here).
	if s.Mailbox == nil || *s.Mailbox != (decode.MailboxStat{Messages: 2, Octets: 17672}) {
		t.Errorf("mailbox = %+v", s.Mailbox)
	}
	ms := r.messages()
	if len(ms) != 1 {
		t.Fatalf("messages: %s", r.dump())
	}
	m := ms[0]
	if m.Msgno != 2 || m.UIDL != "0Mhti8-1SycGg1Hjn-00MsFf" || m.Deleted || m.TopLines != nil {
		t.Errorf("message = %+v", m)
	}
	if m.Message.Subject != "Mail importante" || m.Message.From != "Lorenzo Miniero <lorenzo.miniero@unina.it>" {
		t.Errorf("message summary = %+v", m.Message)
	}
	if m.Size != int64(len(ciaoBody)) || m.Message.Size != m.Size || m.Message.SHA256 != sha(ciaoBody) || m.Message.Truncated {
		t.Errorf("message size %d sha %s truncated %v; want %d %s", m.Size, m.Message.SHA256, m.Message.Truncated, len(ciaoBody), sha(ciaoBody))
	}
	if len(s.Anomalies) != 0 {
		t.Errorf("anomalies %q", s.Anomalies)
	}
	// Record times: command records carry the command's time and the
	// latency to the status line.
	c := r.commands()[4]
	if !c.TS.Equal(t0.Add(100e6)) || c.LatencyMS == nil || *c.LatencyMS != 10 || c.Pipelined {
		t.Errorf("RETR record = %+v", c)
	}

	// Secrets shown on request.
	r = run(t, transcripts["user_pass_ok"], decode.Options{Level: decode.LevelCommands, ShowSecrets: true})
	if got := r.verbs()[1]; got != "PASS pippozzo +OK" {
		t.Errorf("PASS with secrets = %q", got)
	}
	if a := r.session().Auth; a.Password != "pippozzo" {
		t.Errorf("auth with secrets = %+v", a)
	}
	// The default level has no command records.
	r = run(t, transcripts["user_pass_ok"], decode.Options{})
	if len(r.commands()) != 0 || len(r.messages()) != 1 || r.session().Commands != 6 {
		t.Errorf("transactions level: %s", r.dump())
	}
}

func TestUserPassFail(t *testing.T) {
	r := run(t, transcripts["user_pass_fail"], cmds)
	r.wantVerbs("USER test@tt.com +OK", "PASS <redacted> -ERR", "QUIT +OK")
	s := r.session()
	if s.Auth == nil || s.Auth.User != "test@tt.com" || *s.Auth.Success {
		t.Errorf("auth = %+v", s.Auth)
	}
	if c := r.commands()[1]; c.Text != "the password incorrect" {
		t.Errorf("PASS text = %q", c.Text)
	}
	if s.Mode != "" || intp(s.Retrieved) != 0 || s.Mailbox != nil {
		t.Errorf("mode %q retrieved %d mailbox %v", s.Mode, intp(s.Retrieved), s.Mailbox)
	}
	if s.Greeting != "\xbb\xb6\xd3\xad CMailServer 5.2 POP3 Service Ready" {
		t.Errorf("greeting %q", s.Greeting)
	}

	r = run(t, transcripts["user_rejected"], cmds)
	if a := r.session().Auth; a == nil || a.User != "nobody" || *a.Success {
		t.Errorf("rejected USER auth = %+v", a)
	}
}

func TestAPOP(t *testing.T) {
	r := run(t, transcripts["apop"], cmds)
	r.wantVerbs("APOP mrose <redacted> +OK", "QUIT +OK")
	s := r.session()
	want := decode.Auth{Mechanism: "APOP", User: "mrose", Success: decode.Bool(true)}
	if s.Auth == nil || s.Auth.Mechanism != want.Mechanism || s.Auth.User != want.User || !*s.Auth.Success || s.Auth.Challenge != "<redacted>" || s.Auth.Response != "<redacted>" || s.Auth.Password != "" {
		t.Errorf("auth = %+v", s.Auth)
	}
	if s.Mailbox == nil || *s.Mailbox != (decode.MailboxStat{Messages: 2, Octets: 320}) {
		t.Errorf("mailbox from login text = %+v", s.Mailbox)
	}
	if s.Mode != "keep" {
		t.Errorf("mode %q", s.Mode)
	}
	r = run(t, transcripts["apop"], decode.Options{ShowSecrets: true})
	a := r.session().Auth
	if a.Challenge != "<15125655727712503824.1400173552@ladymacbeth.local>" || a.Response != "c4c9334bac560ecc979e58001b3e22fb" || a.Password != "" {
		t.Errorf("auth with secrets = %+v", a)
	}
}

func TestAuthPlain(t *testing.T) {
	r := run(t, transcripts["auth_plain"], cmds)
	r.wantVerbs("AUTH -ERR", "CAPA +OK", "AUTH PLAIN -ERR", "AUTH PLAIN <redacted> +OK", "QUIT +OK")
	s := r.session()
	if len(s.Auths) != 2 || s.Auth == nil || *s.Auth != s.Auths[1] {
		t.Fatalf("auths = %+v", s.Auths)
	}
	for i, want := range []bool{false, true} {
		a := s.Auths[i]
		if a.Mechanism != "PLAIN" || a.User != "digitalinvestigator@networksims.com" || *a.Success != want || a.Password != "<redacted>" {
			t.Errorf("auth %d = %+v", i, a)
		}
	}
	if !slices.Equal(s.Capabilities, []string{"TOP", "USER", "UIDL", "STLS", "SASL PLAIN", "IMPLEMENTATION trinity"}) {
		t.Errorf("capabilities = %q", s.Capabilities)
	}
	if s.Mailbox == nil || *s.Mailbox != (decode.MailboxStat{Messages: 3, Octets: 19191}) {
		t.Errorf("mailbox = %+v", s.Mailbox)
	}
	if s.Commands != 5 {
		t.Errorf("commands = %d (SASL lines are not commands)", s.Commands)
	}
	r = run(t, transcripts["auth_plain"], decode.Options{ShowSecrets: true})
	s = r.session()
	if s.Auths[0].Password != "napier" || s.Auths[1].Password != "napier123" {
		t.Errorf("passwords = %q %q", s.Auths[0].Password, s.Auths[1].Password)
	}
}

func TestAuthLoginAndMechanismList(t *testing.T) {
	r := run(t, transcripts["auth_list"], decode.Options{Level: decode.LevelCommands, ShowSecrets: true})
	r.wantVerbs("AUTH +OK", "AUTH LOGIN +OK", "QUIT +OK")
	a := r.session().Auth
	if a == nil || a.Mechanism != "LOGIN" || a.User != "tim@example.net" || a.Password != "tanstaaftanstaaf" || !*a.Success {
		t.Errorf("auth = %+v", a)
	}
	if c := r.commands()[1]; c.Text != "maildrop locked and ready" {
		t.Errorf("AUTH LOGIN text %q", c.Text)
	}
}

func TestCRAMMD5(t *testing.T) {
	r := run(t, transcripts["cram_md5"], decode.Options{ShowSecrets: true})
	a := r.session().Auth
	if a == nil || a.Mechanism != "CRAM-MD5" || a.User != "tim" || a.Challenge != "<1896.697170952@postoffice.reston.mci.net>" || a.Response != "b913a602c7eda7a495b4e6e7334d3890" || a.Password != "" || !*a.Success {
		t.Errorf("auth = %+v", a)
	}
	r = run(t, transcripts["cram_md5"], decode.Options{})
	if a := r.session().Auth; a.User != "tim" || a.Challenge != "<redacted>" || a.Response != "<redacted>" {
		t.Errorf("auth without secrets = %+v", a)
	}
}

func TestXOAUTH2(t *testing.T) {
	r := run(t, transcripts["xoauth2"], decode.Options{Level: decode.LevelCommands, ShowSecrets: true})
	r.wantVerbs("CAPA +OK", "AUTH XOAUTH2 +OK", "STAT +OK", "LIST +OK", "UIDL +OK", "QUIT null")
	s := r.session()
	if a := s.Auth; a == nil || a.User != "joe.speedboat" || a.Password != "AAAAAAAAAAAAAAAAAAAAAAAAAAAA" || !*a.Success {
		t.Errorf("auth = %+v", a)
	}
	if len(s.Capabilities) != 8 || s.Capabilities[7] != "SASL PLAIN XOAUTH2 OAUTHBEARER" {
		t.Errorf("capabilities %q", s.Capabilities)
	}
	if s.Greeting != "" || !slices.Equal(s.Anomalies, []string{"no_greeting"}) {
		t.Errorf("greeting %q anomalies %q", s.Greeting, s.Anomalies)
	}
	if s.Mailbox == nil || *s.Mailbox != (decode.MailboxStat{Messages: 1, Octets: 308661}) {
		t.Errorf("mailbox = %+v", s.Mailbox)
	}
	if c := r.commands()[1]; c.Text != "Welcome." {
		t.Errorf("AUTH text %q", c.Text)
	}

	r = run(t, transcripts["xoauth2_fail"], cmds)
	r.wantVerbs("AUTH XOAUTH2 <redacted> -ERR", "QUIT +OK")
	if a := r.session().Auth; a == nil || a.User != "joe" || *a.Success || a.Password != "<redacted>" {
		t.Errorf("failed xoauth2 = %+v", a)
	}

	r = run(t, transcripts["auth_cancel"], decode.Options{Level: decode.LevelCommands, ShowSecrets: true})
	r.wantVerbs("AUTH LOGIN -ERR", "AUTH OAUTHBEARER bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTEwAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB +OK", "QUIT +OK")
	s = r.session()
	if len(s.Auths) != 2 || s.Auths[0].User != "" || *s.Auths[0].Success || s.Auths[1].User != "user@example.com" || s.Auths[1].Password != "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==" {
		t.Errorf("auths = %+v", s.Auths)
	}
}

func TestListUIDL(t *testing.T) {
	r := run(t, transcripts["list_uidl"], cmds)
	r.wantVerbs("USER test +OK", "PASS <redacted> +OK", "STAT +OK", "LIST +OK", "LIST 2 +OK", "LIST 9 -ERR",
		"UIDL 3 +OK", "UIDL 9 -ERR", "UIDL +OK", "RETR 3 +OK", "RETR 5 -ERR", "QUIT +OK")
	s := r.session()
	if s.Mailbox == nil || *s.Mailbox != (decode.MailboxStat{Messages: 5, Octets: 21639}) {
		t.Errorf("mailbox = %+v", s.Mailbox)
	}
	ms := r.messages()
	if len(ms) != 1 || ms[0].Msgno != 3 || ms[0].UIDL != "test.tt.com.cmailserver.3" || ms[0].Size != int64(len(testingBody)) {
		t.Errorf("messages: %s", r.dump())
	}
	if c := r.commands()[9]; c.Text != "6668 octets" {
		t.Errorf("RETR text %q", c.Text)
	}
	if len(s.Anomalies) != 0 || intp(s.Retrieved) != 1 {
		t.Errorf("anomalies %q retrieved %d", s.Anomalies, intp(s.Retrieved))
	}

	// -ERR to the multi-line forms is one line: the next reply pairs.
	r = run(t, transcripts["list_err"], cmds)
	r.wantVerbs("LIST -ERR", "UIDL -ERR", "CAPA -ERR", "QUIT +OK")
	if a := r.session().Anomalies; len(a) != 0 {
		t.Errorf("anomalies %q", a)
	}
}

func TestTop(t *testing.T) {
	r := run(t, transcripts["top"], cmds)
	r.wantVerbs("USER moises.nunez@ingenierianumar.com +OK", "PASS <redacted> +OK", "STAT +OK", "RSET +OK", "UIDL +OK", "TOP 6 0 +OK", "TOP 7 0 +OK")
	s := r.session()
	if s.Mailbox == nil || *s.Mailbox != (decode.MailboxStat{Messages: 2108, Octets: 665631557}) {
		t.Errorf("mailbox = %+v", s.Mailbox)
	}
	ms := r.messages()
	if len(ms) != 2 {
		t.Fatalf("messages: %s", r.dump())
	}
	for i, m := range ms {
		if m.Message.Subject != "Mail delivery failed: returning message to sender" {
			t.Errorf("message %d subject %q", i, m.Message.Subject)
		}
		if m.Msgno != 6+i || m.UIDL != []string{"UID6", "UID7"}[i] || intp(m.TopLines) != 0 || m.Size != int64(len(bounceBody)) || m.Message.SHA256 != sha(bounceBody) || m.Deleted {
			t.Errorf("message %d = %+v", i, m)
		}
	}
	if s.Mode != "keep" || intp(s.Retrieved) != 2 || s.CloseReason != "eof" {
		t.Errorf("session = %+v", s)
	}
}

func TestDeleteQuit(t *testing.T) {
	r := run(t, transcripts["dele_quit"], cmds)
	s := r.session()
	if s.Mode != "delete" || intp(s.Deleted) != 3 || intp(s.Retrieved) != 2 {
		t.Errorf("mode %q deleted %d retrieved %d", s.Mode, intp(s.Deleted), intp(s.Retrieved))
	}
	ms := r.messages()
	if len(ms) != 2 || ms[0].Msgno != 1 || !ms[0].Deleted || ms[1].Msgno != 2 || !ms[1].Deleted {
		t.Errorf("messages: %s", r.dump())
	}
	// pop3.message records follow the exchange that committed them.
	if _, ok := r.recs[len(r.recs)-4].(*decode.CommandRecord); !ok {
		t.Errorf("record order: %s", r.dump())
	}
}

func TestDeleteNotCommitted(t *testing.T) {
	for _, name := range []string{"dele_drop", "dele_quit_unanswered", "dele_quit_err", "dele_rset"} {
		t.Run(name, func(t *testing.T) {
			r := run(t, transcripts[name], cmds)
			s := r.session()
			if s.Mode != "keep" || intp(s.Deleted) != 0 {
				t.Errorf("mode %q deleted %d", s.Mode, intp(s.Deleted))
			}
			for _, m := range r.messages() {
				if m.Deleted {
					t.Errorf("message %d deleted", m.Msgno)
				}
			}
		})
	}
	r := run(t, transcripts["dele_drop"], cmds)
	if s := r.session(); s.State != decode.StateAborted || intp(s.Retrieved) != 1 {
		t.Errorf("state %q retrieved %d", s.State, intp(s.Retrieved))
	}
	r = run(t, transcripts["dele_quit_unanswered"], cmds)
	if v := r.verbs(); v[len(v)-1] != "QUIT null" {
		t.Errorf("verbs %q", v)
	}
	// After RSET only the second deletion counts.
	tr := transcripts["dele_rset"]
	tr.steps = tr.steps[:len(tr.steps)-2]
	tr.steps = append(tr.steps, c2s("DELE 2"), s2c("+OK"), c2s("QUIT"), s2c("+OK"))
	r = run(t, tr, cmds)
	s := r.session()
	ms := r.messages()
	if intp(s.Deleted) != 1 || s.Mode != "delete" || len(ms) != 2 || ms[0].Deleted || !ms[1].Deleted {
		t.Errorf("after RSET: deleted %d mode %q: %s", intp(s.Deleted), s.Mode, r.dump())
	}
}

func TestPipelined(t *testing.T) {
	r := run(t, transcripts["pipelined"], cmds)
	r.wantVerbs("CAPA +OK", "USER u +OK", "PASS <redacted> +OK", "STAT +OK", "RETR 1 +OK", "DELE 1 +OK", "RETR 2 +OK", "DELE 2 +OK", "QUIT +OK")
	var pipe []bool
	for _, c := range r.commands() {
		pipe = append(pipe, c.Pipelined)
	}
	if !slices.Equal(pipe, []bool{false, true, true, true, false, true, true, true, true}) {
		t.Errorf("pipelined = %v", pipe)
	}
	s := r.session()
	ms := r.messages()
	if len(ms) != 2 || ms[0].Size != int64(len(testingBody)) || ms[1].Size != int64(len(bounceBody)) || !ms[0].Deleted || !ms[1].Deleted {
		t.Errorf("messages: %s", r.dump())
	}
	if s.Mode != "delete" || intp(s.Deleted) != 2 || len(s.Anomalies) != 0 || !slices.Contains(s.Capabilities, "PIPELINING") {
		t.Errorf("session = %+v", s)
	}
}

func TestSTLS(t *testing.T) {
	r := run(t, transcripts["stls"], cmds)
	r.wantVerbs("AUTH -ERR", "CAPA +OK", "STLS +OK")
	s := r.session()
	if s.State != decode.StateEncrypted || s.TLS == nil || !s.TLS.StartTLS || s.TLS.Implicit || s.TLS.SNI != "pop.lavabit.com" || s.TLS.Version != "TLSv1.3" || !slices.Equal(s.TLS.ALPN, []string{"h2"}) {
		t.Errorf("session = %+v tls %+v", s, s.TLS)
	}
	if len(s.Anomalies) != 0 || s.BytesClient != int64(len("AUTH\r\nCAPA\r\nSTLS\r\n")+len(clientHello)+10) {
		t.Errorf("anomalies %q bytes %d", s.Anomalies, s.BytesClient)
	}

	r = run(t, transcripts["stls_plaintext"], cmds)
	r.wantVerbs("STLS +OK", "USER u +OK", "PASS <redacted> +OK", "QUIT +OK")
	s = r.session()
	if s.State != decode.StateComplete || s.TLS == nil || !s.TLS.StartTLS || !slices.Equal(s.Anomalies, []string{"starttls_plaintext"}) || s.Auth == nil || s.Auth.User != "u" {
		t.Errorf("session = %+v", s)
	}

	r = run(t, transcripts["stls_refused"], cmds)
	r.wantVerbs("STLS -ERR", "QUIT +OK")
	if s := r.session(); s.TLS != nil || s.State != decode.StateComplete {
		t.Errorf("session = %+v", s)
	}

	r = run(t, transcripts["implicit_tls"], cmds)
	s = r.session()
	if len(r.recs) != 1 || s.State != decode.StateEncrypted || s.TLS == nil || !s.TLS.Implicit || s.TLS.StartTLS || s.TLS.SNI != "pop.lavabit.com" || s.Commands != 0 {
		t.Errorf("implicit: %s", r.dump())
	}
	r = run(t, transcripts["implicit_plaintext"], cmds)
	r.wantVerbs("QUIT +OK")
	s = r.session()
	if s.State != decode.StateComplete || s.Greeting != "ready" || s.TLS == nil || !s.TLS.Implicit || !slices.Equal(s.Anomalies, []string{"implicit_tls_plaintext"}) {
		t.Errorf("implicit plaintext: %s", r.dump())
	}
	r = run(t, transcript{implicit: true}, cmds)
	if s := r.session(); s.State != decode.StateEncrypted {
		t.Errorf("implicit, no bytes: %s", r.dump())
	}
}

func TestGapInRetr(t *testing.T) {
	r := run(t, transcripts["gap_in_retr"], cmds)
	r.wantVerbs("USER u +OK", "PASS <redacted> +OK", "RETR 1 +OK", "DELE 1 +OK", "QUIT +OK")
	s := r.session()
	if s.State != decode.StatePartial || !slices.Equal(s.Anomalies, []string{"gap"}) || s.Mode != "delete" {
		t.Errorf("session = %+v", s)
	}
	ms := r.messages()
	if len(ms) != 1 || !ms[0].Message.Truncated || ms[0].Size != 200 || !ms[0].Deleted || ms[0].Message.SHA256 != sha(ciaoWire[:200]) {
		t.Errorf("messages: %s", r.dump())
	}
}

func TestGapResync(t *testing.T) {
	r := run(t, transcripts["gap_between_replies"], cmds)
	r.wantVerbs("USER u +OK", "PASS <redacted> null", "STAT +OK", "NOOP +OK", "QUIT +OK")
	s := r.session()
	if s.State != decode.StatePartial || s.Mailbox == nil || s.Mailbox.Messages != 2 || !slices.Equal(s.Anomalies, []string{"gap"}) {
		t.Errorf("session = %+v", s)
	}

	r = run(t, transcripts["gap_lost_listing_status"], cmds)
	r.wantVerbs("LIST null", "STAT +OK", "QUIT +OK")

	r = run(t, transcripts["gap_client"], cmds)
	r.wantVerbs("USER u +OK", "STAT +OK", "QUIT +OK")
	s = r.session()
	if !slices.Equal(s.Anomalies, []string{"unexpected_reply", "gap"}) || s.Mailbox == nil || *s.Mailbox != (decode.MailboxStat{Messages: 1, Octets: 100}) {
		t.Errorf("session = %+v", s)
	}
}

func TestMidstream(t *testing.T) {
	r := run(t, transcripts["midstream"], cmds)
	r.wantVerbs("DELE 1 +OK", "RETR 2 +OK", "QUIT +OK")
	s := r.session()
	if s.State != decode.StateMidstream || s.Greeting != "" || s.Mode != "delete" || intp(s.Deleted) != 1 || !slices.Equal(s.Anomalies, []string{"unexpected_reply"}) {
		t.Errorf("session = %+v", s)
	}
	ms := r.messages()
	if len(ms) != 1 || ms[0].Msgno != 2 || ms[0].Deleted || ms[0].Size != int64(len(bounceBody)) {
		t.Errorf("messages: %s", r.dump())
	}
}

func TestOddReplies(t *testing.T) {
	r := run(t, transcripts["garbage_reply"], cmds)
	r.wantVerbs("USER zeek@zeek.org +OK", "PASS <redacted> +OK", "STAT +OK", "QUIT +OK")
	s := r.session()
	if s.Mailbox == nil || *s.Mailbox != (decode.MailboxStat{Messages: 1, Octets: 236}) || !slices.Equal(s.Anomalies, []string{"invalid_reply"}) {
		t.Errorf("session = %+v", s)
	}

	r = run(t, transcripts["list_unterminated"], cmds)
	r.wantVerbs("LIST +OK", "RETR 1 +OK", "QUIT +OK")
	s = r.session()
	if !slices.Equal(s.Anomalies, []string{"invalid_reply", "listing_unterminated"}) || s.Mailbox == nil || *s.Mailbox != (decode.MailboxStat{Messages: 2, Octets: 320}) {
		t.Errorf("session = %+v", s)
	}
	ms := r.messages()
	body := crlf([]string{"MIME-Version: 1.0", "From: zeek@zeek.org", "To: zeek@zeek.org", "Subject: Crafted email", "", "The body of the email."})
	if len(ms) != 1 || ms[0].Size != int64(len(body)) || ms[0].Message.SHA256 != sha(body) || ms[0].Message.Subject != "Crafted email" {
		t.Errorf("messages: %s", r.dump())
	}

	r = run(t, transcripts["unknown_command"], cmds)
	r.wantVerbs("XTND XMIT -ERR", "UTF8 +OK", "LANG +OK", "QUIT +OK")
	if a := r.session().Anomalies; !slices.Equal(a, []string{"unknown_command"}) {
		t.Errorf("anomalies %q", a)
	}
}

func TestBareLFDot(t *testing.T) {
	r := run(t, transcripts["bare_lf_dot"], cmds)
	r.wantVerbs("RETR 1 +OK", "QUIT +OK")
	body := "Subject: smuggle\r\n\r\nline\n.\nMAIL FROM:<x@y>\r\n"
	ms := r.messages()
	if len(ms) != 1 || ms[0].Size != int64(len(body)) || ms[0].Message.SHA256 != sha(body) || ms[0].Message.Subject != "smuggle" {
		t.Errorf("messages: %s", r.dump())
	}
	if a := r.session().Anomalies; !slices.Equal(a, []string{"bare_lf_dot"}) {
		t.Errorf("anomalies %q", a)
	}
}

func TestCutShort(t *testing.T) {
	r := run(t, transcripts["cut_in_body"], cmds)
	r.wantVerbs("RETR 1 +OK")
	ms := r.messages()
	if len(ms) != 1 || !ms[0].Message.Truncated || ms[0].Size != int64(len("Subject: cut\r\n\r\nhalf a bo")) {
		t.Errorf("messages: %s", r.dump())
	}
	if a := r.session().Anomalies; !slices.Equal(a, []string{"message_truncated"}) {
		t.Errorf("anomalies %q", a)
	}

	r = run(t, transcripts["cut_in_listing"], cmds)
	r.wantVerbs("USER test +OK", "PASS <redacted> +OK", "STAT +OK", "LIST +OK")
	s := r.session()
	if !slices.Equal(s.Anomalies, []string{"listing_truncated"}) || s.Mailbox == nil || *s.Mailbox != (decode.MailboxStat{Messages: 4, Octets: 14971}) {
		t.Errorf("session = %+v", s)
	}
}

// A decoder that was closed ignores everything after.
func TestAfterClose(t *testing.T) {
	var n int
	s := New(conn(transcript{}), cmds, decode.SinkFunc(func(decode.Record) { n++ }))
	s.Close(decode.CloseFIN, t0)
	s.Data(decode.ClientToServer, []byte("QUIT\r\n"), t0)
	s.Gap(decode.ServerToClient, 3, t0)
	s.Close(decode.CloseFIN, t0)
	if n != 1 {
		t.Errorf("%d records", n)
	}
}

// A line past --max-line that the connection ends without a line end is
// reported like one ended by CRLF (issue 14 item 4), in either direction.
func TestLongLineAtClose(t *testing.T) {
	long := strings.Repeat("x", 300)
	for _, last := range []step{
		raw(decode.ClientToServer, "USER "+long),
		raw(decode.ServerToClient, "+OK "+long),
	} {
		tr := transcript{steps: []step{s2c("+OK ready"), c2s("CAPA"), s2c("+OK", "USER", "."), last}}
		r := run(t, tr, decode.Options{Level: decode.LevelCommands, MaxLine: 100})
		if !slices.Contains(r.session().Anomalies, "line_too_long") {
			t.Errorf("%v: anomalies %v", last.dir, r.session().Anomalies)
		}
	}
}
