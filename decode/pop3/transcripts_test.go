package pop3

import (
	"strings"

	"github.com/mailtap/mailtap/decode"
)

const (
	C = decode.ClientToServer
	S = decode.ServerToClient
)

// Message bodies as the server sends them (dot-stuffed, CRLF) and as the
// client keeps them.
var (
	ciaoWire = crlf([]string{
		"Return-Path: <lorenzo.miniero@unina.it>",
		"Received: from lminiero-acer ([143.225.229.181])",
		"\t(authenticated bits=0)",
		"\tby smtp1.unina.it (8.14.4/8.14.4) with ESMTP id q999w5wC028069",
		"Date: Tue, 9 Oct 2012 11:57:53 +0200",
		"From: Lorenzo Miniero <lorenzo.miniero@unina.it>",
		"To: cicciopernacchio@mail.com",
		"Subject: Mail importante",
		"Message-ID: <20121009115753.53a5bacd@lminiero-acer>",
		"Content-Type: text/plain; charset=US-ASCII",
		"",
		"Ciao Ciccio,",
		"",
		"..a line that starts with a dot",
		"-- ",
		"L.",
		".",
	})
	ciaoBody = strings.Replace(strings.TrimSuffix(ciaoWire, ".\r\n"), "\r\n..a line", "\r\n.a line", 1)

	bounceWire = crlf([]string{
		"Return-Path: ",
		"Date: Fri, 12 Jun 2015 18:37:45 +0200",
		"From: Mail Delivery System <mailer-daemon@perfora.net>",
		"To: info@ingenierianumar.com",
		"Subject: Mail delivery failed: returning message to sender",
		"MIME-Version: 1.0",
		"Content-Type: text/plain; charset=utf-8",
		"",
		".",
	})
	bounceBody = strings.TrimSuffix(bounceWire, ".\r\n")

	testingWire = crlf([]string{
		"From: Digital Investigator <digitalinvestigator@networksims.com>",
		"To: digitalinvestigator@networksims.com",
		"Subject: Testing",
		"",
		"Just testing.",
		".",
	})
	testingBody = strings.TrimSuffix(testingWire, ".\r\n")
)

