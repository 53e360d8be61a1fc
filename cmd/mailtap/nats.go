package main

import (
	"time"

	"github.com/mailtap/mailtap/decode/sink/natssink"
)

// natsCloseWait is how long the end of a run waits for the stream to
// acknowledge the records still queued.
const natsCloseWait = 30 * time.Second

// openNATS publishes the records (JSON) to -o nats://HOST:PORT/SUBJECT.
func (d *decodeFlags) openNATS() (*output, error) {
	if d.format != "json" && d.format != "jsonl" {
		return nil, usagef("-o nats://...: records are published as JSON; drop -f %s", d.format)
	}
	server, subject, err := natssink.ParseURL(d.output)
	if err != nil {
		return nil, usagef("-o %v", err)
	}
	s, err := natssink.New(natssink.Config{URL: server, Subject: subject})
	if err != nil {
		return nil, err
	}
	done := false
	return &output{
		sink:  s,
		flush: s.Flush,
		close: func() error {
			if done {
				return nil
			}
			done = true
			return s.Close(natsCloseWait)
		},
		stats: func() string { return s.Stats().String() },
	}, nil
}
