package decode

// Anomaly is a short snake_case kind of something odd seen on the wire or
// in a message, recorded once per session (session.anomalies) or per
// message (message.anomalies). Every kind a decoder can record is a
// constant below, and docs/schema.md describes each one (a test keeps the
// two in step): name a kind only through its constant, never as a string.
type Anomaly string

// Anomalies of the byte stream, common to several protocols.
const (
	// AnomalyGap: bytes were lost in reassembly (session state partial).
	AnomalyGap Anomaly = "gap"
	// AnomalyLineTooLong: a line (or an IMAP logical line) longer than
	// the limit (--max-line); kept truncated. Also a line past the limit
	// that the connection ends without a line end.
	AnomalyLineTooLong Anomaly = "line_too_long"
	// AnomalyUnexpectedReply: a well-formed reply or status line with no
	// command waiting for it.
	AnomalyUnexpectedReply Anomaly = "unexpected_reply"
	// AnomalyUnknownCommand: a client command that is not a known verb
	// (still recorded with its reply).
	AnomalyUnknownCommand Anomaly = "unknown_command"
	// AnomalyStartTLSPlaintext: the bytes after a STARTTLS/STLS go-ahead
	// were not TLS; decoding goes on in plaintext.
	AnomalyStartTLSPlaintext Anomaly = "starttls_plaintext"
	// AnomalyTooManyPending: too many commands unanswered; the oldest is
	// retired unanswered.
	AnomalyTooManyPending Anomaly = "too_many_pending"
	// AnomalyBareLFDot: a "." line ended by a bare LF inside message
	// content (SMTP DATA, POP3 RETR/TOP), taken as content, not the end.
	AnomalyBareLFDot Anomaly = "bare_lf_dot"
	// AnomalyEvicted: the connection was closed because --max-conns
	// connections were tracked and it was the least recently active one
	// (close_reason evicted): what came after, if anything, is another
	// (midstream) session.
	AnomalyEvicted Anomaly = "evicted"
	// AnomalyOverlapInconsistent: TCP segments of one direction that
	// overlap carry different bytes; the first copy captured is decoded
	// (docs/design.md, "Overlapping segments"). Zeek calls it
	// rexmit_inconsistency, Suricata reassembly_overlap_different_data.
	AnomalyOverlapInconsistent Anomaly = "overlap_inconsistent"
	// AnomalyDataOnSYN: a SYN carried payload (TCP Fast Open, or an
	// evasion); the bytes are decoded.
	AnomalyDataOnSYN Anomaly = "data_on_syn"
	// AnomalyCaptureLoss: the capture source reported dropped packets
	// (live capture: kernel drops) while the connection was open; its
	// bytes may be incomplete even where no gap shows it.
	AnomalyCaptureLoss Anomaly = "capture_loss"
)

// TLS decryption anomalies (--tls-keylog, decode/tlsdec): why a TLS
// session, or one direction of it, was not decrypted.
const (
	// AnomalyTLSNoKey: the key log has no secret for the session (or its
	// handshake was not captured).
	AnomalyTLSNoKey Anomaly = "tls_no_key"
	// AnomalyTLSUnsupportedCipher: a TLS version or cipher suite mailtap
	// does not decrypt.
	AnomalyTLSUnsupportedCipher Anomaly = "tls_unsupported_cipher"
	// AnomalyTLSGap: bytes of the TLS stream were lost; decryption of
	// that direction ends there.
	AnomalyTLSGap Anomaly = "tls_gap"
	// AnomalyTLSBadRecordMAC: a record did not authenticate under the
	// key (wrong key log line or corrupted capture); decryption of that
	// direction ends there.
	AnomalyTLSBadRecordMAC Anomaly = "tls_bad_record_mac"
	// AnomalyTLSMalformed: bytes that are not TLS records where TLS was
	// expected.
	AnomalyTLSMalformed Anomaly = "tls_malformed"
)

