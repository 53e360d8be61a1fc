// Package capture turns packets into ordered TCP byte streams for decoders.
//
// It reads pcap and pcapng files (optionally gzip-compressed) with pure-Go
// gopacket/pcapgo, parses link, IP and TCP headers (Ethernet, 802.1Q,
// Linux cooked SLL and SLL2, BSD loopback, raw IP; IPv4 with fragment
// reassembly; IPv6), reassembles TCP with gopacket/reassembly and calls a
// decode.Decoder per connection. It knows nothing of mail: the decoder
// factory decides what each connection is.
//
// Every timeout is measured in capture time, never wall time.
package capture

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// Source yields packets with their link type.
type Source interface {
	// ReadPacket returns the next packet. Data is valid until the next call.
	ReadPacket() (data []byte, ci gopacket.CaptureInfo, link layers.LinkType, err error)
}

// FileSource reads a pcap or pcapng file, plain or gzip-compressed.
type FileSource struct {
	f       *os.File  // nil for OpenReader
	in      io.Reader // f, or the reader given to OpenReader
	counter *countingReader
	gz      *gzip.Reader
	pcap    *pcapgo.Reader
	ng      *pcapgo.NgReader
	link    layers.LinkType
	size    int64
	secrets secretsQueue
	// For overlap.go's ref mode: the buffered reader over counter (plain
	// pcap only), the input as an io.ReaderAt, and where counter started
	// in it.
	br   *bufio.Reader
	at   io.ReaderAt
	base int64
}

// fileAt returns the capture file, to read packets' bytes back by their
// offsets, when its packets' offsets are known (a plain pcap file, not
// compressed, read from a regular file or from memory), else nil.
func (s *FileSource) fileAt() io.ReaderAt {
	if s.br == nil || s.pcap == nil || s.gz != nil {
		return nil
	}
	return s.at
}

// dataOffset is where the last packet's n bytes lie in the file: they are
// the last the pcap reader took from the buffered reader.
func (s *FileSource) dataOffset(n int) int64 {
	return s.base + s.counter.n - int64(s.br.Buffered()) - int64(n)
}

// OnSecrets sets the function that receives the contents of pcapng
// Decryption Secrets Blocks (TLS key logs embedded with editcap
// --inject-secrets), wherever they are in the file: as the bytes before
// them are read, and at once for those read already.
func (s *FileSource) OnSecrets(fn SecretsFunc) { s.secrets.set(fn) }

// Pcapng reports whether the file is pcapng (which may embed secrets).
func (s *FileSource) Pcapng() bool { return s.ng != nil }

// maxSnaplen bounds a pcap file's packet records (Wireshark's limit, well
// above the largest IP packet).
const maxSnaplen = 262144

// ErrFormat is returned for files that are not pcap or pcapng.
var ErrFormat = errors.New("not a pcap or pcapng file")

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// OpenFile opens a capture file. The format is detected from its magic
// number: pcap (micro- or nanosecond, either byte order), pcapng, and
// either of them gzip-compressed.
func OpenFile(path string) (*FileSource, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	s := &FileSource{f: f, in: f}
	if st, err := f.Stat(); err == nil {
		s.size = st.Size()
		if st.Mode().IsRegular() {
			s.at = f
		}
	}
	if err := s.init(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

func (s *FileSource) init() error {
	s.counter = &countingReader{r: s.in}
	br := bufio.NewReaderSize(s.counter, 256<<10)
	s.br = br
	magic, err := br.Peek(4)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: file too short (%d bytes)", ErrFormat, len(magic))
		}
		return err
	}
	var r io.Reader = br
	if magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		s.gz = gz
		gbr := bufio.NewReaderSize(gz, 256<<10)
		magic, err = gbr.Peek(4)
		if err != nil {
			return fmt.Errorf("%w: compressed content too short", ErrFormat)
		}
		r = gbr
	}
	switch binary.LittleEndian.Uint32(magic) {
	case 0x0a0d0d0a:
		r = &dsbScanner{r: r, found: s.secrets.add}
		ng, err := pcapgo.NewNgReader(&ngBlocks{r: &ngGuard{r: r}}, pcapgo.NgReaderOptions{WantMixedLinkType: true, SkipUnknownVersion: true})
		if err != nil {
			return fmt.Errorf("pcapng: %w", err)
		}
		s.ng = ng
		s.link = ng.LinkType()
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1:
		pr, err := pcapgo.NewReader(r)
		if err != nil {
			return fmt.Errorf("pcap: %w", err)
		}
		if pr.Snaplen() > maxSnaplen {
			// pcapgo sizes its packet buffer by the header's snaplen:
			// a header saying 4 GB would take 4 GB (found by
			// FuzzEngine). No packet record may be longer than this.
			pr.SetSnaplen(maxSnaplen)
		}
		s.pcap = pr
		s.link = pr.LinkType()
	default:
		return fmt.Errorf("%w (magic %x)", ErrFormat, magic)
	}
	return nil
}

// ReadPacket implements Source.
func (s *FileSource) ReadPacket() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	if s.pcap != nil {
		data, ci, err := s.pcap.ZeroCopyReadPacketData()
		return data, ci, s.link, fixEOF(err)
	}
	data, ci, err := s.ng.ZeroCopyReadPacketData()
	if err != nil {
		return nil, ci, 0, fixEOF(err)
	}
	// With WantMixedLinkType, pcapgo puts each packet's interface link
	// type in AncillaryData.
	link := s.link
	for _, a := range ci.AncillaryData {
		if lt, ok := a.(layers.LinkType); ok {
			link = lt
			break
		}
	}
	return data, ci, link, nil
}

// fixEOF maps a truncated final record to a clear error and EOF to io.EOF.
func fixEOF(err error) error {
	if err == nil || errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return err
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrTruncated
	}
	return err
}

// ErrTruncated means the file ends in the middle of a packet record. What
// was read before it is still valid.
var ErrTruncated = errors.New("capture file is truncated (ends inside a packet record)")

// Size returns the file size in bytes (compressed size for gzip files).
func (s *FileSource) Size() int64 { return s.size }

// Offset returns how many bytes of the file have been read so far.
func (s *FileSource) Offset() int64 { return s.counter.n }

// interrupt makes a read blocked in the input return (RunFile, when its
// context is done): it closes the file, or the reader given to
// OpenReader when it is an io.Closer. Safe from another goroutine, as
// os.File's Close is.
func (s *FileSource) interrupt() {
	if c, ok := s.in.(io.Closer); ok {
		c.Close()
	}
}

// Close closes the file.
func (s *FileSource) Close() error {
	if s.gz != nil {
		s.gz.Close()
	}
	if s.f == nil {
		return nil
	}
	return s.f.Close()
}
