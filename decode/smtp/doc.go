// Package smtp decodes SMTP (RFC 5321) sessions passively, from both
// directions of one TCP connection fed in capture order, into mailtap
// records: one smtp.mail record per mail transaction, one command record per
// exchange (with decode.LevelCommands) and one session record at the end.
//
// Session is a push decoder (decode.Decoder): bytes in, records out, no
// goroutines, bounded memory. The pure parsers ParseCommand, ParseReplyLine,
// ParsePath and ParseEnhanced are exported for the replay code and tests.
//
// # What is decoded
//
//   - The greeting (220, possibly multi-line; first line kept), HELO, EHLO
//     and LHLO (the EHLO reply's keyword lines become the session
//     capabilities), multi-line replies and RFC 3463 enhanced status codes.
//   - MAIL FROM / RCPT TO with parameters (RFC 1870 SIZE, RFC 6152 BODY,
//     RFC 6531 SMTPUTF8, RFC 3461 DSN...), the null path <>, source routes,
//     and addresses without angle brackets (tolerated).
//   - DATA: the content starts only after a 354 and ends only at
//     CRLF "." CRLF; it is dot-unstuffed (framing.Dot) and streamed to the
//     message parser. A "." line ended by a bare LF is content, never an
//     end, and is flagged (anomaly bare_lf_dot, also in the message's
//     anomalies).
//   - BDAT (RFC 3030): exactly n octets follow the command line without
//     waiting for a reply, split anywhere and possibly coalesced with the
//     next commands; BDAT 0 LAST; each chunk has its own reply.
//   - RSET, NOOP, VRFY, EXPN, HELP, QUIT and unknown commands are paired
//     with their replies like any command.
//   - AUTH (RFC 4954): PLAIN (initial response or after 334), LOGIN,
//     CRAM-MD5, XOAUTH2, OAUTHBEARER, SCRAM-* and NTLM (user only); the outcome comes
//     from 235 or 4xx/5xx. Passwords, tokens, CRAM digests and the AUTH
//     command's blobs are redacted unless Options.ShowSecrets.
//   - STARTTLS (RFC 3207): after its 220 the session is encrypted and no
//     more plaintext is decoded (bytes are still counted); the first TLS
//     record of each side is parsed for SNI and version. If the bytes after
//     the 220 are not a TLS record (a capture with the TLS decrypted back
//     into it), decoding goes on in plaintext and the anomaly
//     starttls_plaintext is recorded. Implicit TLS (ConnInfo.ImplicitTLS)
//     is encrypted from the start.
//   - PIPELINING (RFC 2920): commands queue and replies pair in order. A
//     command sent while an earlier one was still unanswered is marked
//     pipelined (never in a capture where the server has sent nothing).
//     latency_ms is measured from the command to its first reply (for DATA
//     the 354), in capture time. A command record's text is the first
//     line of its final reply.
//
// A transaction's reply is {code, enhanced, text} of the deciding reply's
// last line (for a one-line reply, its only line): multi-line final
// replies put the queue id there (Exim: "250- 4404 byte chunk, total
// 4404" then "250 OK id=1lHkUh-008hPw-NY"), and Zeek logs it as
// last_reply. The RFC 3463 enhanced code is split off the text.
//
// # Transaction status rules
//
// A transaction starts at MAIL. It stops taking commands at the end of its
// DATA content, after its BDAT ... LAST chunk, when the client sends RSET,
// MAIL or QUIT, when the server accepts a HELO/EHLO (2xx) or STARTTLS
// (220) — a rejected EHLO keeps the envelope, as Postfix does — or when the
// connection closes. It is
// emitted once it stopped taking commands and every one of its commands was
// answered (or can no longer be: connection closed, queue overflow), so
// records come out in a deterministic order: transactions as they
// complete, unanswered commands and open transactions at Close, the
// session last. Its status is, in this order of precedence:
//
//  1. The data phase decides when it had a reply: the final reply after the
//     DATA content, a DATA rejected instead of 354 (e.g. 554 after all
//     recipients failed), the reply to BDAT LAST, or any rejected BDAT
//     chunk (which sticks). 2xx is accepted, anything else rejected; reply
//     is that reply. The latest DATA attempt wins (a 503 DATA, then RCPT,
//     then DATA 354 ... 250 is accepted).
//  2. Otherwise, a rejected MAIL makes the transaction rejected, with the
//     MAIL reply.
//  3. Otherwise, incomplete when the connection closed before the
//     transaction ended or one of its commands was never answered (this
//     covers one-sided captures), and aborted when RSET, a new MAIL,
//     HELO/EHLO, QUIT or STARTTLS ended it.
//
// RCPT, DATA or BDAT without a MAIL first (invalid order) open a
// transaction without mail_from, record the anomaly
// smtp_transaction_invalid, and follow what the server answered. A MAIL
// while a transaction is open ends it and starts a new one (what Zeek does;
// the server's 503 then rejects the new one unless its data is accepted).
//
// # Direction coupling and one-sided captures
//
// DATA content depends on the server's answer. After DATA the client's
// bytes are held (at most 64 KiB) until the DATA reply is known: 354 makes
// them content, anything else makes them commands again. When the server
// has sent nothing at all so far in the session (one-sided capture), the
// first client line after DATA decides: a known command verb means
// commands, anything else starts the content. Past the hold limit, or at
// Close, the same first-line test decides (anomaly data_reply_missing when
// the limit forced it). AUTH continuation lines are recognised the same
// way: a client line while AUTH is unanswered is a response when a 334
// asked for one or when it is not a known command.
//
// # Loss, midstream starts and limits
//
// A Gap drops the partial line and the decoder resynchronises: the client
// side skips lines until one parses as a known command, the server side
// until one parses as a reply. A 354 that does not answer the oldest
// command answers the next DATA: the replies before it were lost, those
// commands are retired unanswered (anomaly reply_resync). Inside DATA content the content goes on
// (marked truncated) until CRLF.CRLF or until the server's final reply to
// DATA shows it ended; inside a BDAT chunk a gap of known size is
// subtracted from the chunk, so the chunk stays in sync. A midstream
// capture (ConnInfo.Midstream) starts both sides in resynchronisation.
// Replies with no command waiting are kept (at most 64): when the next
// client event is a gap, reassembly held the client's bytes back while the
// server went on, and those replies pair with the commands after the gap.
//
// Bounds: lines by Options.MaxLine (anomaly line_too_long), 1000 pending
// commands (then the oldest is dropped unanswered, anomaly
// too_many_pending), 10000 recipients per transaction (too_many_rcpt),
// 512 lines or 64 KiB per multi-line reply (reply_too_long), 1 KiB per
// address (path_too_long), 4 KiB of command arguments kept, 64 KiB held
// after DATA, 17 KiB per TLS hello record. Storage reused from one reply
// or command to the next (to spare allocations) is bounded too: once idle,
// a session keeps at most 4 KiB of reply text (64 lines), 64 queue slots,
// 4 spare commands, one short reply line (128 bytes) per kind of command
// and the last short MAIL and RCPT arguments.
// Only what a record keeps becomes a string.
//
// # Anomalies
//
// gap, line_too_long, unknown_command, malformed_reply, unexpected_reply,
// smtp_transaction_invalid, invalid_path, path_too_long, too_many_rcpt,
// too_many_pending, reply_too_long, bare_lf_dot, data_reply_missing,
// bdat_invalid, auth_invalid, starttls_plaintext, not_tls, reply_resync.
package smtp
