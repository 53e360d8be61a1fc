package sink

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mailtap/mailtap/capture"
	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/dispatch"
	"github.com/mailtap/mailtap/decode/tlsdec"
)

// recordTypes are the types appendRecordJSON writes.
var recordTypes = []decode.Record{
	&decode.SessionRecord{}, &decode.CommandRecord{}, &decode.SMTPMail{},
	&decode.POP3Message{}, &decode.IMAPMessage{}, &decode.IMAPMailbox{},
}

// checkRecordJSON fails t unless appendRecordJSON writes r as encoding/json
// and textsafe.AppendJSON do (appendReflect), and declines, leaving dst
// as it was, exactly the records encoding/json refuses and commands with
// a status of another type than int or string. It returns the
// whether the check passed and the reference's error.
func checkRecordJSON(t *testing.T, r decode.Record) (bool, error) {
	t.Helper()
	want, err := newJSONEncoder().appendReflect(nil, r)
	prefix := []byte("prefix ")
	got, ok := appendRecordJSON(prefix, r)
	if !ok {
		if !bytes.Equal(got, prefix) {
			t.Errorf("%T: appendRecordJSON declined but returned %q", r, got)
			return false, err
		}
		if err == nil && !otherStatus(r) {
			t.Errorf("%T: appendRecordJSON declined, encoding/json wrote %q", r, want)
			return false, nil
		}
		return true, err
	}
	if err != nil {
		t.Errorf("%T: encoding/json says %v, appendRecordJSON wrote %q", r, err, got)
		return false, err
	}
	if !bytes.HasPrefix(got, prefix) {
		t.Errorf("%T: appendRecordJSON lost the bytes before: %q", r, got)
		return false, nil
	}
	if got = got[len(prefix):]; !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Errorf("%T: differs from encoding/json at byte %d:\n got %q\nwant %q", r, i, got, want)
		return false, nil
	}
	return true, nil
}

// otherStatus: r is a command whose status is neither nil, an int nor a
// string.
func otherStatus(r decode.Record) bool {
	c, ok := r.(*decode.CommandRecord)
	if !ok {
		return false
	}
	switch c.Status.(type) {
	case nil, int, string:
		return false
	}
	return true
}

// TestRecordJSONCaptures: every record of every capture in pcaps/ (and in
// the shared corpus of real captures, when it is there), at both levels,
// is written as encoding/json writes it.
func TestRecordJSONCaptures(t *testing.T) {
	files := testCaptures(t)
	n, bad := 0, 0
	for _, path := range files {
		for _, level := range []decode.Level{decode.LevelTransactions, decode.LevelCommands} {
			sink := decode.SinkFunc(func(r decode.Record) {
				n++
				if bad > 10 {
					return
				}
				if ok, _ := checkRecordJSON(t, r); !ok {
					t.Errorf("in %s, level %d", path, level)
					bad++
				}
			})
			decodeCapture(t, path, level, sink)
		}
	}
	t.Logf("%d captures, %d records", len(files), n)
}

// testCaptures lists the captures in pcaps/ and in the shared corpus of
// real captures (when it is there); it skips t when there are none.
func testCaptures(t *testing.T) []string {
	var files []string
	for _, dir := range []string{"../../pcaps", "../../../shared/corpus"} {
		filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && captureFile(path) {
				files = append(files, path)
			}
			return nil
		})
	}
	if len(files) == 0 {
		t.Skip("no captures")
	}
	return files
}

func captureFile(path string) bool {
	for _, ext := range []string{".pcap", ".pcapng", ".cap", ".pcap.gz"} {
		if strings.HasSuffix(path, ext) {
			return true
		}
	}
	return false
}