// SMTP anomalies (docs/smtp.md).
const (
	// AnomalyMalformedReply: a server line that is not a reply, a code
	// change inside a multi-line reply, or a reply never finished.
	AnomalyMalformedReply Anomaly = "malformed_reply"
	// AnomalySMTPTransactionInvalid: RCPT, DATA or BDAT outside a mail
	// transaction (no MAIL, or MAIL rejected).
	AnomalySMTPTransactionInvalid Anomaly = "smtp_transaction_invalid"
	// AnomalyInvalidPath: MAIL or RCPT arguments that do not parse.
	AnomalyInvalidPath Anomaly = "invalid_path"
	// AnomalyPathTooLong: an address over 1 KiB.
	AnomalyPathTooLong Anomaly = "path_too_long"
	// AnomalyTooManyRcpt: more than 10000 recipients in one transaction.
	AnomalyTooManyRcpt Anomaly = "too_many_rcpt"
	// AnomalyReplyTooLong: a reply over 512 lines or 64 KiB.
	AnomalyReplyTooLong Anomaly = "reply_too_long"
	// AnomalyDataReplyMissing: no reply to DATA within 64 KiB of content;
	// the content is assumed.
	AnomalyDataReplyMissing Anomaly = "data_reply_missing"
	// AnomalyBDATInvalid: a BDAT size that does not parse.
	AnomalyBDATInvalid Anomaly = "bdat_invalid"
	// AnomalyAuthInvalid: AUTH without a mechanism, or a blob that is not
	// base64.
	AnomalyAuthInvalid Anomaly = "auth_invalid"
	// AnomalyReplyResync: a 354 skipped over commands whose replies were
	// lost; they are retired unanswered.
	AnomalyReplyResync Anomaly = "reply_resync"
	// AnomalyNotTLS: an implicit-TLS connection (or one side of it) that
	// does not start with a TLS record.
	AnomalyNotTLS Anomaly = "not_tls"
)

// POP3 anomalies (docs/pop3.md).
const (
	// AnomalyInvalidCommand: a client line that is not a command.
	AnomalyInvalidCommand Anomaly = "invalid_command"
	// AnomalyEmptyCommand: an empty client line.
	AnomalyEmptyCommand Anomaly = "empty_command"
	// AnomalyInvalidGreeting: a first server line that is no status line.
	AnomalyInvalidGreeting Anomaly = "invalid_greeting"
	// AnomalyNoGreeting: the server's first line answers a command.
	AnomalyNoGreeting Anomaly = "no_greeting"
	// AnomalyInvalidReply: a server line that is no status line where one
	// was due (skipped).
	AnomalyInvalidReply Anomaly = "invalid_reply"
	// AnomalyInvalidListing: a LIST or UIDL listing line that does not
	// parse.
	AnomalyInvalidListing Anomaly = "invalid_listing"
	// AnomalyListingUnterminated: a status line inside a listing while a
	// command is waiting: the "." line never came.
	AnomalyListingUnterminated Anomaly = "listing_unterminated"
	// AnomalyListingTruncated: the connection closed inside a listing.
	AnomalyListingTruncated Anomaly = "listing_truncated"
	// AnomalyMessageTruncated: the connection closed inside a RETR/TOP
	// message.
	AnomalyMessageTruncated Anomaly = "message_truncated"
	// AnomalyImplicitTLSPlaintext: a port configured as implicit TLS
	// carries plaintext.
	AnomalyImplicitTLSPlaintext Anomaly = "implicit_tls_plaintext"
	// AnomalyTooManyAuths: more than 64 login attempts (the last one is
	// kept current).
	AnomalyTooManyAuths Anomaly = "too_many_auths"
	// AnomalyTooManyMessages: more than 65536 retrievals held for QUIT;
	// later ones are emitted at once, deletion unknown.
	AnomalyTooManyMessages Anomaly = "too_many_messages"
	// AnomalyListingTooLong: more than 131072 UIDL entries or deletion
	// marks.
	AnomalyListingTooLong Anomaly = "listing_too_long"
)

// IMAP anomalies (docs/imap.md).
const (
	// AnomalyClientSyntax: a client line that is not "tag SP command".
	AnomalyClientSyntax Anomaly = "client_syntax"
	// AnomalyServerSyntax: a server line that is not a status, untagged
	// or continuation response, or a FETCH response that does not parse.
	AnomalyServerSyntax Anomaly = "server_syntax"
	// AnomalyDuplicateTag: a command reuses the tag of one still in
	// flight (the older one is retired unanswered).
	AnomalyDuplicateTag Anomaly = "duplicate_tag"
	// AnomalyTooManyInFlight: too many commands unanswered; the oldest is
	// retired unanswered.
	AnomalyTooManyInFlight Anomaly = "too_many_in_flight"
	// AnomalyUnmatchedTag: a tagged completion whose tag no command sent.
	AnomalyUnmatchedTag Anomaly = "unmatched_tag"
	// AnomalyUnexpectedContinuation: a "+" continuation request with no
	// command in flight.
	AnomalyUnexpectedContinuation Anomaly = "unexpected_continuation"
	// AnomalyUnexpectedDone: a DONE line with no IDLE in flight.
	AnomalyUnexpectedDone Anomaly = "unexpected_done"
	// AnomalySASLBadBase64: an AUTHENTICATE response line that is not
	// base64.
	AnomalySASLBadBase64 Anomaly = "sasl_bad_base64"
	// AnomalyLiteralSizeInvalid: a literal size above 2^32-1 (never
	// allocated).
	AnomalyLiteralSizeInvalid Anomaly = "literal_size_invalid"
	// AnomalyLiteralWithoutContinuation: more than the hold limit arrived
	// after a synchronizing literal marker with no "+" from the server;
	// the bytes are taken as the literal.
	AnomalyLiteralWithoutContinuation Anomaly = "literal_without_continuation"
	// AnomalyTooManyLiterals: more than 10000 literals in one line.
	AnomalyTooManyLiterals Anomaly = "too_many_literals"
	// AnomalyListTooDeep: parenthesised lists nested past 100 (flattened).
	AnomalyListTooDeep Anomaly = "list_too_deep"
	// AnomalyCompressGap: bytes lost inside a COMPRESS=DEFLATE stream,
	// which cannot be bridged; that direction stops decoding.
	AnomalyCompressGap Anomaly = "compress_gap"
	// AnomalyCompressCorrupt: a COMPRESS=DEFLATE stream that does not
	// inflate; that direction stops decoding.
	AnomalyCompressCorrupt Anomaly = "compress_corrupt"
)

