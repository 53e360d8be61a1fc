// Command mangleproxy runs replay/mangle: a proxy in front of a
// mail server that drops capabilities, rewrites enhanced status codes or
// holds one answer back. replay-check.sh uses it to show that mailtap
// replay reports such a server as different.
//
//	go run ./pcaps/record/mangleproxy -listen 127.0.0.1:2525 -target 127.0.0.1:25 \
//	    -drop STARTTLS,8BITMIME -code 5.1.1=5.7.1 [-delay-verb MAIL -delay 8s]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mailtap/mailtap/replay/mangle"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	target := flag.String("target", "", "the server's address")
	drop := flag.String("drop", "", "capability keywords to take out, comma-separated")
	codes := flag.String("code", "", "enhanced code rewrites FROM=TO, comma-separated")
	verb := flag.String("delay-verb", "", "hold back the answer to the first command with this verb")
	delay := flag.Duration("delay", 0, "by this long")
	flag.Parse()
	if *target == "" {
		fmt.Fprintln(os.Stderr, "mangleproxy: -target is required")
		os.Exit(2)
	}
	cfg := mangle.Config{Target: *target, DelayVerb: *verb, Delay: *delay, Codes: map[string]string{}}
	for _, d := range strings.Split(*drop, ",") {
		if d = strings.TrimSpace(d); d != "" {
			cfg.Drop = append(cfg.Drop, d)
		}
	}
	for _, c := range strings.Split(*codes, ",") {
		if from, to, ok := strings.Cut(c, "="); ok {
			cfg.Codes[from] = to
		}
	}
	p, err := mangle.Start(*listen, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mangleproxy:", err)
		os.Exit(1)
	}
	fmt.Println(p.Addr()) // the script reads the address from here
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sig:
	case <-time.After(time.Hour):
	}
	p.Close()
}
