package tlsdec

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// Key log labels of the NSS key log format
// (https://firefox-source-docs.mozilla.org/security/nss/legacy/key_log_format/,
// also draft-ietf-tls-keylogfile).
const (
	labelClientRandom = "CLIENT_RANDOM"
	labelClientHS     = "CLIENT_HANDSHAKE_TRAFFIC_SECRET"
	labelServerHS     = "SERVER_HANDSHAKE_TRAFFIC_SECRET"
	labelClientApp    = "CLIENT_TRAFFIC_SECRET_0"
	labelServerApp    = "SERVER_TRAFFIC_SECRET_0"
)

// maxKeyLogLine bounds one key log line; the longest valid one (a label,
// a 32-byte random and a 64-byte secret in hex) is under 200 bytes.
const maxKeyLogLine = 1024

// Secrets are the keys the key log holds for one client random. A field is
// nil when the log has no line for it.
type Secrets struct {
	// Master is the TLS 1.2 (and older) master secret (CLIENT_RANDOM).
	Master []byte
	// TLS 1.3 traffic secrets.
	ClientHandshake []byte
	ServerHandshake []byte
	ClientTraffic0  []byte
	ServerTraffic0  []byte
}

// KeyLog maps client randoms to secrets. It is safe for concurrent use:
// lookups may run while files are re-read or blocks added. The zero value
// is not usable; call NewKeyLog.
type KeyLog struct {
	mu      sync.RWMutex
	byCR    map[[32]byte]*Secrets
	files   []*keyLogFile
	bad     int
	lines   int
	version uint64 // bumped whenever a secret is added
	// TLS 1.2 resumption: master secrets learnt from full handshakes,
	// by session id and by ticket.
	bySession map[string][]byte
	byTicket  map[string][]byte
}

type keyLogFile struct {
	path    string
	off     int64
	partial []byte // an unterminated last line, kept until it ends
}

// NewKeyLog returns an empty key log.
func NewKeyLog() *KeyLog {
	return &KeyLog{
		byCR:      make(map[[32]byte]*Secrets),
		bySession: make(map[string][]byte),
		byTicket:  make(map[string][]byte),
	}
}

// AddFile reads a key log file and remembers it, so that Refresh reads
// what is appended to it later.
func (k *KeyLog) AddFile(path string) error {
	f := &keyLogFile{path: path}
	if err := k.readFile(f); err != nil {
		return err
	}
	k.mu.Lock()
	k.files = append(k.files, f)
	k.mu.Unlock()
	return nil
}

