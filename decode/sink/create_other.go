//go:build !unix

package sink

import "os"

// createExcl creates path for writing, failing if it exists, with mode
// 0644 before the umask.
func createExcl(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
}
