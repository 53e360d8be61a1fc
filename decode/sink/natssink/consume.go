package natssink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailtap/mailtap/decode"
)

// ParseRecord turns one published message (a JSON record) back into the
// typed record, so any sink (JSON, Zeek, ECS, text) can write it.
func ParseRecord(data []byte) (decode.Record, error) {
	var h struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, err
	}
	var r decode.Record
	switch h.Type {
	case decode.TypeSession:
		r = &decode.SessionRecord{}
	case decode.TypeCommand:
		r = &decode.CommandRecord{}
	case decode.TypeSMTPMail:
		r = &decode.SMTPMail{}
	case decode.TypePOP3Message:
		r = &decode.POP3Message{}
	case decode.TypeIMAPMessage:
		r = &decode.IMAPMessage{}
	case decode.TypeIMAPMailbox:
		r = &decode.IMAPMailbox{}
	default:
		return nil, fmt.Errorf("unknown record type %q", h.Type)
	}
	if err := json.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("%s record: %w", h.Type, err)
	}
	if c, ok := r.(*decode.CommandRecord); ok {
		// SMTP reply codes are ints in the record; JSON made them floats.
		if f, ok := c.Status.(float64); ok && f == math.Trunc(f) {
			c.Status = int(f)
		}
	}
	return r, nil
}

// ConsumeConfig says what Consume reads.
type ConsumeConfig struct {
	URL     string // nats://HOST:PORT
	Subject string // the prefix the sensors published under
	Stream  string // default: as in Config
	// Max stops after this many records (0: no limit).
	Max int
	// Idle stops when no record came for this long (0: only ctx or Max).
	Idle time.Duration
}

// Consume reads the stream from its start with an ordered consumer and
// emits every record to s, until ctx is done, Max records, or Idle
// without one. It returns the records emitted.
func Consume(ctx context.Context, cfg ConsumeConfig, s decode.Sink) (int, error) {
	if cfg.Stream == "" {
		cfg.Stream = (&Config{Subject: cfg.Subject}).stream()
	}
	nc, err := nats.Connect(cfg.URL, nats.Name("mailtap consume"))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", cfg.URL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	st, err := js.Stream(ctx, cfg.Stream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", cfg.Stream, err)
	}
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{cfg.Subject + ".>"}})
	if err != nil {
		return 0, err
	}
	n := 0
	for cfg.Max == 0 || n < cfg.Max {
		wait := cfg.Idle
		if wait <= 0 {
			wait = 5 * time.Second
		}
		want := 1000
		if cfg.Max > 0 {
			want = min(cfg.Max-n, want)
		}
		batch, err := c.Fetch(want, jetstream.FetchMaxWait(wait))
		if err != nil {
			if ctx.Err() != nil {
				return n, nil
			}
			return n, err
		}
		got := 0
		for m := range batch.Messages() {
			r, err := ParseRecord(m.Data())
			if err != nil {
				return n, fmt.Errorf("%s: %w", m.Subject(), err)
			}
			s.Emit(r)
			n++
			got++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return n, err
		}
		if ctx.Err() != nil || got == 0 && cfg.Idle > 0 {
			return n, nil
		}
	}
	return n, nil
}
