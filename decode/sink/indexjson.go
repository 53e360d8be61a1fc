package sink

import "strconv"

// index.json's entries, written by hand like the records (recordjson.go).
//
// An entry used to go through encoding/json with SetIndent, which encodes
// the value by reflection and then re-reads it to indent it: about 3 µs
// per message, 7 % of all the CPU of `read --extract` on real traffic.
// appendIndexEntry writes the same bytes directly. encoding/json stays the
// reference: TestIndexJSON holds it to it byte for byte on entries with
// every field set and on the entries of every capture in pcaps/, and
// FuzzIndexJSON on any strings.

// Indentation of index.json's entries: the Encoder's prefix ("    ", the
// entries sit in the messages array) and one indent ("  ") per level.
const (
	indexField    = "\n      "     // a field of an entry
	indexAttach   = "\n        "   // an attachment in an entry's list
	indexAttField = "\n          " // a field of an attachment
)

// appendIndexEntry appends e as indexEntry's encoding/json Encoder (HTML
// escaping off, indented) followed by textsafe.AppendJSON would write it,
// without the final newline. ok is false when e holds a time encoding/json
// refuses (the caller then lets encoding/json report it).
func appendIndexEntry(b []byte, e *IndexEntry) ([]byte, bool) {
	b = strconv.AppendUint(append(b, "{"+indexField+`"session": `...), e.Session, 10)
	b = appendString(append(b, ","+indexField+`"proto": `...), string(e.Proto))
	b = appendString(append(b, ","+indexField+`"type": `...), e.Type)
	b, ok := appendTime(append(b, ","+indexField+`"ts": `...), e.TS)
	if !ok {
		return b, false
	}
	b = appendString(append(b, ","+indexField+`"client": `...), e.Client)
	b = appendString(append(b, ","+indexField+`"server": `...), e.Server)
	b = appendString(append(b, ","+indexField+`"file": `...), e.File)
	b = strconv.AppendInt(append(b, ","+indexField+`"size": `...), e.Size, 10)
	b = appendString(append(b, ","+indexField+`"sha256": `...), e.SHA256)
	if e.MessageID != "" {
		b = appendString(append(b, ","+indexField+`"message_id": `...), e.MessageID)
	}
	if e.Subject != "" {
		b = appendString(append(b, ","+indexField+`"subject": `...), e.Subject)
	}
	if e.From != "" {
		b = appendString(append(b, ","+indexField+`"from": `...), e.From)
	}
	if e.MailFrom != "" {
		b = appendString(append(b, ","+indexField+`"mail_from": `...), e.MailFrom)
	}
	if e.Truncated {
		b = append(b, ","+indexField+`"truncated": true`...)
	}
	if e.MissingBytes != 0 {
		b = strconv.AppendInt(append(b, ","+indexField+`"missing_bytes": `...), e.MissingBytes, 10)
	}
	if len(e.Attachments) > 0 {
		b = append(b, ","+indexField+`"attachments": [`...)
		for i := range e.Attachments {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendIndexAttachment(b, &e.Attachments[i])
		}
		b = append(b, indexField+"]"...)
	}
	return append(b, "\n    }"...), true
}

func appendIndexAttachment(b []byte, a *IndexAttachent) []byte {
	b = appendString(append(b, indexAttach+"{"+indexAttField+`"file": `...), a.File)
	if a.Filename != "" {
		b = appendString(append(b, ","+indexAttField+`"filename": `...), a.Filename)
	}
	b = appendString(append(b, ","+indexAttField+`"content_type": `...), a.ContentType)
	b = strconv.AppendInt(append(b, ","+indexAttField+`"size": `...), a.Size, 10)
	if a.SHA256 != "" {
		b = appendString(append(b, ","+indexAttField+`"sha256": `...), a.SHA256)
	}
	if a.Truncated {
		b = append(b, ","+indexAttField+`"truncated": true`...)
	}
	return append(b, indexAttach+"}"...)
}
