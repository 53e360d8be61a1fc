// Package tlsdec decrypts TLS 1.2 and 1.3 connections captured off the
// wire, given the secrets of an NSS key log (SSLKEYLOGFILE, Python's
// SSLContext.keylog_filename, Go's tls.Config.KeyLogWriter) or of a pcapng
// Decryption Secrets Block.
//
// A Decryptor is a push parser fed both directions' TCP bytes in capture
// order. It splits them into records (across any segment boundaries),
// follows the handshake in clear (ClientHello random and session id,
// ServerHello version, cipher suite, HelloRetryRequest), derives record
// keys from the key log's secrets and hands application data plaintext to
// its OutputFunc, with the timestamp of the segment that completed each
// record. It never guesses: a gap, a record that does not authenticate, a
// missing key or an unsupported cipher ends decryption with a reason.
//
// Supported: TLS 1.3 with AES-128-GCM, AES-256-GCM and CHACHA20-POLY1305
// (handshake and application traffic secrets, KeyUpdate, HelloRetryRequest,
// post-handshake messages skipped); TLS 1.2 with AES-GCM,
// CHACHA20-POLY1305 and AES-CBC with HMAC-SHA1/SHA256/SHA384 (also
// encrypt-then-MAC, RFC 7366), whatever the key exchange, and sessions
// resumed by session id or ticket when the key log had the master secret
// of the session's full handshake; TLS 1.0 and 1.1 with AES-CBC and
// HMAC-SHA1.
//
// Relevant RFCs: 2246 (TLS 1.0), 4346 (TLS 1.1), 5246 (TLS 1.2), 8446 (TLS 1.3), 5288/5289 (AES-GCM),
// 7905 (ChaCha20-Poly1305), 7366 (encrypt-then-MAC), 5077 (tickets).
package tlsdec