// Refresh reads what was appended to the files given to AddFile since they
// were last read. A file that shrank (was truncated or replaced) is read
// again from its start.
func (k *KeyLog) Refresh() error {
	k.mu.RLock()
	files := append([]*keyLogFile(nil), k.files...)
	k.mu.RUnlock()
	var errs []error
	for _, f := range files {
		if err := k.readFile(f); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// readFile reads f from its offset. Only the goroutine calling AddFile or
// Refresh touches f's offset; Refresh calls are expected from one
// goroutine at a time.
func (k *KeyLog) readFile(f *keyLogFile) error {
	fh, err := os.Open(f.path)
	if err != nil {
		return fmt.Errorf("tls key log: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return fmt.Errorf("tls key log: %w", err)
	}
	if st.Size() < f.off {
		f.off, f.partial = 0, nil
	}
	if st.Size() == f.off {
		return nil
	}
	if _, err := fh.Seek(f.off, io.SeekStart); err != nil {
		return fmt.Errorf("tls key log: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(fh, st.Size()-f.off))
	if err != nil {
		return fmt.Errorf("tls key log %s: %w", f.path, err)
	}
	f.off += int64(len(data))
	if len(f.partial) > 0 {
		data = append(f.partial, data...)
		f.partial = nil
	}
	// Keep an unterminated last line for the next read: the writer may
	// be in the middle of it.
	if i := bytes.LastIndexByte(data, '\n'); i < len(data)-1 {
		rest := data[i+1:]
		if len(rest) <= maxKeyLogLine {
			f.partial = append([]byte(nil), rest...)
		}
		data = data[:i+1]
	}
	k.AddBytes(data)
	return nil
}

// Read adds the key log lines read from r.
func (k *KeyLog) Read(r io.Reader) error {
	data, err := io.ReadAll(r)
	k.AddBytes(data)
	if err != nil {
		return fmt.Errorf("tls key log: %w", err)
	}
	return nil
}

// AddBytes adds the key log lines in b (for example the contents of a
// pcapng Decryption Secrets Block). An unterminated last line counts.
func (k *KeyLog) AddBytes(b []byte) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		k.addLine(line)
	}
}

// addLine parses one line: "LABEL <client random hex> <secret hex>".
// Empty lines and '#' comments are skipped silently; anything else that
// does not parse (unknown label, bad hex, wrong lengths) counts as bad.
func (k *KeyLog) addLine(line []byte) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] == '#' {
		return
	}
	f := bytes.Fields(line)
	if len(f) != 3 || len(line) > maxKeyLogLine {
		k.countBad()
		return
	}
	var cr [32]byte
	if hex.DecodedLen(len(f[1])) != 32 {
		k.countBad()
		return
	}
	if _, err := hex.Decode(cr[:], f[1]); err != nil {
		k.countBad()
		return
	}
	secret := make([]byte, hex.DecodedLen(len(f[2])))
	if _, err := hex.Decode(secret, f[2]); err != nil {
		k.countBad()
		return
	}
	label := string(f[0])
	switch label {
	case labelClientRandom:
		if len(secret) != 48 {
			k.countBad()
			return
		}
	case labelClientHS, labelServerHS, labelClientApp, labelServerApp:
		// SHA-256 or SHA-384 sized.
		if len(secret) != 32 && len(secret) != 48 {
			k.countBad()
			return
		}
	default:
		// Other labels (early traffic, exporter secrets, ECH) are valid
		// lines mailtap has no use for: not bad, just not kept.
		if isKnownUnusedLabel(label) {
			k.mu.Lock()
			k.lines++
			k.mu.Unlock()
			return
		}
		k.countBad()
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.lines++
	s := k.byCR[cr]
	if s == nil {
		s = &Secrets{}
		k.byCR[cr] = s
	}
	switch label {
	case labelClientRandom:
		s.Master = secret
	case labelClientHS:
		s.ClientHandshake = secret
	case labelServerHS:
		s.ServerHandshake = secret
	case labelClientApp:
		s.ClientTraffic0 = secret
	case labelServerApp:
		s.ServerTraffic0 = secret
	}
	k.version++
}

func isKnownUnusedLabel(l string) bool {
	switch l {
	case "CLIENT_EARLY_TRAFFIC_SECRET", "EARLY_EXPORTER_SECRET", "EXPORTER_SECRET",
		"ECH_SECRET", "ECH_CONFIG", "RSA",
		// OpenSSL logs the secrets after each KeyUpdate; the decryptor
		// derives them itself.
		"CLIENT_TRAFFIC_SECRET_N", "SERVER_TRAFFIC_SECRET_N":
		return true
	}
	return false
}

func (k *KeyLog) countBad() {
	k.mu.Lock()
	k.bad++
	k.mu.Unlock()
}

// Lookup returns a copy of the secrets known for a client random.
func (k *KeyLog) Lookup(clientRandom [32]byte) (Secrets, bool) {
	if k == nil {
		return Secrets{}, false
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	s, ok := k.byCR[clientRandom]
	if !ok {
		return Secrets{}, false
	}
	return *s, true
}

// Stats returns how many lines were taken and how many were skipped as
// malformed.
func (k *KeyLog) Stats() (lines, bad int) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.lines, k.bad
}

// Version changes whenever a secret is added; a decryptor waiting for a
// key compares it to know whether looking again can help.
func (k *KeyLog) Version() uint64 {
	if k == nil {
		return 0
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.version
}

// maxResumptionEntries bounds the TLS 1.2 resumption caches.
const maxResumptionEntries = 1 << 16

// rememberSession records the master secret of a full TLS 1.2 handshake
// under its session id and tickets, so that a later connection resuming it
// can be decrypted although the key log has no line for its own random.
func (k *KeyLog) rememberSession(sessionID, ticket, master []byte) {
	if k == nil || len(master) == 0 {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(sessionID) > 0 {
		if len(k.bySession) >= maxResumptionEntries {
			clear(k.bySession)
		}
		k.bySession[string(sessionID)] = master
	}
	if len(ticket) > 0 {
		if len(k.byTicket) >= maxResumptionEntries {
			clear(k.byTicket)
		}
		k.byTicket[string(ticket)] = master
	}
	k.version++
}

// resumed looks up a master secret by session id or ticket.
func (k *KeyLog) resumed(sessionID, ticket []byte) []byte {
	if k == nil {
		return nil
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	if len(ticket) > 0 {
		if m, ok := k.byTicket[string(ticket)]; ok {
			return m
		}
	}
	if len(sessionID) > 0 {
		if m, ok := k.bySession[string(sessionID)]; ok {
			return m
		}
	}
	return nil
}
