// Package imap decodes IMAP4 connections passively (RFC 3501, RFC 9051)
// from both directions of a TCP stream, pushed in capture order.
//
// A Tokenizer per direction splits the stream into logical lines: a text
// line plus the literals ({n}, {n+}, {n-}, ~{n}) that continue it, split
// across any number of segments. Literals up to InlineMax are kept in the
// parsed line; larger ones, and every message body, are streamed: FETCH
// body sections and APPEND messages go through decode/message (whole
// messages and headers) or are counted and hashed (MIME parts), never
// buffered whole. A client synchronizing literal waits for the server: a
// "+" releases it, a tagged NO/BAD for that command means it never comes.
//
// The Session pairs each tagged completion with its command by tag and
// attaches untagged responses and continuation requests to the command in
// flight. It follows the connection state (not authenticated,
// authenticated, selected, logout), the selected mailbox, SASL exchanges
// (PLAIN, LOGIN, CRAM-MD5, XOAUTH2, OAUTHBEARER, DIGEST-MD5, NTLM user,
// SASL-IR), STARTTLS (opaque from the OK on, unless the bytes are not
// TLS), and COMPRESS=DEFLATE (RFC 4978) through a push inflater.
//
// RFCs: 3501, 9051, 2177 (IDLE), 4315 (UIDPLUS), 6851 (MOVE), 7162
// (VANISHED), 4959 (SASL-IR), 7888 (LITERAL+/-), 3516 (BINARY, ~{n}),
// 3502 (MULTIAPPEND), 4978 (COMPRESS), 5161 (ENABLE), 6855 (UTF8=ACCEPT).
//
// Tolerances: lines ending in a bare LF are accepted; a literal marker
// may follow ")" or "]" without a space; mailbox names that are not valid
// modified UTF-7 are kept as sent. Anomalies (snake_case, on the session
// record): gap, line_too_long, literal_size_invalid (a size beyond 2^32-1,
// never allocated), too_many_literals, list_too_deep (nesting past
// MaxDepth is flattened), literal_without_continuation, duplicate_tag,
// unmatched_tag, unexpected_continuation, unexpected_done, client_syntax,
// server_syntax, sasl_bad_base64, starttls_plaintext, compress_corrupt,
// compress_gap, too_many_in_flight.
package imap
