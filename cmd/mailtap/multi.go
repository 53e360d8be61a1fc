package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/mailtap/mailtap/capture"
	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/sink"
)

// capturePaths are the capture files named by -r and the arguments, in
// order; a directory stands for its regular files (hidden ones aside),
// in name order. The merge orders packets by time whatever the order.
func capturePaths(readPath string, args []string) ([]string, error) {
	var names []string
	if readPath != "" {
		names = append(names, readPath)
	}
	names = append(names, args...)
	if len(names) == 0 {
		return nil, usagef("no capture file given")
	}
	var paths []string
	stdinSeen := false
	for _, name := range names {
		if name == "-" {
			if stdinSeen {
				return nil, usagef("standard input (-) named twice")
			}
			stdinSeen = true
			paths = append(paths, name)
			continue
		}
		st, err := os.Stat(name)
		if err != nil || !st.IsDir() {
			paths = append(paths, name) // opening it reports what is wrong
			continue
		}
		entries, err := os.ReadDir(name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, unwrapPath(err))
		}
		n := 0
		for _, e := range entries {
			if e.Type().IsRegular() && e.Name()[0] != '.' {
				paths = append(paths, filepath.Join(name, e.Name()))
				n++
			}
		}
		if n == 0 {
			return nil, usagef("%s: no capture files in the directory", name)
		}
	}
	return paths, nil
}

// mergedSource reads several captures as one, packets in timestamp order
// (ties: the order the files were named), the way mergecap joins them: a
// connection that goes on in the next file goes on in the same decoder.
// It is a k-way merge holding one packet per file; a packet's data stays
// valid until the next ReadPacket because only the file it came from is
// read again. limit > 0 stops after that many packets (-c).
type mergedSource struct {
	srcs  []*mergeInput
	limit int64
	n     int64
	last  int // index of the input the last packet came from, -1 before
	// truncated names the files cut inside a packet record (read up to
	// the cut, as a single file is).
	truncated []string
}

type mergeInput struct {
	name string
	src  *capture.FileSource
	data []byte
	ci   gopacket.CaptureInfo
	link layers.LinkType
	err  error // io.EOF once done
}

func openMerged(paths []string, limit int64) (*mergedSource, error) {
	m := &mergedSource{limit: limit, last: -1}
	for _, p := range paths {
		src, err := openSource(p)
		if err != nil {
			m.Close()
			return nil, err
		}
		name := p
		if p == "-" {
			name = "standard input"
		}
		in := &mergeInput{name: name, src: src}
		m.srcs = append(m.srcs, in)
		m.advance(in)
	}
	return m, nil
}

// advance reads in's next packet.
func (m *mergedSource) advance(in *mergeInput) {
	in.data, in.ci, in.link, in.err = in.src.ReadPacket()
	if errors.Is(in.err, capture.ErrTruncated) {
		m.truncated = append(m.truncated, in.name)
		in.err = io.EOF
	}
}

// ReadPacket implements capture.Source.
func (m *mergedSource) ReadPacket() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	if m.limit > 0 && m.n >= m.limit {
		return nil, gopacket.CaptureInfo{}, 0, io.EOF
	}
	if m.last >= 0 {
		m.advance(m.srcs[m.last])
	}
	best := -1
	for i, in := range m.srcs {
		if in.err != nil {
			if in.err != io.EOF {
				return nil, gopacket.CaptureInfo{}, 0, fmt.Errorf("%s: %w", in.name, in.err)
			}
			continue
		}
		if best < 0 || in.ci.Timestamp.Before(m.srcs[best].ci.Timestamp) {
			best = i
		}
	}
	m.last = best
	if best < 0 {
		return nil, gopacket.CaptureInfo{}, 0, io.EOF
	}
	m.n++
	in := m.srcs[best]
	return in.data, in.ci, in.link, nil
}

// Size is the bytes of every file (0 when one is unknown: standard input).
func (m *mergedSource) Size() int64 {
	var n int64
	for _, in := range m.srcs {
		if in.src.Size() == 0 {
			return 0
		}
		n += in.src.Size()
	}
	return n
}

// Offset is the bytes read so far over every file.
func (m *mergedSource) Offset() int64 {
	var n int64
	for _, in := range m.srcs {
		n += in.src.Offset()
	}
	return n
}

// Close closes every file.
func (m *mergedSource) Close() error {
	var first error
	for _, in := range m.srcs {
		if err := in.src.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// readOnlyFlags are read's flags that live capture has no use for.
type readOnlyFlags struct {
	count int64 // -c: stop after this many packets
	quiet bool  // -q: summary only
}

// readFiles is readFile over several captures merged by time, with -c and
// -q.
func readFiles(ctx context.Context, paths []string, df *decodeFlags, rf readOnlyFlags, stdout, stderr io.Writer) error {
	o, err := df.options()
	if err != nil {
		return err
	}
	src, err := openMerged(paths, rf.count)
	if err != nil {
		return err
	}
	defer src.Close()
	var out *output
	if rf.quiet {
		out = &output{sink: decode.SinkFunc(func(decode.Record) {}), flush: func() error { return nil }, close: func() error { return nil }}
	} else if out, err = df.openOutput(stdout); err != nil {
		return err
	}
	defer func() { out.close() }()
	if t, ok := out.sink.(*sink.Text); ok {
		t.GroupSessions(textPending)
	}
	if err := df.withExtraction(&o, out); err != nil {
		return err
	}
	counter := &countingSink{s: out.sink, sessions: map[decode.Proto]uint64{}}
	eng := df.engine(o, counter)
	prog := newProgress(stderr, src.Size())
	runErr := eng.RunContext(ctx, src, func() { prog.update(src.Offset(), eng.Stats().Packets) })
	prog.done()
	if err := out.flush(); err != nil {
		return err
	}
	if df.stats {
		printStats(stderr, eng.Stats())
	}
	if out.stats != nil {
		// A publishing sink: wait for its acks, then say what it did.
		cerr := out.close()
		fmt.Fprintln(stderr, out.stats())
		if cerr != nil {
			return cerr
		}
	}
	if ctx.Err() != nil {
		// Interrupted: every connection was closed, its records
		// written whole.
		if err := out.close(); err != nil {
			return err
		}
		return context.Cause(ctx)
	}
	if rf.quiet {
		s := snapshot{eng: eng.Stats(), sessions: counter.sessions, mails: counter.mails, pop3: counter.pop3, imap: counter.imap}
		st := eng.Stats()
		fmt.Fprintf(stdout, "mailtap read: %d file(s), %d packets (%d bytes)\n", len(paths), st.Packets, st.Bytes)
		fmt.Fprintf(stdout, "  sessions %s\n", s.sessionList())
		fmt.Fprintf(stdout, "  transactions %d (smtp mails %d, pop3 messages %d, imap messages %d)\n", s.mails+s.pop3+s.imap, s.mails, s.pop3, s.imap)
		fmt.Fprintf(stdout, "  connections %d, reassembly gaps %d (%d bytes), malformed %d\n", st.Conns, st.Gaps, st.GapBytes, st.Malformed)
	}
	for _, name := range src.truncated {
		// Everything before the cut was decoded and written.
		fmt.Fprintf(stderr, "mailtap read: warning: %s: %v\n", name, capture.ErrTruncated)
	}
	if runErr != nil {
		return fmt.Errorf("%w (after %d packets)", runErr, eng.Stats().Packets)
	}
	return out.close()
}
