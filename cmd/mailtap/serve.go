package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/mailtap/mailtap/decode/textsafe"
	"github.com/mailtap/mailtap/replay/server"
)

func serveCommand() *command {
	var (
		smtpAddr, pop3Addr, imapAddr string
		users                        []string
		certFile, keyFile            string
		storeDir, hostname           string
		maxMessage                   int64
		deterministic, requireTLS    bool
		quiet                        bool
		maxConns, maxConnsPerIP      int
		authDelay                    time.Duration
		authBudget, authFails        int
		forbidBareNewline            bool
		quota                        int64
	)
	return &command{
		name:    "serve",
		summary: "run the built-in SMTP, POP3 and IMAP server over one mail store",
		usage:   "mailtap serve [--smtp ADDR] [--pop3 ADDR] [--imap ADDR] [--user NAME:PASSWORD]... [--store DIR]",
		flags: func() *pflag.FlagSet {
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			fs.SortFlags = false
			fs.StringVar(&smtpAddr, "smtp", "127.0.0.1:2525", "SMTP listen address (\"\" to turn it off)")
			fs.StringVar(&pop3Addr, "pop3", "127.0.0.1:1110", "POP3 listen address (\"\" to turn it off)")
			fs.StringVar(&imapAddr, "imap", "127.0.0.1:1143", "IMAP listen address (\"\" to turn it off)")
			fs.StringArrayVar(&users, "user", nil, "a mailbox user as NAME:PASSWORD (repeatable); mail to NAME and NAME@any-domain is delivered")
			fs.StringVar(&certFile, "tls-cert", "", "PEM certificate for STARTTLS/STLS (default: a self-signed one made at start)")
			fs.StringVar(&keyFile, "tls-key", "", "PEM private key for --tls-cert")
			fs.StringVar(&storeDir, "store", "", "keep the mail store in this directory (default: in memory)")
			fs.StringVar(&hostname, "hostname", "", "host name in greetings (default localhost)")
			fs.Int64Var(&maxMessage, "max-message", 32<<20, "largest message accepted, in bytes")
			fs.BoolVar(&deterministic, "deterministic", false, "fixed clock, host name and UIDVALIDITY (for tests and replay)")
			fs.BoolVar(&requireTLS, "require-tls-auth", false, "refuse authentication before STARTTLS/STLS")
			fs.IntVar(&maxConns, "max-conns", 0, "most open connections per protocol (0: no limit); one more gets the protocol's busy reply")
			fs.IntVar(&maxConnsPerIP, "max-conns-per-ip", 0, "most open connections per protocol from one client address (0: no limit)")
			fs.DurationVar(&authDelay, "auth-failure-delay", 2*time.Second, "wait this long before answering a failed login (negative: no wait)")
			fs.IntVar(&authBudget, "auth-failures-per-ip", 20, "failed logins a client address may make in 10 minutes, across connections and protocols, before every login from it is refused (negative: no limit)")
			fs.IntVar(&authFails, "max-auth-failures", 3, "failed AUTH commands before an SMTP connection is closed")
			fs.Int64Var(&quota, "quota", 0, "most bytes of messages per user (0: no limit); SMTP answers 552 5.2.2, IMAP NO [OVERQUOTA]")
			fs.BoolVar(&forbidBareNewline, "forbid-bare-newline", false, "answer a DATA message with a bare LF line end with 521 and disconnect (as Postfix's smtpd_forbid_bare_newline)")
			fs.BoolVarP(&quiet, "quiet", "q", false, "do not log sessions on stderr")
			return fs
		},
		run: func(_ *pflag.FlagSet, args []string, stdout, stderr io.Writer) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q", args[0])
			}
			opts := server.Options{
				SMTPAddr: smtpAddr, POP3Addr: pop3Addr, IMAPAddr: imapAddr,
				Users: map[string]string{}, StoreDir: storeDir, Hostname: hostname,
				MaxMessageBytes: maxMessage, Deterministic: deterministic, RequireTLSForAuth: requireTLS,
				MaxConns: maxConns, MaxConnsPerIP: maxConnsPerIP, AuthFailuresPerIP: authBudget,
				MaxAuthFailures: authFails, ForbidBareNewline: forbidBareNewline, QuotaBytes: quota,
			}
			if maxConns < 0 || maxConnsPerIP < 0 || authFails < 1 || quota < 0 {
				return usagef("--max-conns, --max-conns-per-ip and --quota must be 0 or more, --max-auth-failures at least 1")
			}
			// 0 means the library default; here 0 means no wait.
			opts.AuthFailureDelay = authDelay
			if authDelay == 0 {
				opts.AuthFailureDelay = -1
			}
			if authBudget == 0 {
				opts.AuthFailuresPerIP = -1
			}
			for _, u := range users {
				name, pass, ok := strings.Cut(u, ":")
				if !ok || name == "" {
					return usagef("--user %q: want NAME:PASSWORD", u)
				}
				opts.Users[name] = pass
			}
			if (certFile == "") != (keyFile == "") {
				return usagef("--tls-cert and --tls-key go together")
			}
			if certFile != "" {
				cert, err := tls.LoadX509KeyPair(certFile, keyFile)
				if err != nil {
					return fmt.Errorf("TLS key pair: %w", err)
				}
				opts.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
			}
			if !quiet {
				opts.Logger = log.New(textsafe.NewWriter(stderr), "", log.LstdFlags|log.Lmicroseconds)
			}
			srv, err := server.New(opts)
			if err != nil {
				return err
			}
			if err := srv.Start(); err != nil {
				return err
			}
			addrs := srv.Addrs()
			names := make([]string, 0, len(addrs))
			for n := range addrs {
				names = append(names, n)
			}
			sort.Strings(names)
			// The one announcement of the addresses (the server does not
			// log them itself).
			for _, n := range names {
				fmt.Fprintf(stdout, "%s listening on %s\n", strings.ToUpper(n), addrs[n])
			}
			if len(opts.Users) == 0 {
				fmt.Fprintln(stderr, "mailtap serve: no --user given: SMTP accepts no recipients and nobody can log in")
			}
			serveWait()
			fmt.Fprintln(stderr, "mailtap serve: shutting down")
			return srv.Close()
		},
	}
}

// serveWait blocks until SIGINT or SIGTERM; tests replace it.
var serveWait = func() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	signal.Stop(sig)
}
