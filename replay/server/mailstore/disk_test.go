package mailstore

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
)

// heapInUse is the live heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// diskMessage is message i of the memory tests: a header that names it and
// a body of size bytes in all.
func diskMessage(buf []byte, i int) []byte {
	hdr := fmt.Appendf(nil, "Subject: big %d\r\n\r\n", i)
	copy(buf, hdr)
	for j := len(hdr); j < len(buf); j++ {
		buf[j] = 'a' + byte((i+j)%26)
	}
	copy(buf[len(buf)-2:], "\r\n")
	return buf
}

// TestDiskStoreKeepsBodiesOnDisk: a disk store holds its messages in their
// files, not in memory, after delivery and after a reload, and gives back
// the same bytes.
func TestDiskStoreKeepsBodiesOnDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 64 MB")
	}
	const n, size = 16, 4 << 20 // 64 MB in all
	dir := t.TempDir()
	s := newStore(t, dir)
	buf := make([]byte, size)
	base := heapInUse()
	for i := range n {
		if _, err := s.Deliver("alice", diskMessage(buf, i)); err != nil {
			t.Fatal(err)
		}
	}
	// Generous: the store's own state is a few KB; bodies kept in memory
	// would be 64 MB.
	limit := int64(n * size / 4)
	grew := heapInUse() - base
	t.Logf("heap growth after delivering %d bytes: %d bytes", n*size, grew)
	if grew > limit {
		t.Fatalf("heap grew by %d bytes for %d bytes of messages (limit %d)", grew, n*size, limit)
	}
	runtime.KeepAlive(s)
	s.Close()

	base = heapInUse()
	r := newStore(t, dir)
	defer r.Close()
	grew = heapInUse() - base
	t.Logf("heap growth after reloading: %d bytes", grew)
	if grew > limit {
		t.Fatalf("reload: heap grew by %d bytes for %d bytes of messages (limit %d)", grew, n*size, limit)
	}
	snap, err := r.Snapshot("alice", Inbox)
	if err != nil || len(snap.Messages) != n {
		t.Fatalf("after reload: %v, %d messages", err, len(snap.Messages))
	}
	for i, m := range snap.Messages {
		if m.Raw != nil || m.Size != size {
			t.Fatalf("message %d: Raw kept (%d bytes) or size %d", i, len(m.Raw), m.Size)
		}
		got, err := m.Body()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, diskMessage(buf, i)) {
			t.Fatalf("message %d: bytes differ after reload", i)
		}
	}
	runtime.KeepAlive(buf)
}

// TestDiskCopyAndExpunge: COPY gives the copy its own file, so expunging
// the original leaves the copy readable; a snapshot taken before an
// expunge reports the message as gone.
func TestDiskCopyAndExpunge(t *testing.T) {
	for _, dir := range []string{"", t.TempDir()} {
		s := newStore(t, dir)
		raw := []byte("Subject: c\r\n\r\ncopied\r\n")
		if _, err := s.Deliver("alice", raw); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Copy("alice", Inbox, "Trash", []uint32{1}); err != nil {
			t.Fatal(err)
		}
		before, _ := s.Snapshot("alice", Inbox)
		if err := s.Remove("alice", Inbox, []uint32{1}); err != nil {
			t.Fatal(err)
		}
		trash, _ := s.Snapshot("alice", "Trash")
		if len(trash.Messages) != 1 {
			t.Fatalf("dir %q: trash has %d messages", dir, len(trash.Messages))
		}
		if got, err := trash.Messages[0].Body(); err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("dir %q: copy reads %q, %v", dir, got, err)
		}
		got, err := before.Messages[0].Body()
		if dir == "" && (err != nil || !bytes.Equal(got, raw)) {
			t.Fatalf("memory store: old snapshot reads %q, %v", got, err)
		}
		if dir != "" && err == nil {
			t.Fatalf("disk store: removed message still reads %q", got)
		}
		s.Close()
	}
}