// decodeCapture decodes the capture at path as `mailtap read` does, with
// every option that adds fields (secrets, extra hashes, the TLS keys of a
// key log beside it or inside it), emitting to sink.
func decodeCapture(t testing.TB, path string, level decode.Level, sink decode.Sink) {
	t.Helper()
	keys := tlsdec.NewKeyLog()
	withKeys := false
	if kl := strings.TrimSuffix(path, filepath.Ext(path)) + ".keylog"; fileExists(kl) {
		if err := keys.AddFile(kl); err != nil {
			t.Fatal(err)
		}
		withKeys = true
	}
	scanned, err := capture.ScanSecrets(path, func(typ uint32, data []byte) {
		if typ == capture.SecretsTLSKeyLog {
			keys.AddBytes(data)
			withKeys = true
		}
	})
	if err != nil && scanned {
		t.Logf("%s: %v", path, err)
	}
	protocols := dispatch.Protocols()
	if withKeys {
		for p, f := range protocols {
			protocols[p] = tlsdec.Wrap(f, keys, tlsdec.Config{HoldBytes: -1})
		}
	}
	d := dispatch.New(dispatch.Config{
		Sniff:     true,
		Options:   decode.Options{Level: level, ShowSecrets: true, Hashes: decode.HashMD5 | decode.HashSHA1},
		Sink:      sink,
		Protocols: protocols,
	})
	src, err := capture.OpenPath(path)
	if err != nil {
		t.Logf("%v", err) // some corpus files are not captures mailtap reads
		return
	}
	defer src.Close()
	e := capture.New(capture.Config{ServerPort: d.IsServerPort}, d)
	if err := capture.RunFile(context.Background(), src, e, nil); err != nil {
		t.Logf("%s: %v", path, err) // cut files: what was read was decoded
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestRecordJSONEveryField: records with every field set (strings that
// need escaping, pointers to zero values, times with nanoseconds and an
// offset), with every field zero, and with empty rather than nil slices,
// are written as encoding/json writes them. A field added to a record
// type and not to recordjson.go fails here.
func TestRecordJSONEveryField(t *testing.T) {
	for _, proto := range recordTypes {
		typ := reflect.TypeOf(proto).Elem()
		for _, mode := range []fillMode{fillAll, fillZero, fillEmpty} {
			r := reflect.New(typ)
			fill(r.Elem(), mode)
			checkRecordJSON(t, r.Interface().(decode.Record))
		}
	}
}

// TestRecordJSONStatus: a command's status as SMTP (int), POP3 and IMAP
// (string) and an unanswered command (nil) have it; any other type goes
// through encoding/json.
func TestRecordJSONStatus(t *testing.T) {
	for _, s := range []any{nil, 250, -1, "OK", "<&>\u2028", int64(7), 1.5, []int{1}} {
		r := &decode.CommandRecord{Verb: "NOOP", Status: s}
		checkRecordJSON(t, r)
		_, ok := appendRecordJSON(nil, r)
		switch s.(type) {
		case nil, int, string:
			if !ok {
				t.Errorf("status %T goes through encoding/json", s)
			}
		default:
			if ok {
				t.Errorf("status %T written by appendRecordJSON", s)
			}
		}
		want, _ := newJSONEncoder().appendReflect(nil, r)
		got, err := newJSONEncoder().appendRecord(nil, r)
		if err != nil || string(got) != string(want) {
			t.Errorf("status %T: appendRecord gives %q, %v; want %q", s, got, err, want)
		}
	}
}

// TestRecordJSONRefused: values encoding/json refuses (NaN, infinite
// latency; a time outside RFC 3339) make the same error through
// appendRecord, and records of other types and nil records go through
// encoding/json.
func TestRecordJSONRefused(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(-1)
	for _, r := range []decode.Record{
		&decode.CommandRecord{LatencyMS: &nan},
		&decode.CommandRecord{LatencyMS: &inf},
		&decode.SMTPMail{Header: decode.Header{TS: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}},
		&decode.SessionRecord{Start: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)},
		&decode.SessionRecord{End: time.Date(2024, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600))},
	} {
		if _, err := checkRecordJSON(t, r); err == nil {
			t.Errorf("%T: encoding/json wrote it", r)
		}
		want, wantErr := newJSONEncoder().appendReflect([]byte("x"), r)
		got, gotErr := newJSONEncoder().appendRecord([]byte("x"), r)
		if string(got) != string(want) || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Errorf("%T: appendRecord gives %q, %v; encoding/json %q, %v", r, got, gotErr, want, wantErr)
		}
	}
	for _, r := range []decode.Record{(*decode.SMTPMail)(nil), &AuthRecord{Header: decode.Header{Type: TypeAuth}, Auth: decode.Auth{User: "u\u202e"}}} {
		if _, ok := appendRecordJSON(nil, r); ok {
			t.Errorf("%T written by appendRecordJSON", r)
		}
		want, _ := newJSONEncoder().appendReflect(nil, r)
		got, _ := newJSONEncoder().appendRecord(nil, r)
		if string(got) != string(want) {
			t.Errorf("%T: %q, want %q", r, got, want)
		}
	}
}