// Message anomalies, on message.anomalies (docs/message.md).
const (
	// AnomalyHeaderWithoutColon: a header line that is not a field.
	AnomalyHeaderWithoutColon Anomaly = "header_without_colon"
	// AnomalyMboxFromLine: the message starts with an mbox "From " line.
	AnomalyMboxFromLine Anomaly = "mbox_from_line"
	// AnomalyHeaderTooLarge: a header block over its limit.
	AnomalyHeaderTooLarge Anomaly = "header_too_large"
	// AnomalyHeaderInvalidUTF8: raw 8-bit header text that is not UTF-8.
	AnomalyHeaderInvalidUTF8 Anomaly = "header_invalid_utf8"
	// AnomalyBadEncodedWord: an RFC 2047 word that does not decode.
	AnomalyBadEncodedWord Anomaly = "bad_encoded_word"
	// AnomalyUnknownCharset: a charset not known.
	AnomalyUnknownCharset Anomaly = "unknown_charset"
	// AnomalyBadAddressList: an address list net/mail rejects.
	AnomalyBadAddressList Anomaly = "bad_address_list"
	// AnomalyTooManyAddresses: more than 1000 addresses in one field.
	AnomalyTooManyAddresses Anomaly = "too_many_addresses"
	// AnomalyBadContentType: a Content-Type that is not type/subtype.
	AnomalyBadContentType Anomaly = "bad_content_type"
	// AnomalyBadHeaderParameters: unparsable Content-Type or
	// Content-Disposition parameters.
	AnomalyBadHeaderParameters Anomaly = "bad_header_parameters"
	// AnomalyMultipartWithoutBoundary: multipart with no boundary.
	AnomalyMultipartWithoutBoundary Anomaly = "multipart_without_boundary"
	// AnomalyBoundaryNotFound: a multipart body its boundary never
	// appears in.
	AnomalyBoundaryNotFound Anomaly = "boundary_not_found"
	// AnomalyMissingFinalBoundary: a multipart without its close
	// delimiter.
	AnomalyMissingFinalBoundary Anomaly = "missing_final_boundary"
	// AnomalyMIMEDepthExceeded: MIME nesting past the limit.
	AnomalyMIMEDepthExceeded Anomaly = "mime_depth_exceeded"
	// AnomalyTooManyParts: more MIME parts than the limit.
	AnomalyTooManyParts Anomaly = "too_many_parts"
	// AnomalyTooManyAttachments: more attachments than the limit.
	AnomalyTooManyAttachments Anomaly = "too_many_attachments"
	// AnomalyBadBase64: characters outside the base64 alphabet.
	AnomalyBadBase64 Anomaly = "bad_base64"
	// AnomalyBadQuotedPrintable: "=" not followed by two hex digits.
	AnomalyBadQuotedPrintable Anomaly = "bad_quoted_printable"
	// AnomalyUnknownTransferEncoding: e.g. x-uuencode.
	AnomalyUnknownTransferEncoding Anomaly = "unknown_transfer_encoding"
	// AnomalyEncodedMessageRFC822: a message/rfc822 part with a base64 or
	// quoted-printable transfer encoding (RFC 2046 forbids it).
	AnomalyEncodedMessageRFC822 Anomaly = "encoded_message_rfc822"
	// AnomalyMessageTooLargeForMIMEParse: the MIME parse limit reached.
	AnomalyMessageTooLargeForMIMEParse Anomaly = "message_too_large_for_mime_parse"
	// AnomalyExtractWriteFailed: writing the extracted message failed.
	AnomalyExtractWriteFailed Anomaly = "extract_write_failed"
	// AnomalyExtractCloseFailed: closing the extracted message failed.
	AnomalyExtractCloseFailed Anomaly = "extract_close_failed"
)
