// Package pop3 decodes POP3 sessions passively, from both directions of
// one TCP connection fed in capture order, into mailtap records: one
// pop3.message record per message retrieved (RETR or TOP answered +OK),
// one command record per exchange (with decode.LevelCommands) and one
// session record at the end.
//
// Session is a push decoder (decode.Decoder): bytes in, records out, no
// goroutines, bounded memory. The pure parsers ParseCommand and
// ParseStatus are exported for the replay code and tests.
//
// # What is decoded
//
//   - RFC 1939: the greeting (its <...> timestamp is APOP's challenge),
//     USER/PASS, APOP, STAT, LIST and UIDL (multi-line only without an
//     argument and only on +OK), RETR, TOP, DELE, NOOP, RSET, QUIT, and
//     the obsolete LAST. Verbs are case-insensitive.
//   - RFC 2449 CAPA (its lines become the session capabilities), RFC 2595
//     STLS, RFC 5034 AUTH with an initial response ("=" for an empty one)
//     or "+ " continuations, "*" to cancel, and AUTH without argument
//     (a mechanism list, multi-line on +OK). SASL lines are decoded by
//     decode/internal/sasl (PLAIN, LOGIN, CRAM-MD5, XOAUTH2, OAUTHBEARER,
//     ...); they are part of their AUTH exchange, not commands.
//     RFC 6856 UTF8 and LANG (multi-line without argument).
//   - Message content after +OK to RETR/TOP is dot-unstuffed with
//     framing.Dot and ends only at CRLF "." CRLF (the strict rule of SMTP
//     DATA): a "." line ended by a bare LF is content, flagged bare_lf_dot.
//     The unstuffed bytes stream to decode/message; size is their count.
//     Listings (CAPA, LIST, UIDL, AUTH, LANG) end at a "." line, with a
//     bare LF accepted there (and flagged), as poplib does.
//   - Commands pair with replies in order through a queue, so pipelined
//     commands (CAPA PIPELINING) work; a command sent while another was
//     unanswered (or its multi-line reply still arriving) is pipelined.
//     latency_ms runs from the command to its status line.
//   - Deletions: DELE +OK marks a message, RSET +OK unmarks all, and only
//     QUIT answered +OK commits them (RFC 1939 §6, UPDATE state). A
//     connection that drops, or a QUIT whose answer is not seen or is
//     -ERR, commits nothing. pop3.message records are therefore held until
//     the session ends and emitted at Close, in retrieval order, with
//     deleted set from the committed set and uidl from any UIDL seen.
//   - The mailbox size (session "mailbox"): STAT, else the first LIST
//     without argument, else the "n messages (m octets)" text many servers
//     put in the login's +OK.
//   - STLS: from its +OK the connection is encrypted; the handshake is read
//     by decode.Base.TLSData for SNI, version and ALPN. If the first
//     byte after the +OK is text, not TLS (a capture decrypted after the
//     fact), decoding goes on in plaintext with the anomaly
//     starttls_plaintext. Implicit TLS (ConnInfo.ImplicitTLS) is
//     encrypted from the start.
//
// -ERR answers, failed logins and dropped connections are data, not
// errors: each login attempt is an Auth with its success.
//
// # Loss and odd input
//
// A gap in the server side inside a message marks the message truncated,
// stops feeding it, and looks for the end from the middle of a line. A gap
// between replies drops the older unanswered commands (recorded with a
// null status) and resynchronises: lines are skipped until a status line,
// which pairs with the newest command; a "." line ends a lost multi-line
// answer. A gap in the client side skips lines until a known verb. A
// midstream start (ConnInfo.Midstream) starts both sides that way and
// expects no greeting. If the first server line comes after a client
// command, it is a reply and the session records no_greeting.
//
// Anomalies recorded on the session: gap, line_too_long, invalid_command
// (a client line that is no command), empty_command, unknown_command,
// invalid_greeting, no_greeting, invalid_reply (a server line that is
// neither a status nor a continuation where one was due),
// unexpected_reply (a status line with no command to answer),
// invalid_listing (a LIST/UIDL line that does not parse),
// listing_unterminated (a listing cut short by the next status line, as
// in Zeek's bad-list-retr-crafted capture), listing_truncated and
// message_truncated (the connection closed inside one), bare_lf_dot,
// starttls_plaintext, implicit_tls_plaintext, too_many_pending, too_many_auths,
// too_many_messages, listing_too_long (a bound was hit).
package pop3
