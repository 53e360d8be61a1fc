package main

import (
	"bytes"
	"path/filepath"
	"testing"
)

// TestMidstreamGreetingUnmappedPort: a capture that starts mid-connection
// on a port no port map names, with the server's greeting first. capture
// takes the greeting's sender for the client (by the ports); the sniffer
// finds the roles reversed and capture swaps them once. Before, the swap
// was applied twice for every byte after the greeting: 0 commands,
// malformed_reply, bytes_client/bytes_server 283/499.
func TestMidstreamGreetingUnmappedPort(t *testing.T) {
	path := filepath.Join("..", "..", "pcaps", "gen-smtp-midstream-greeting.pcap")
	recs := decodeFile(t, path, "--level", "commands")
	ss := ofType(recs, "session")
	if len(ss) != 1 {
		t.Fatalf("%d sessions", len(ss))
	}
	s := ss[0]
	if s.str("client") != "192.0.2.29:50629" || s.str("server") != "198.51.100.26:2526" {
		t.Errorf("roles: client %s server %s", s.str("client"), s.str("server"))
	}
	if s.num("bytes_client") != 450 || s.num("bytes_server") != 332 {
		t.Errorf("bytes_client/bytes_server %v/%v, want 450/332", s.num("bytes_client"), s.num("bytes_server"))
	}
	if s.num("commands") != 5 || s.num("transactions") != 1 || len(s.list("anomalies")) != 0 {
		t.Errorf("commands %v transactions %v anomalies %v", s.num("commands"), s.num("transactions"), s.list("anomalies"))
	}
	var cmds []string
	for _, c := range ofType(recs, "command") {
		cmds = append(cmds, c.str("verb"))
	}
	if got := len(cmds); got != 5 {
		t.Errorf("command records %v", cmds)
	}
	mails := ofType(recs, "smtp.mail")
	if len(mails) != 1 || mails[0].str("status") != "accepted" || mails[0].obj("message").str("subject") != "Greeting first" {
		t.Errorf("mails %v", mails)
	}
	// Naming the port gives the same records: capture then takes the
	// right roles from the start.
	a, _, _ := runCLI("read", "--level", "commands", path)
	b, _, _ := runCLI("read", "--level", "commands", "--ports", "smtp=2526", path)
	if !bytes.Equal(a, b) {
		t.Errorf("output differs from --ports smtp=2526:\n%s", firstDiff(string(b), string(a)))
	}
}
