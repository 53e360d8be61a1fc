//go:build !unix

package main

import "os"

// maxRSSKB is unknown where getrusage does not exist.
func maxRSSKB(*os.ProcessState) int64 { return 0 }
