package capture

import (
	"bytes"
	"io"
)

// OpenReader reads a capture from r (standard input for "read -"): pcap,
// pcapng or either gzip-compressed, told apart by their magic numbers
// peeked on a buffered reader, as OpenFile does. Size is 0; Close does not
// close r.
func OpenReader(r io.Reader) (*FileSource, error) {
	s := &FileSource{in: r}
	if b, ok := r.(*bytes.Reader); ok {
		// from memory: its bytes can be read back (overlap.go)
		s.at, s.base = b, b.Size()-int64(b.Len())
	}
	if err := s.init(); err != nil {
		return nil, err
	}
	return s, nil
}
