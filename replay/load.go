package replay

import (
	"context"
	"errors"
	"fmt"

	"github.com/mailtap/mailtap/capture"
	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/dispatch"
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
	disp := dispatch.New(dispatch.Config{
		Ports: cfg.Ports, Sniff: cfg.Sniff, Options: rec.Options(cfg.Options),
		Sink: rec, Protocols: dispatch.Protocols(),
	})
	cc := cfg.Capture
	cc.ServerPort = disp.IsServerPort
	eng := capture.New(cc, rec.Wrap(disp))
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