var transcripts = map[string]transcript{
	// ndpi/pop3 stream 0 (GMX, lower-case commands).
	"user_pass_ok": {steps: []step{
		s2c("+OK POP server ready H migmxus005"),
		c2s("user cicciopernacchio@mail.com"),
		s2c(`+OK password required for user "cicciopernacchio@mail.com"`),
		c2s("pass pippozzo"),
		s2c(`+OK mailbox "cicciopernacchio@mail.com" has 2 messages (17672 octets) H migmxus005`),
		c2s("list"),
		s2c("+OK", "1 16196", "2 1476", "."),
		c2s("uidl"),
		s2c("+OK", "1 0LnyLp-1TsNI72MLw-00g8zj", "2 0Mhti8-1SycGg1Hjn-00MsFf", "."),
		c2s("retr 2"),
		s2c("+OK"),
		raw(S, ciaoWire),
		c2s("quit"),
		s2c("+OK POP server signing off"),
	}},
	// suricata-verify/pop3-02-bug-7709 stream 0 (CMailServer).
	"user_pass_fail": {steps: []step{
		s2c("+OK \xbb\xb6\xd3\xad CMailServer 5.2 POP3 Service Ready"),
		c2s("USER test@tt.com"),
		s2c("+OK welcome here"),
		c2s("PASS 123456"),
		s2c("-ERR the password incorrect"),
		c2s("QUIT"),
		s2c("+OK bye"),
	}},
	"user_rejected": {steps: []step{
		s2c("+OK ready"),
		c2s("USER nobody"),
		s2c("-ERR no such user"),
		c2s("QUIT"),
		s2c("+OK bye"),
	}},
	// Cyrus greeting from zeek/pop3-starttls with RFC 1939's APOP example.
	"apop": {steps: []step{
		s2c("+OK ladymacbeth.local Cyrus POP3 v2.3.16 server ready <15125655727712503824.1400173552@ladymacbeth.local>"),
		c2s("APOP mrose c4c9334bac560ecc979e58001b3e22fb"),
		s2c("+OK mrose's maildrop has 2 messages (320 octets)"),
		c2s("QUIT"),
		s2c("+OK"),
	}},
	// zeek/pop3 streams 3 and 5 in one session: AUTH without argument,
	// CAPA, AUTH PLAIN failing with "napier" then succeeding with the
	// initial-response form and "napier123".
	"auth_plain": {steps: []step{
		s2c("+OK POP server ready H mimap8 0MHXFQ-1VDgSF1308-003NYq"),
		c2s("AUTH"),
		s2c("-ERR 1 argument required"),
		c2s("CAPA"),
		s2c("+OK Capability list follows", "TOP", "USER", "UIDL", "STLS", "SASL PLAIN", "IMPLEMENTATION trinity", "."),
		c2s("AUTH PLAIN"),
		s2c("+ "),
		c2s("AGRpZ2l0YWxpbnZlc3RpZ2F0b3JAbmV0d29ya3NpbXMuY29tAG5hcGllcg=="),
		s2c("-ERR authentication failed"),
		c2s("AUTH PLAIN AGRpZ2l0YWxpbnZlc3RpZ2F0b3JAbmV0d29ya3NpbXMuY29tAG5hcGllcjEyMw=="),
		s2c(`+OK mailbox "digitalinvestigator@networksims.com" has 3 messages (19191 octets) H mimap13`),
		c2s("QUIT"),
		s2c("+OK POP server signing off"),
	}},
	// AUTH without argument answered +OK lists mechanisms (multi-line).
	"auth_list": {steps: []step{
		s2c("+OK ready"),
		c2s("AUTH"),
		s2c("+OK", "PLAIN", "LOGIN", "CRAM-MD5", "."),
		c2s("AUTH LOGIN"),
		s2c("+ VXNlcm5hbWU6"),
		c2s("dGltQGV4YW1wbGUubmV0"), // tim@example.net
		s2c("+ UGFzc3dvcmQ6"),
		c2s("dGFuc3RhYWZ0YW5zdGFhZg=="), // tanstaaftanstaaf
		s2c("+OK maildrop locked and ready"),
		c2s("QUIT"),
		s2c("+OK"),
	}},
	// RFC 2195's example exchange.
	"cram_md5": {steps: []step{
		s2c("+OK ready"),
		c2s("AUTH CRAM-MD5"),
		s2c("+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+"),
		c2s("dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"),
		s2c("+OK CRAM authentication successful"),
		c2s("QUIT"),
		s2c("+OK"),
	}},
	// suricata-verify/pop3-auth-01: no greeting in the capture; XOAUTH2.
	"xoauth2": {steps: []step{
		c2s("CAPA"),
		s2c("+OK Capability list follows", "USER", "RESP-CODES", "EXPIRE 0", "LOGIN-DELAY 300", "TOP", "UIDL", "X-GOOGLE-RICO", "SASL PLAIN XOAUTH2 OAUTHBEARER", "."),
		c2s("AUTH XOAUTH2"),
		s2c("+ "),
		c2s("dXNlcj1qb2Uuc3BlZWRib2F0AWF1dGg9QmVhcmVyIEFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUEBAQ=="),
		s2c("+OK Welcome."),
		c2s("STAT"),
		s2c("+OK 1 308661"),
		c2s("LIST"),
		s2c("+OK 1 messages (308661 bytes)", "1 308661", "."),
		c2s("UIDL"),
		s2c("+OK", "1 GmailId123456789", "."),
		c2s("QUIT"),
	}},
	// A failed XOAUTH2: the server's error comes as a challenge and the
	// client answers with an empty line (RFC 7628 §3.2.3).
	"xoauth2_fail": {steps: []step{
		s2c("+OK Gpop ready"),
		c2s("AUTH XOAUTH2 dXNlcj1qb2UBYXV0aD1CZWFyZXIgeHl6AQE="),
		s2c("+ eyJzdGF0dXMiOiI0MDAifQ=="),
		c2s(""),
		s2c("-ERR [AUTH] Invalid credentials."),
		c2s("QUIT"),
		s2c("+OK Farewell."),
	}},
	// LIST and UIDL with and without argument, -ERR on each form, and
	// the CMailServer's "+OK 5 21639" header on a LIST listing.
	"list_uidl": {steps: []step{
		s2c("+OK ready"),
		c2s("USER test"),
		s2c("+OK welcome here"),
		c2s("PASS 123456"),
		s2c("+OK "),
		c2s("STAT"),
		s2c("+OK 5 21639"),
		c2s("LIST"),
		s2c("+OK 5 21639", "1 247", "2 6668", "3 6668", "4 1388", "5 6668", "."),
		c2s("LIST 2"),
		s2c("+OK 2 6668"),
		c2s("LIST 9"),
		s2c("-ERR no such message"),
		c2s("UIDL 3"),
		s2c("+OK 3 test.tt.com.cmailserver.3"),
		c2s("UIDL 9"),
		s2c("-ERR no such message"),
		c2s("UIDL"),
		s2c("+OK ", "1 test.tt.com.cmailserver.1", "2 test.tt.com.cmailserver.2", "."),
		c2s("RETR 3"),
		s2c("+OK 6668 octets"),
		raw(S, testingWire),
		c2s("RETR 5"),
		s2c("-ERR no such message"),
		c2s("QUIT"),
		s2c("+OK bye"),
	}},
	// A server refusing LIST and UIDL answers with one line.
	"list_err": {steps: []step{
		s2c("+OK ready"),
		c2s("LIST"),
		s2c("-ERR not yet"),
		c2s("UIDL"),
		s2c("-ERR not yet"),
		c2s("CAPA"),
		s2c("-ERR unknown command"),
		c2s("QUIT"),
		s2c("+OK bye"),
	}},
	// suricata-verify/pop3: 1&1, TOP n 0 after LIST, RSET and UIDL; the
	// capture ends without QUIT.
	"top": {steps: []step{
		s2c("+OK POP server ready H mieueus020 1Mw7UO-1j88qA02mS-00sOH0"),
		c2s("USER moises.nunez@ingenierianumar.com"),
		s2c(`+OK password required for user "moises.nunez@ingenierianumar.com"`),
		c2s("PASS moises.nunez"),
		s2c(`+OK mailbox "moises.nunez@ingenierianumar.com" has 2108 messages (665631557 octets) H mieueus020`),
		c2s("STAT"),
		s2c("+OK 2108 665631557"),
		c2s("RSET"),
		s2c("+OK maildrop has 2108 messages (665631557 octets)"),
		c2s("UIDL"),
		s2c("+OK", "6 UID6", "7 UID7", "."),
		c2s("TOP 6 0"),
		s2c("+OK"),
		raw(S, bounceWire),
		c2s("TOP 7 0"),
		s2c("+OK"),
		raw(S, bounceWire),
	}, reason: decode.CloseEOF},
	// zeek/pop3 stream 6 shape: RETR 1-3, DELE 1-3, QUIT commits.
	"dele_quit": {steps: []step{
		s2c("+OK POP server ready"),
		c2s("USER u"), s2c("+OK"), c2s("PASS p"), s2c("+OK"),
		c2s("RETR 1"), s2c("+OK"), raw(S, testingWire),
		c2s("DELE 1"), s2c("+OK message 1 deleted"),
		c2s("RETR 2"), s2c("+OK"), raw(S, ciaoWire),
		c2s("DELE 2"), s2c("+OK message 2 deleted"),
		c2s("DELE 3"), s2c("+OK message 3 deleted"),
		c2s("DELE 3"), s2c("-ERR message 3 already deleted"),
		c2s("QUIT"), s2c("+OK POP server signing off (3 messages deleted)"),
	}},
	// The same, but the connection drops before QUIT.
	"dele_drop": {steps: []step{
		s2c("+OK POP server ready"),
		c2s("USER u"), s2c("+OK"), c2s("PASS p"), s2c("+OK"),
		c2s("RETR 1"), s2c("+OK"), raw(S, testingWire),
		c2s("DELE 1"), s2c("+OK message 1 deleted"),
	}, reason: decode.CloseRST},
	// QUIT sent but its answer never seen: nothing is known to be deleted.
	"dele_quit_unanswered": {steps: []step{
		s2c("+OK POP server ready"),
		c2s("USER u"), s2c("+OK"), c2s("PASS p"), s2c("+OK"),
		c2s("DELE 1"), s2c("+OK"),
		c2s("QUIT"),
	}},
	// QUIT answered -ERR (RFC 1939 §6: some deleted messages not removed).
	"dele_quit_err": {steps: []step{
		s2c("+OK POP server ready"),
		c2s("USER u"), s2c("+OK"), c2s("PASS p"), s2c("+OK"),
		c2s("DELE 1"), s2c("+OK"),
		c2s("QUIT"), s2c("-ERR some deleted messages not removed"),
	}},
	"dele_rset": {steps: []step{
		s2c("+OK POP server ready"),
		c2s("USER u"), s2c("+OK"), c2s("PASS p"), s2c("+OK"),
		c2s("RETR 1"), s2c("+OK"), raw(S, testingWire),
		c2s("DELE 1"), s2c("+OK"),
		c2s("RSET"), s2c("+OK maildrop has 2 messages (320 octets)"),
		c2s("RETR 2"), s2c("+OK"), raw(S, bounceWire),
		c2s("QUIT"), s2c("+OK"),
	}},
	// zeek/pop3 stream 2: QUIT sent before CAPA is answered; then a
	// client pipelining RETR and DELE with all answers in one segment.
	"pipelined": {steps: []step{
		s2c("+OK POP server ready H mimap4 0MHoUr-1VDxRD3Ui5-003eq2"),
		c2s("CAPA"),
		c2s("USER u", "PASS p", "STAT"),
		s2c("+OK Capability list follows", "TOP", "USER", "UIDL", "PIPELINING", ".", "+OK", "+OK logged in", "+OK 2 320"),
		c2s("RETR 1", "DELE 1", "RETR 2", "DELE 2", "QUIT"),
		raw(S, "+OK\r\n"+testingWire+"+OK\r\n+OK\r\n"+bounceWire+"+OK\r\n+OK POP server signing off\r\n"),
	}},
	// ndpi/pop3_stls: STLS then a TLS ClientHello (added by the test).
	"stls": {steps: []step{
		s2c("+OK lavad"),
		c2s("AUTH"),
		s2c("-ERR Unrecognized command."),
		c2s("CAPA"),
		s2c("+OK Capabilities follow.", "TOP", "USER", "UIDL", "STLS", "PIPELINING", "EXPIRE NEVER", "LOGIN-DELAY 0", "RESP-CODES", "AUTH-RESP-CODE", "IMPLEMENTATION lavad 4.3.0", "."),
		c2s("STLS"),
		s2c("+OK Ready to start TLS negotiation."),
		// ClientHello and ServerHello appended in stls_test.go's init.
	}},
	// STLS accepted but the capture goes on in plaintext (a decrypted
	// capture, as in arkime/smtp-decrypted): decode on, with an anomaly.
	"stls_plaintext": {steps: []step{
		s2c("+OK ready"),
		c2s("STLS"),
		s2c("+OK Begin TLS negotiation now"),
		c2s("USER u"),
		s2c("+OK"),
		c2s("PASS p"),
		s2c("+OK"),
		c2s("QUIT"),
		s2c("+OK"),
	}},
	"stls_refused": {steps: []step{
		s2c("+OK ready"),
		c2s("STLS"),
		s2c("-ERR TLS not available"),
		c2s("QUIT"),
		s2c("+OK"),
	}},
	// A gap inside a RETR body: the message is truncated, the end is
	// still found and the next exchange pairs.
	"gap_in_retr": {steps: []step{
		s2c("+OK ready"),
		c2s("USER u"), s2c("+OK"), c2s("PASS p"), s2c("+OK"),
		c2s("RETR 1"),
		s2c("+OK 4242 octets"),
		raw(S, ciaoWire[:200]),
		gap(S),
		raw(S, ciaoWire[260:]),
		c2s("DELE 1"), s2c("+OK"),
		c2s("QUIT"), s2c("+OK"),
	}},
	// A gap in the server side between exchanges.
	"gap_between_replies": {steps: []step{
		s2c("+OK ready"),
		c2s("USER u"), s2c("+OK"), c2s("PASS p"),
		// PASS's answer is lost; capture reports the gap with the next
		// server bytes, after the client sent STAT.
		c2s("STAT"),
		gap(S),
		raw(S, "9 ignored tail of a lost reply\r\n+OK 2 320\r\n"),
		c2s("NOOP"), s2c("+OK"),
		c2s("QUIT"), s2c("+OK"),
	}},
	// A gap that swallows a LIST status line: the listing's "." tells
	// the decoder the reply is over.
	"gap_lost_listing_status": {steps: []step{
		s2c("+OK ready"),
		c2s("LIST"),
		gap(S),
		raw(S, "2 200\r\n.\r\n"),
		c2s("STAT"), s2c("+OK 2 320"),
		c2s("QUIT"), s2c("+OK"),
	}},
	"gap_client": {steps: []step{
		s2c("+OK ready"),
		c2s("USER u"), s2c("+OK"),
		// "PASS p" is partly lost: its answer cannot be paired.
		s2c("+OK"),
		gap(C),
		c2s("ss p", "STAT"),
		s2c("+OK 1 100"),
		c2s("QUIT"), s2c("+OK"),
	}},
	// The capture starts inside a RETR body.
	"midstream": {midstream: true, steps: []step{
		raw(S, "sage: yes\r\n+OK this is body text\r\n\r\n.\r\n"),
		c2s("DELE 1"), s2c("+OK"),
		c2s("RETR 2"), s2c("+OK"), raw(S, bounceWire),
		c2s("QUIT"), s2c("+OK"),
	}},
	// zeek/pop3-unknown-commands: bare LF line ends and garbage lines
	// where STAT's answer should be.
	"garbage_reply": {steps: []step{
		raw(S, "+OK example.com POP3-Server\n"),
		raw(C, "USER zeek@zeek.org\n"),
		raw(S, "+OK Please enter your password\n"),
		raw(C, "PASS zeek\n"),
		raw(S, "+OK mailbox locked and ready\n"),
		raw(C, "STAT\n"),
		raw(S, "+\r\r..\r\r..x\r\r\n"),
		raw(S, ".\r\r\t\t'\n"),
		raw(S, "x\n"),
		raw(S, "+OK 1 236\n"),
		raw(C, "QUIT\n"),
		raw(S, "+OK Bye\n"),
	}},
	// zeek/bad-list-retr-crafted: garbage, then a LIST listing without
	// its "." followed by the answer to RETR.
	"list_unterminated": {steps: []step{
		s2c("+OK example.com POP3-Server"),
		c2s("LIST"),
		s2c("GARBAGE (and LIST response missing .)"),
		s2c("+OK 2 messages (320 octets)", "1 120", "2 200"),
		c2s("RETR 1"),
		s2c("+OK message follows", "MIME-Version: 1.0", "From: zeek@zeek.org", "To: zeek@zeek.org", "Subject: Crafted email", "", "The body of the email.", "."),
		c2s("QUIT"),
		s2c("+OK bye"),
	}},
	"unknown_command": {steps: []step{
		s2c("+OK ready"),
		c2s("XTND XMIT"),
		s2c("-ERR unknown command"),
		c2s("UTF8"),
		s2c("+OK UTF8 enabled"),
		c2s("LANG"),
		s2c("+OK Language listing follows", "en English", "fr Francais", "."),
		c2s("QUIT"),
		s2c("+OK"),
	}},
	// A "." line ended by a bare LF inside a message is content, not the
	// end (the strict rule of SMTP DATA).
	"bare_lf_dot": {steps: []step{
		s2c("+OK ready"),
		c2s("RETR 1"),
		s2c("+OK"),
		raw(S, "Subject: smuggle\r\n\r\nline\n.\nMAIL FROM:<x@y>\r\n.\r\n"),
		c2s("QUIT"), s2c("+OK"),
	}},
	// The connection closes while a RETR body and a LIST listing are in
	// flight (suricata-verify/pop3-03-bug-7709 ends inside a listing).
	"cut_in_body": {steps: []step{
		s2c("+OK ready"),
		c2s("RETR 1"),
		s2c("+OK"),
		raw(S, "Subject: cut\r\n\r\nhalf a bo"),
	}, reason: decode.CloseEOF},
	"cut_in_listing": {steps: []step{
		s2c("+OK ready"),
		c2s("USER test"), s2c("+OK welcome here"),
		c2s("PASS 123456"), s2c("+OK "),
		c2s("STAT"), s2c("+OK 4 14971"),
		c2s("LIST"), s2c("+OK 4 14971"),
	}, reason: decode.CloseEOF},
	// Port 995 carrying plaintext POP3.
	"implicit_plaintext": {implicit: true, steps: []step{
		s2c("+OK ready"),
		c2s("QUIT"),
		s2c("+OK"),
	}},
	"implicit_tls": {implicit: true, steps: []step{
		// ClientHello appended in stls_test.go's init.
	}},
	// Three AUTH mechanisms nobody in the corpus used, for the record.
	"auth_cancel": {steps: []step{
		s2c("+OK ready"),
		c2s("AUTH LOGIN"),
		s2c("+ VXNlcm5hbWU6"),
		c2s("*"),
		s2c("-ERR AUTH cancelled"),
		c2s("AUTH OAUTHBEARER bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTEwAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB"),
		s2c("+OK"),
		c2s("QUIT"), s2c("+OK"),
	}},
}
