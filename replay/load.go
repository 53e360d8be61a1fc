package replay

import (
	"context"
	"errors"
	"fmt"

	"github.com/mailtap/mailtap/capture"
	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/dispatch"
	"github.com/mailtap/mailtap/decode/tlsdec"
)

// LoadConfig configures LoadFile.
type LoadConfig struct {
	// Ports maps server ports to protocols; nil means the defaults.
	Ports dispatch.Ports
	// Sniff classifies connections on other ports by their first bytes.
	Sniff bool
	// Options are the decode limits (MaxLine, MaxMessage...); the level,
	// secrets and message store are set by the Recorder.
	Options decode.Options
	Limits  Limits
	// Capture is the engine configuration; ServerPort is filled in.
	Capture capture.Config
	// TLSKeys, when set, decrypts TLS sessions before they are recorded
	// (decode/tlsdec), so that their turns after the upgrade replay.
	TLSKeys *tlsdec.KeyLog
}

// LoadFile decodes a capture file on one worker and returns the recorder
// and its sessions. A capture cut short (capture.ErrTruncated) is loaded
// up to the cut.
func LoadFile(path string, cfg LoadConfig) (*Recorder, []*Session, error) {
	src, err := capture.OpenFile(path)
	if err != nil {
		return nil, nil, err
	}
	defer src.Close()
	if cfg.Ports == nil {
		cfg.Ports = dispatch.DefaultPorts()
	}
	rec := NewRecorder(cfg.Limits)
	protocols := dispatch.Protocols()
	if cfg.TLSKeys != nil {
		// Record behind the decryptor. A pcapng may carry more keys: all
		// of them first from a file, else as they come.
		take := func(typ uint32, data []byte) {
			if typ == capture.SecretsTLSKeyLog {
				cfg.TLSKeys.AddBytes(data)
			}
		}
		scanned, err := capture.ScanSecrets(path, take)
		if err != nil {
			return nil, nil, err
		}
		if !scanned {
			src.OnSecrets(take)
		}
		for p, f := range protocols {
			protocols[p] = tlsdec.Wrap(rec.WrapNew(f), cfg.TLSKeys, tlsdec.Config{})
		}
	}
	disp := dispatch.New(dispatch.Config{
		Ports: cfg.Ports, Sniff: cfg.Sniff, Options: rec.Options(cfg.Options),
		Sink: rec, Protocols: protocols,
	})
	cc := cfg.Capture
	cc.ServerPort = disp.IsServerPort
	var f capture.Factory = rec.Wrap(disp)
	if cfg.TLSKeys != nil {
		f = disp
	}
	eng := capture.New(cc, f)
	if err := capture.RunFile(context.Background(), src, eng, nil); err != nil && !errors.Is(err, capture.ErrTruncated) {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return rec, rec.Sessions(), nil
}

// Protos returns the protocols of the sessions that can be replayed, in
// a fixed order.
func Protos(ss []*Session) []decode.Proto {
	seen := map[decode.Proto]bool{}
	for _, s := range ss {
		if s.Skip == "" {
			seen[s.Proto] = true
		}
	}
	var out []decode.Proto
	for _, p := range []decode.Proto{decode.ProtoSMTP, decode.ProtoPOP3, decode.ProtoIMAP} {
		if seen[p] {
			out = append(out, p)
		}
	}
	return out
}
