package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestReadToNATS: read -o nats://.../SUBJECT publishes every record of a
// capture to a real JetStream (nats-server on 127.0.0.1), on
// SUBJECT.<type>, in the order -f json writes them, and reports the
// sink's counters on stderr.
func TestReadToNATS(t *testing.T) {
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nats-server"); serr != nil {
			t.Skip("nats-server not installed (Debian package nats-server): ", err)
		}
		bin = "/usr/sbin/nats-server"
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	var nc *nats.Conn
	for deadline := time.Now().Add(10 * time.Second); ; {
		if nc, err = nats.Connect(url); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer nc.Close()

	path := filepath.Join("..", "..", "pcaps", "real-dovecot-imaplib.pcap")
	want := decodeFile(t, path, "--level", "commands")
	out, errOut, code := runCLI("read", "--level", "commands", "-o", url+"/site1.mailtap", path)
	if code != 0 || len(out) != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	if !strings.Contains(string(errOut), fmt.Sprintf("sink: %d records acknowledged, sink_dropped 0", len(want))) {
		t.Errorf("stderr: %s", errOut)
	}
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "SITE1_MAILTAP")
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.Fetch(len(want)+1, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for m := range batch.Messages() {
		if i >= len(want) {
			t.Fatalf("more messages than the %d records", len(want))
		}
		var got record
		if err := json.Unmarshal(m.Data(), &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want[i]) {
			t.Errorf("message %d: %v, want %v", i, got, want[i])
		}
		if m.Subject() != "site1.mailtap."+want[i].str("type") {
			t.Errorf("message %d on %s", i, m.Subject())
		}
		i++
	}
	if i != len(want) {
		t.Errorf("%d messages for %d records", i, len(want))
	}
	if _, _, code := runCLI("read", "-f", "text", "-o", url+"/x", path); code != exitUsage {
		t.Errorf("-f text to NATS: exit %d", code)
	}

	// consume reads the records back: as JSON, byte for byte what read
	// writes; as Zeek logs, what read -f zeek writes (SMTP with STARTTLS
	// here, whose row needs the command records' reply codes).
	wantJSON, _, _ := runCLI("read", "--level", "commands", path)
	got, errOut, code := runCLI("consume", "-c", strconv.Itoa(len(want)), "--idle", "5s", url+"/site1.mailtap")
	if code != 0 || string(got) != string(wantJSON) {
		t.Errorf("consume: exit %d (%s), output differs from read's:\n%s\nwant:\n%s", code, errOut, got, wantJSON)
	}
	smtpCap := filepath.Join("..", "..", "pcaps", "real-postfix-starttls.pcap")
	if _, errOut, code := runCLI("read", "--level", "commands", "-o", url+"/site2", smtpCap); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	zr, zc := t.TempDir(), filepath.Join(t.TempDir(), "z")
	if _, errOut, code := runCLI("read", "-f", "zeek", "-o", zr, smtpCap); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if _, errOut, code := runCLI("consume", "-f", "zeek", "-o", zc, "--idle", "1s", url+"/site2"); code != 0 {
		t.Fatalf("consume -f zeek: exit %d: %s", code, errOut)
	}
	for _, log := range []string{"smtp.log"} {
		a, b := zeekBody(t, filepath.Join(zr, log)), zeekBody(t, filepath.Join(zc, log))
		if a != b || !strings.Contains(a, "\tT\t") {
			t.Errorf("%s from consume:\n%s\nfrom read:\n%s", log, b, a)
		}
	}
}

// zeekBody is a Zeek log without its #open and #close lines.
func zeekBody(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "#open") && !strings.HasPrefix(l, "#close") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
