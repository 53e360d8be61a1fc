package capture

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// OpenPath opens a capture file as OpenFile does, with an error that names
// the path once ("x.pcap: no such file or directory").
func OpenPath(path string) (*FileSource, error) {
	src, err := OpenFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s: %w", path, pe.Err)
		}
		return nil, err
	}
	return src, nil
}

// RunFile is the one way to decode a capture file: it runs e over src to
// its end, or until ctx is done, then closes every connection, so the
// records are whole either way; src is left open. progress, if set, is
// called every 64k packets with the bytes read and the file's size (0 when
// unknown). The error is ctx's when it stopped the run, one that Is
// ErrTruncated for a file cut inside a packet record (everything before
// the cut was decoded), else a read error naming the file and the packets
// read.
func RunFile(ctx context.Context, src *FileSource, e *Engine, progress func(read, size int64)) error {
	var p func()
	if progress != nil {
		size := src.Size()
		p = func() { progress(src.Offset(), size) }
	}
	// A read blocked on a pipe (standard input) would not see ctx: the
	// input is closed under it.
	stop := context.AfterFunc(ctx, src.interrupt)
	defer stop()
	err := e.RunContext(ctx, src, p)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	switch {
	case err == nil, errors.Is(err, ErrTruncated), ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return err
	}
	return fmt.Errorf("%w (after %d packets)", err, e.Stats().Packets)
}
