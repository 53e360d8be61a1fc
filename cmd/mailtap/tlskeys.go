package main

import (
	"context"
	"time"

	"github.com/spf13/pflag"

	"github.com/mailtap/mailtap/capture"
	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/dispatch"
	"github.com/mailtap/mailtap/decode/tlsdec"
)

// tlsFlags: decrypting TLS with key logs (--tls-keylog, and keys embedded
// in pcapng Decryption Secrets Blocks).
type tlsFlags struct {
	keylogs []string
	live    bool
	keys    *tlsdec.KeyLog
	// embedded: the input is a pcapng file, whose Decryption Secrets
	// Blocks may carry a key log anywhere in it.
	embedded bool
}

func (t *tlsFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&t.keylogs, "tls-keylog", nil, "decrypt TLS (implicit TLS ports, after STARTTLS/STLS) with this NSS key log (SSLKEYLOGFILE); repeatable; re-read as it grows when sniffing")
}

// load reads the key log files. Called once the flags are parsed.
func (t *tlsFlags) load() error {
	if len(t.keylogs) == 0 || t.keys != nil {
		return nil
	}
	t.keys = tlsdec.NewKeyLog()
	for _, p := range t.keylogs {
		if err := t.keys.AddFile(p); err != nil {
			return err
		}
	}
	return nil
}

// useSource takes the key logs embedded in a capture file: all of them
// before decoding when the file can be scanned first (a plain pcapng
// file), else as they come.
func (t *tlsFlags) useSource(src *capture.FileSource, path string) error {
	if !src.Pcapng() {
		return nil
	}
	t.embedded = true
	if t.keys == nil {
		t.keys = tlsdec.NewKeyLog()
	}
	keys := t.keys
	take := func(typ uint32, data []byte) {
		if typ == capture.SecretsTLSKeyLog {
			keys.AddBytes(data)
		}
	}
	if path != "-" {
		scanned, err := capture.ScanSecrets(path, take)
		if err != nil {
			return err
		}
		if scanned {
			return nil
		}
	}
	src.OnSecrets(take)
	return nil
}

// wrap puts the decryptor in front of every protocol decoder when there
// are keys (or may be, in a pcapng).
func (t *tlsFlags) wrap(p map[decode.Proto]dispatch.NewFunc) {
	if t.keys == nil {
		return
	}
	cfg := tlsdec.Config{OnlyWithKeys: len(t.keylogs) == 0}
	switch {
	case t.live:
		// Keys are written as handshakes end: records that come first
		// wait for them, up to 30 s of capture time.
		cfg.HoldTimeout = 30 * time.Second
	case !t.embedded:
		// A file with every key given up front: nothing to wait for.
		cfg.HoldBytes = -1
	}
	for k, f := range p {
		p[k] = tlsdec.Wrap(f, t.keys, cfg)
	}
}

// goLive sets up live capture: the key log files are re-read as they
// grow, until ctx ends (keys are written while the capture runs).
func (t *tlsFlags) goLive(ctx context.Context) {
	t.live = true
	if t.keys == nil || len(t.keylogs) == 0 {
		return
	}
	go func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				t.keys.Refresh() // a file that went away is read again when it is back
			}
		}
	}()
}
