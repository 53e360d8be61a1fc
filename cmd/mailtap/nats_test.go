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
}
