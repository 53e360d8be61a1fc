// Package natssink publishes records to a NATS JetStream stream, for
// fleets of sensors feeding one distributed engine.
//
// Delivery is at least once: every record is published with a message id
// (JetStream drops a duplicate inside its dedup window, so a retried
// record is stored once) and counted as delivered only when the stream
// acknowledged it. Emit never blocks: records wait in a bounded queue,
// and when it is full they are dropped and counted (Stats.Dropped), so a
// slow or absent server costs records, never capture. One goroutine
// publishes, keeping a window of publishes in flight; when one fails
// (disconnect, no stream, ack timeout) it waits for the connection to come
// back, with back-off, and publishes again from the failed record in
// order, so the records of a session are stored in the order they came.
package natssink

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/sink"
)

// Config configures a Sink.
type Config struct {
	// URL is the server, nats://HOST:PORT.
	URL string
	// Subject is the prefix of the subjects: a record of type T goes to
	// Subject.T (mailtap.smtp.mail, mailtap.session, ...).
	Subject string
	// Stream is the JetStream stream; it is created, capturing
	// Subject.>, when it does not exist. Empty: Subject in upper case
	// with dots as underscores.
	Stream string
	// Buffer bounds the records waiting to be published (default 65536).
	Buffer int
	// InFlight bounds the publishes awaiting their ack (default 512).
	InFlight int
	// AckWait is how long an ack may take before the record is sent
	// again (default 5s).
	AckWait time.Duration
	// MaxBackoff caps the wait between reconnection attempts (default
	// 5s; the first wait is 100ms, doubling).
	MaxBackoff time.Duration
}

// ParseURL splits nats://HOST:PORT/SUBJECT into the server URL and the
// subject prefix.
func ParseURL(s string) (server, subject string, err error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "nats" || u.Host == "" {
		return "", "", fmt.Errorf("%q: want nats://HOST:PORT/SUBJECT", s)
	}
	subject = strings.Trim(u.Path, "/")
	if subject == "" || strings.ContainsAny(subject, " \t*>/") || strings.Contains(subject, "..") {
		return "", "", fmt.Errorf("%q: the subject prefix after the host is missing or not a plain subject (letters, digits, dots)", s)
	}
	return "nats://" + u.Host, subject, nil
}

// Stats are a Sink's counters.
type Stats struct {
	Queued  uint64 // records accepted by Emit
	Acked   uint64 // records the stream acknowledged
	Dropped uint64 // records dropped: the queue was full, or Close gave up
	Retries uint64 // publishes sent again after a failure
}

// Sink publishes records to JetStream. Emit is safe for concurrent use.
type Sink struct {
	cfg    Config
	q      chan msg
	nc     *nats.Conn
	js     jetstream.JetStream
	id     string // message id prefix, unique per run
	seq    atomic.Uint64
	closed atomic.Bool
	mu     sync.Mutex                                        // serialises Emit's encoding
	encode func(dst []byte, r decode.Record) ([]byte, error) // the JSON-lines output's

	queued, acked, dropped, retries atomic.Uint64

	stop chan struct{} // closed by Close: finish the queue
	done chan struct{} // closed when the publisher has ended
}

type msg struct {
	subj string
	data []byte
	id   string
}

// New connects (in the background: the server may come later) and starts
// the publisher.
func New(cfg Config) (*Sink, error) {
	if cfg.Buffer <= 0 {
		cfg.Buffer = 65536
	}
	if cfg.InFlight <= 0 {
		cfg.InFlight = 512
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 5 * time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	if cfg.Stream == "" {
		cfg.Stream = cfg.stream()
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	s := &Sink{cfg: cfg, q: make(chan msg, cfg.Buffer), id: hex.EncodeToString(rnd[:]), stop: make(chan struct{}), done: make(chan struct{})}
	s.encode = sink.NewLineEncoder()
	nc, err := nats.Connect(cfg.URL,
		nats.Name("mailtap"),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(func(attempts int) time.Duration { return backoff(attempts, cfg.MaxBackoff) }),
		// No reconnect buffer: a publish while disconnected fails at
		// once and is sent again, in order, after the reconnection.
		nats.ReconnectBufSize(-1),
		// Connection errors show in the counters (retries, drops),
		// not as lines on stderr.
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}),
	)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.URL, err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(cfg.InFlight*2))
	if err != nil {
		nc.Close()
		return nil, err
	}
	s.nc, s.js = nc, js
	go s.run()
	return s, nil
}

// stream is the default stream name of the subject prefix.
func (c *Config) stream() string {
	return strings.ToUpper(strings.ReplaceAll(c.Subject, ".", "_"))
}

func backoff(attempt int, limit time.Duration) time.Duration {
	d := 100 * time.Millisecond << min(attempt, 10)
	return min(d, limit)
}