// TestRecordJSONStrings: strings as encoding/json escapes them and
// textsafe then makes them safe for terminals.
func TestRecordJSONStrings(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote" back\slash`, "<a href='x'>&amp;</a>",
		"\x00\x01\x08\x09\x0a\x0b\x0c\x0d\x1b\x1f\x7f",
		"Été 日本 ✓ 😀", "line\u2028para\u2029", "\u0085\u009b\u00ad\u061c\u200b\u200e\u202e\u2066\ufeff",
		"tag\U000e0041\U000e007f", "\ufffd is valid", "bad\xff\xfe utf8 \xc3", "\xe2\x80", "\xed\xa0\x80 surrogate",
		"\xf4\x90\x80\x80 beyond U+10FFFF",
	} {
		checkRecordJSON(t, &decode.IMAPMailbox{Action: s, Flags: []string{s, s + s}})
	}
}

// FuzzRecordJSON: records of every type, built from the fuzzer's bytes
// (strings of any bytes, numbers, nil or set pointers, nil, empty or
// filled slices, times of any year and offset, any float), are written as
// encoding/json writes them, or declined exactly when it refuses them.
func FuzzRecordJSON(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 'a', '<', '&', '>'})
	f.Add([]byte("\x01\xff\xfe\xe2\x80\xa8\xe2\x80\xa9\x1b[31m\x7f\xc2\x85\x08\x0c\"\\x"))
	f.Add([]byte("\x02\x03\x04\x05 \xf0\x9f\x98\x80 \xf3\xa0\x81\x81 \xef\xbb\xbf <x@example.org>"))
	for i := range recordTypes {
		b := []byte{byte(i), 0xff, 0x80, 0x7f, 0x00, 0x01, 0x3f, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}
		f.Add(append(b, "\u2028<&>\xff"...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		typ := reflect.TypeOf(recordTypes[int(data[0])%len(recordTypes)]).Elem()
		r := reflect.New(typ)
		src := &fuzzSource{data: data[1:]}
		src.fill(r.Elem())
		checkRecordJSON(t, r.Interface().(decode.Record))
	})
}

// fillMode says how fill sets a value.
type fillMode int

const (
	fillAll   fillMode = iota // every field non-zero, every pointer set
	fillZero                  // every field zero, pointers and slices nil
	fillEmpty                 // slices empty but not nil, pointers to zero values
)

// fill sets v (and what it holds) as mode says.
func fill(v reflect.Value, mode fillMode) {
	if mode == fillZero {
		v.SetZero()
		return
	}
	all := mode == fillAll
	switch v.Kind() {
	case reflect.String:
		if all {
			v.SetString("x<&>\"\\\n\x7f\u2028\u202e\xff" + v.Type().Name())
		}
	case reflect.Bool:
		v.SetBool(all)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if all {
			v.SetInt(-12345)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if all {
			v.SetUint(54321)
		}
	case reflect.Float32, reflect.Float64:
		if all {
			v.SetFloat(0.1234567)
		}
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), mode)
		v.Set(p)
	case reflect.Slice:
		n := 0
		if all {
			n = 2
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fill(s.Index(i), mode)
		}
		v.Set(s)
	case reflect.Interface: // CommandRecord.Status
		if all {
			v.Set(reflect.ValueOf(550))
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			if all {
				v.Set(reflect.ValueOf(time.Date(2024, 2, 29, 23, 59, 58, 120000000, time.FixedZone("", -(3*3600+30*60)))))
			}
			return
		}
		for i := range v.NumField() {
			fill(v.Field(i), mode)
		}
	default:
		panic("fill: no rule for " + v.Type().String())
	}
}

// fuzzSource hands out the fuzzer's bytes as values; past the end, zeros.
type fuzzSource struct {
	data []byte
}

