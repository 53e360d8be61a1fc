package server

import (
	"bufio"
	"fmt"
	"net/smtp"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailtap/mailtap/replay/server/mailstore"
)

// TestKill9Durability: a server with a store directory runs in a child
// process while 8 clients deliver over SMTP; the child is killed with
// SIGKILL in the middle, three times over (each round restarts it on the
// same directory). Every message that got its 250 must be in the store
// afterwards, exactly once and whole; the store must open after each kill.
func TestKill9Durability(t *testing.T) {
	if dir := os.Getenv("MAILTAP_DURABLE_CHILD"); dir != "" {
		durableChild(dir)
		return
	}
	dir := t.TempDir()
	acked := map[string]bool{}
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Durability$")
		cmd.Env = append(os.Environ(), "MAILTAP_DURABLE_CHILD="+dir)
		stdout, _ := cmd.StdoutPipe()
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		if !sc.Scan() {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: child did not start: %s", round, stderr.String())
		}
		addr := strings.TrimSpace(sc.Text())
		var mu sync.Mutex
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; ; k++ {
					select {
					case <-stop:
						return
					default:
					}
					id := fmt.Sprintf("%d.%d.%d@kill", round, w, k)
					body := fmt.Sprintf("Subject: durable\r\nMessage-ID: <%s>\r\n\r\n%s\r\nend\r\n", id, strings.Repeat("x", 200*(k%10)))
					if err := sendOne(addr, body); err != nil {
						return // the server is gone
					}
					mu.Lock()
					acked[id] = true
					mu.Unlock()
				}
			}()
		}
		time.Sleep(400 * time.Millisecond)
		cmd.Process.Kill() // SIGKILL
		cmd.Wait()
		close(stop)
		wg.Wait()

		st, err := mailstore.New(mailstore.Options{Dir: dir})
		if err != nil {
			t.Fatalf("round %d: store does not open after kill -9: %v", round, err)
		}
		snap, err := st.Snapshot("alice", "INBOX")
		st.Close()
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]int{}
		for _, m := range snap.Messages {
			b, err := m.Body()
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			raw := string(b)
			i := strings.Index(raw, "Message-ID: <")
			j := strings.IndexByte(raw[i:], '>')
			have[raw[i+13:i+j]]++
			if !strings.HasSuffix(raw, "\r\nend\r\n") {
				t.Fatalf("round %d: a stored message is cut: %q", round, raw[max(0, len(raw)-40):])
			}
		}
		for id := range acked {
			if have[id] != 1 {
				t.Fatalf("round %d: acknowledged message %s is stored %d times (%d acknowledged, %d stored)",
					round, id, have[id], len(acked), len(snap.Messages))
			}
		}
		t.Logf("round %d: %d acknowledged so far, %d stored", round, len(acked), len(snap.Messages))
	}
	if len(acked) < 30 {
		t.Fatalf("only %d messages acknowledged: the test proves little", len(acked))
	}
}

func sendOne(addr, body string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return err
	}
	if err := c.Mail("k@example.org"); err != nil {
		return err
	}
	if err := c.Rcpt("alice@example.com"); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(body)); err != nil {
		return err
	}
	return w.Close() // nil only after the 250
}

func durableChild(dir string) {
	s, err := New(Options{SMTPAddr: "127.0.0.1:0", StoreDir: dir, Users: map[string]string{"alice": "secret"}})
	if err == nil {
		err = s.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(s.Addrs()["smtp"])
	select {} // until killed
}
