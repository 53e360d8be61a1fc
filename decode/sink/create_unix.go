//go:build unix

package sink

import (
	"io/fs"
	"os"
	"syscall"
)

// createExcl creates path for writing, failing if it exists, with mode
// 0644 before the umask. os.OpenFile would also make the descriptor
// non-blocking, try to register it with the poller (which refuses a
// regular file) and make it blocking again: four fcntl calls and an
// epoll_ctl per file, half the system calls of a small extracted file.
// os.NewFile, given a blocking descriptor, asks one fcntl and leaves the
// poller alone.
func createExcl(path string) (*os.File, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_CREAT|syscall.O_EXCL|syscall.O_WRONLY|syscall.O_CLOEXEC, 0o644)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		return os.NewFile(uintptr(fd), path), nil
	}
}