func (s *fuzzSource) byte() byte {
	if len(s.data) == 0 {
		return 0
	}
	b := s.data[0]
	s.data = s.data[1:]
	return b
}

func (s *fuzzSource) uint64() uint64 {
	var b [8]byte
	n := copy(b[:], s.data)
	s.data = s.data[n:]
	return binary.LittleEndian.Uint64(b[:])
}

// string takes a length byte and that many bytes.
func (s *fuzzSource) string() string {
	n := min(int(s.byte()), len(s.data))
	str := string(s.data[:n])
	s.data = s.data[n:]
	return str
}

// fill sets v from the fuzzer's bytes; a selector byte before each number,
// pointer, slice, time and interface picks its shape.
func (s *fuzzSource) fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(s.string())
	case reflect.Bool:
		v.SetBool(s.byte()&1 == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if s.byte()&1 == 0 {
			v.SetInt(int64(int8(s.byte()))) // small, often 0
		} else {
			v.SetInt(int64(s.uint64()))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if s.byte()&1 == 0 {
			v.SetUint(uint64(s.byte()))
		} else {
			v.SetUint(s.uint64())
		}
	case reflect.Float32, reflect.Float64:
		switch s.byte() % 3 {
		case 0:
			v.SetFloat(float64(int64(s.uint64())%10_000_000) / 1000) // a latency
		case 1:
			v.SetFloat(float64(int32(s.uint64())) * math.Pow(10, float64(int8(s.byte())%30)))
		default:
			v.SetFloat(math.Float64frombits(s.uint64())) // NaN and ±Inf too
		}
	case reflect.Pointer:
		if s.byte()&1 == 0 {
			v.SetZero()
			return
		}
		p := reflect.New(v.Type().Elem())
		s.fill(p.Elem())
		v.Set(p)
	case reflect.Slice:
		sel := s.byte()
		if sel&3 == 0 {
			v.SetZero()
			return
		}
		n := int(sel>>2) % 4
		sl := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			s.fill(sl.Index(i))
		}
		v.Set(sl)
	case reflect.Interface: // CommandRecord.Status
		switch s.byte() % 4 {
		case 0:
			v.SetZero()
		case 1:
			v.Set(reflect.ValueOf(int(int64(s.uint64()))))
		case 2:
			v.Set(reflect.ValueOf(s.string()))
		default:
			v.Set(reflect.ValueOf(float64(s.byte()) / 8))
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(s.time()))
			return
		}
		for i := range v.NumField() {
			s.fill(v.Field(i))
		}
	default:
		panic("fuzzSource.fill: no rule for " + v.Type().String())
	}
}

// time is mostly a capture's kind of time (1901 to 2038, UTC or an
// offset in whole minutes), sometimes any instant and any offset.
func (s *fuzzSource) time() time.Time {
	sel := s.byte()
	if sel&1 == 0 {
		t := time.Unix(int64(int32(s.uint64())), int64(s.uint64()%1e9))
		if sel&2 == 0 {
			return t.UTC()
		}
		return t.In(time.FixedZone("", int(int16(s.uint64()))*60))
	}
	return time.Unix(int64(s.uint64()), int64(s.uint64())).In(time.FixedZone("", int(int32(s.uint64()))))
}

// BenchmarkRecordJSON: the records of the real captures in pcaps/ as
// JSON lines, by appendRecord and by encoding/json (appendReflect).
func BenchmarkRecordJSON(b *testing.B) {
	paths, _ := filepath.Glob("../../pcaps/real-*.pcap")
	var recs []decode.Record
	for _, path := range paths {
		decodeCapture(b, path, decode.LevelCommands, decode.SinkFunc(func(r decode.Record) { recs = append(recs, r) }))
	}
	if len(recs) == 0 {
		b.Skip("no records")
	}
	for _, bc := range []struct {
		name string
		f    func(dst []byte, r decode.Record) ([]byte, error)
	}{
		{"append", newJSONEncoder().appendRecord},
		{"encoding-json", newJSONEncoder().appendReflect},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				for _, r := range recs {
					buf, _ = bc.f(buf[:0], r)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
		})
	}
}