// Emit implements decode.Sink: it never blocks.
func (s *Sink) Emit(r decode.Record) {
	if s.closed.Load() {
		s.dropped.Add(1)
		return
	}
	s.mu.Lock()
	data, err := s.encode(nil, r)
	s.mu.Unlock()
	if err != nil || len(data) == 0 {
		s.dropped.Add(1)
		return
	}
	data = data[:len(data)-1] // the JSON line without its newline
	m := msg{subj: s.cfg.Subject + "." + r.Head().Type, data: data, id: s.id + "-" + fmt.Sprint(s.seq.Add(1))}
	select {
	case s.q <- m:
		s.queued.Add(1)
	default:
		s.dropped.Add(1)
	}
}

// Flush implements sink.Sink. Records go out as they come; Flush only
// reports a closed sink.
func (s *Sink) Flush() error { return nil }

// Stats returns the counters.
func (s *Sink) Stats() Stats {
	return Stats{Queued: s.queued.Load(), Acked: s.acked.Load(), Dropped: s.dropped.Load(), Retries: s.retries.Load()}
}

// Close stops taking records and waits, at most wait, until every queued
// record is acknowledged; what is left then is counted as dropped. It
// returns an error when records were dropped.
func (s *Sink) Close(wait time.Duration) error {
	if s.closed.Swap(true) {
		return nil
	}
	close(s.stop)
	select {
	case <-s.done:
	case <-time.After(wait):
	}
	s.nc.Close()
	<-s.done
	if st := s.Stats(); st.Dropped > 0 {
		return fmt.Errorf("%s: %d of %d records not delivered", s.cfg.URL, st.Dropped, st.Queued+st.Dropped)
	}
	return nil
}

// String is the summary line of the sink's counters.
func (st Stats) String() string {
	return fmt.Sprintf("sink: %d records acknowledged, sink_dropped %d, retries %d", st.Acked, st.Dropped, st.Retries)
}

type flight struct {
	m   msg
	f   jetstream.PubAckFuture // nil: the publish itself failed
	err error
}

// run is the publisher: it keeps up to InFlight publishes going and
// settles them in order.
func (s *Sink) run() {
	defer close(s.done)
	defer func() {
		// The connection is closed: what is left is lost.
		for {
			select {
			case <-s.q:
				s.dropped.Add(1)
			default:
				return
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if !s.ensureStream(ctx) {
		return
	}
	var window []flight
	stopping := false
	for {
		// Fill the window.
		for len(window) < s.cfg.InFlight {
			var m msg
			if len(window) == 0 && !stopping {
				select {
				case m = <-s.q:
				case <-s.stop:
					stopping = true
					continue
				}
			} else {
				select {
				case m = <-s.q:
				default:
					goto settle
				}
			}
			window = append(window, s.publish(m))
		}
	settle:
		if len(window) == 0 {
			if stopping {
				return
			}
			continue
		}
		if s.wait(&window[0]) {
			s.acked.Add(1)
			window = window[1:]
			continue
		}
		// A publish failed: let the others settle, wait for the server,
		// then send the window again in order (the stream drops the
		// duplicates of those it already has).
		for i := 1; i < len(window); i++ {
			s.wait(&window[i])
		}
		for attempt := 0; !s.nc.IsConnected(); attempt++ {
			if s.nc.IsClosed() {
				s.dropped.Add(uint64(len(window)))
				return
			}
			time.Sleep(backoff(attempt, s.cfg.MaxBackoff))
		}
		if errors.Is(window[0].err, jetstream.ErrNoStreamResponse) || errors.Is(window[0].err, nats.ErrNoResponders) {
			if !s.ensureStream(ctx) {
				s.dropped.Add(uint64(len(window)))
				return
			}
		}
		time.Sleep(backoff(0, s.cfg.MaxBackoff))
		for i := range window {
			s.retries.Add(1)
			window[i] = s.publish(window[i].m)
		}
	}
}

func (s *Sink) publish(m msg) flight {
	f, err := s.js.PublishAsync(m.subj, m.data, jetstream.WithMsgID(m.id))
	return flight{m: m, f: f, err: err}
}

// wait reports whether fl's publish was acknowledged (at most AckWait).
func (s *Sink) wait(fl *flight) bool {
	if fl.f == nil {
		return false
	}
	t := time.NewTimer(s.cfg.AckWait)
	defer t.Stop()
	select {
	case <-fl.f.Ok():
		return true
	case err := <-fl.f.Err():
		fl.err = err
	case <-t.C:
		fl.err = context.DeadlineExceeded
	}
	fl.f = nil
	return false
}

// ensureStream creates the stream when it is missing, retrying with
// back-off until it exists or the connection is closed.
func (s *Sink) ensureStream(ctx context.Context) bool {
	for attempt := 0; ; attempt++ {
		if s.nc.IsClosed() {
			return false
		}
		if s.nc.IsConnected() {
			c, cancel := context.WithTimeout(ctx, s.cfg.AckWait)
			_, err := s.js.Stream(c, s.cfg.Stream)
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				_, err = s.js.CreateStream(c, jetstream.StreamConfig{
					Name:       s.cfg.Stream,
					Subjects:   []string{s.cfg.Subject + ".>"},
					Storage:    jetstream.FileStorage,
					Duplicates: 2 * time.Minute,
				})
			}
			cancel()
			if err == nil {
				return true
			}
		}
		time.Sleep(backoff(attempt, s.cfg.MaxBackoff))
	}
}
