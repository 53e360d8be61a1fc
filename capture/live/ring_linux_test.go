//go:build linux

package live

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("live capture needs root (or CAP_NET_RAW)")
	}
}

func TestOpenNoInterface(t *testing.T) {
	_, err := Open(Config{Interface: "mailtap-nope0"})
	if !errors.Is(err, ErrNoInterface) {
		t.Fatalf("err = %v, want ErrNoInterface", err)
	}
	if !strings.Contains(err.Error(), `"mailtap-nope0"`) || !strings.Contains(err.Error(), "lo") {
		t.Errorf("error %q should name the interface and list the ones that exist", err)
	}
}

// seen is what a reader saw of one TCP flow.
type seen struct {
	payload map[string][]byte // by "src>dst"
	handle  map[string]int    // flow key -> handle index
	packets int
	links   map[layers.LinkType]int
	other   int // packets that are not TCP on the test ports
	wait    func()
}

// readAll drains every handle of c concurrently until Interrupt.
func readAll(t *testing.T, c *Capture, port uint16) *seen {
	t.Helper()
	s := &seen{payload: map[string][]byte{}, handle: map[string]int{}, links: map[layers.LinkType]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, h := range c.Handles() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				data, ci, link, err := h.ReadPacket()
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Errorf("handle %d: %v", i, err)
					return
				}
				if ci.CaptureLength != len(data) {
					t.Errorf("capture length %d for %d bytes", ci.CaptureLength, len(data))
				}
				first := layers.LayerTypeEthernet
				if link == layers.LinkTypeLinuxSLL {
					first = layers.LayerTypeLinuxSLL
				}
				pk := gopacket.NewPacket(data, first, gopacket.NoCopy)
				mu.Lock()
				s.packets++
				s.links[link]++
				tl, _ := pk.Layer(layers.LayerTypeTCP).(*layers.TCP)
				if tl == nil || (uint16(tl.SrcPort) != port && uint16(tl.DstPort) != port) {
					s.other++
					mu.Unlock()
					continue
				}
				dir := fmt.Sprintf("%d>%d", tl.SrcPort, tl.DstPort)
				s.payload[dir] = append(s.payload[dir], tl.Payload...)
				flow := fmt.Sprint(min(tl.SrcPort, tl.DstPort), "-", max(tl.SrcPort, tl.DstPort))
				if prev, ok := s.handle[flow]; ok && prev != i {
					t.Errorf("flow %s seen on handles %d and %d: fanout is not symmetric", flow, prev, i)
				}
				s.handle[flow] = i
				mu.Unlock()
			}
		}()
	}
	s.wait = func() { wg.Wait() }
	return s
}

func (s *seen) String() string { return fmt.Sprintf("%d packets, %d other", s.packets, s.other) }

// echo serves one line-echo exchange per connection on a loopback port.
func echoServer(t *testing.T) (net.Listener, uint16) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						c.Write([]byte(strings.ToUpper(string(buf[:n]))))
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln, uint16(ln.Addr().(*net.TCPAddr).Port)
}

func talk(t *testing.T, port uint16, msg string) (clientPort uint16) {
	t.Helper()
	c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 0, len(msg))
	buf := make([]byte, 64<<10)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(got) < len(msg) {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatal(err)
		}
	}
	return uint16(c.LocalAddr().(*net.TCPAddr).Port)
}

func TestLoopbackCapture(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct {
		iface   string
		workers int
		link    layers.LinkType
	}{
		{"lo", 1, layers.LinkTypeEthernet},
		{"lo", 2, layers.LinkTypeEthernet},
		{"any", 2, layers.LinkTypeLinuxSLL},
	} {
		t.Run(fmt.Sprintf("%s-%d", tc.iface, tc.workers), func(t *testing.T) {
			_, port := echoServer(t)
			c, err := Open(Config{Interface: tc.iface, Workers: tc.workers, Ports: []uint16{port}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.LinkType() != tc.link {
				t.Errorf("link type %v, want %v", c.LinkType(), tc.link)
			}
			s := readAll(t, c, port)
			// Unrelated loopback traffic, which the kernel filter must drop.
			_, other := echoServer(t)
			talk(t, other, "not for us\r\n")
			want := map[uint16]string{}
			for i := range 20 {
				msg := fmt.Sprintf("hello %d %s\r\n", i, strings.Repeat("x", i*997))
				want[talk(t, port, msg)] = msg
			}
			time.Sleep(50 * time.Millisecond)
			c.Interrupt()
			s.wait()
			if s.other != 0 {
				t.Errorf("%d packets of other ports passed the kernel filter", s.other)
			}
			if s.links[tc.link] != s.packets {
				t.Errorf("links %v, want all %v", s.links, tc.link)
			}
			for cp, msg := range want {
				up := s.payload[fmt.Sprintf("%d>%d", cp, port)]
				down := s.payload[fmt.Sprintf("%d>%d", port, cp)]
				if string(up) != msg {
					t.Errorf("client %d sent %d bytes, captured %d", cp, len(msg), len(up))
				}
				if !strings.EqualFold(string(down[:min(len(down), len(msg))]), msg) {
					t.Errorf("client %d: server reply captured as %q", cp, trim(down))
				}
			}
			st := c.Stats()
			if st.Packets != uint64(s.packets) || st.Received < st.Packets || st.Drops != 0 {
				t.Errorf("stats %+v for %d packets read", st, s.packets)
			}
			if tc.workers > 1 {
				used := map[int]bool{}
				for _, h := range s.handle {
					used[h] = true
				}
				t.Logf("%d flows over handles %v", len(s.handle), used)
			}
		})
	}
}

func trim(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

func TestNextTimeout(t *testing.T) {
	needRoot(t)
	c, err := Open(Config{Interface: "lo", Ports: []uint16{9}, BlockTimeout: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h := c.Handles()[0]
	start := time.Now()
	_, _, _, err = h.Next(30 * time.Millisecond)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Next on a silent port: %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d < 25*time.Millisecond || d > 2*time.Second {
		t.Errorf("Next returned after %v", d)
	}
	c.Interrupt()
	if _, _, _, err := h.ReadPacket(); err != io.EOF {
		t.Errorf("after Interrupt: %v, want io.EOF", err)
	}
}

// TestOpenPermission runs this test binary again as user nobody, where
// opening a packet socket must fail with ErrPermission.
func TestOpenPermission(t *testing.T) {
	if os.Getenv("MAILTAP_LIVE_AS_NOBODY") == "1" {
		_, err := Open(Config{Interface: "lo"})
		fmt.Printf("open error: %v\n", err)
		if !errors.Is(err, ErrPermission) {
			os.Exit(3)
		}
		return
	}
	needRoot(t)
	dir, err := os.MkdirTemp("", "mailtap-live")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "live.test")
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Skip("cannot read the test binary:", err)
	}
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	cmd := exec.Command(bin, "-test.run", "^TestOpenPermission$", "-test.v")
	cmd.Env = append(os.Environ(), "MAILTAP_LIVE_AS_NOBODY=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "open error: permission denied: run as root or grant CAP_NET_RAW") {
		t.Errorf("as nobody:\n%s", out)
	}
}
