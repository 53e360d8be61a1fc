package main

import (
	"net/mail"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// TestECSOutput: -f ecs writes one ECS document per record, in the same
// order as -f json, each carrying that record whole under "mailtap" and
// its values in the ECS fields: @timestamp, source/destination,
// network.community_id, email.from/to/subject/message_id and the
// attachments' hashes.
func TestECSOutput(t *testing.T) {
	for _, name := range []string{"real-postfix-swaks-basic.pcap", "real-dovecot-imaplib.pcap", "real-dovecot-pop3-fetchmail.pcap", "real-postfix-auth.pcap"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("..", "..", "pcaps", name)
			recs := decodeFile(t, path, "--hash", "sha256,md5,sha1")
			docs := decodeFile(t, path, "-f", "ecs", "--hash", "sha256,md5,sha1")
			if len(docs) != len(recs) || len(recs) == 0 {
				t.Fatalf("%d ECS documents for %d records", len(docs), len(recs))
			}
			emails := 0
			for i, d := range docs {
				r := recs[i]
				if !reflect.DeepEqual(map[string]any(d.obj("mailtap")), map[string]any(r)) {
					t.Fatalf("document %d: mailtap %v, record %v", i, d.obj("mailtap"), r)
				}
				eq := func(what string, got, want any) {
					if !reflect.DeepEqual(got, want) {
						t.Errorf("document %d (%s): %s %v, want %v", i, r.str("type"), what, got, want)
					}
				}
				eq("@timestamp", d.str("@timestamp"), r.str("ts"))
				eq("source.ip", d.obj("source").str("ip"), r.str("client_ip"))
				eq("source.port", d.obj("source").num("port"), r.num("client_port"))
				eq("destination.ip", d.obj("destination").str("ip"), r.str("server_ip"))
				eq("destination.port", d.obj("destination").num("port"), r.num("server_port"))
				eq("network.community_id", d.obj("network").str("community_id"), r.str("community_id"))
				eq("network.protocol", d.obj("network").str("protocol"), r.str("proto"))
				eq("event.dataset", d.obj("event").str("dataset"), "mailtap."+r.str("type"))
				m := r.obj("message")
				if m == nil {
					continue
				}
				emails++
				e := d.obj("email")
				eq("email.subject", e.str("subject"), m.str("subject"))
				eq("email.message_id", e.str("message_id"), m.str("message_id"))
				if from := m.str("from"); from != "" {
					a, err := mail.ParseAddress(from)
					if err != nil {
						t.Fatalf("from %q: %v", from, err)
					}
					eq("email.from.address", e.obj("from").list("address"), []any{a.Address})
				}
				var to []any
				for _, x := range m.list("to") {
					a, err := mail.ParseAddress(x.(string))
					if err != nil {
						t.Fatalf("to %q: %v", x, err)
					}
					to = append(to, a.Address)
				}
				if len(to) > 0 {
					eq("email.to.address", e.obj("to").list("address"), to)
				}
				atts := e.list("attachments")
				eq("attachments", len(atts), len(m.list("attachments")))
				for j, a := range m.list("attachments") {
					if j >= len(atts) {
						break
					}
					a := record(a.(map[string]any))
					f := record(atts[j].(map[string]any)).obj("file")
					for _, h := range []string{"sha256", "md5", "sha1"} {
						eq("email.attachments.file.hash."+h, f.obj("hash").str(h), a.str(h))
					}
					eq("email.attachments.file.name", f.str("name"), a.str("filename"))
				}
				if !slices.Contains(d.obj("related").list("hash"), any(m.str("sha1"))) {
					t.Errorf("document %d: related.hash lacks the message sha1", i)
				}
			}
			if emails == 0 {
				t.Error("no email documents")
			}
		})
	}
}
