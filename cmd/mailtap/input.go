package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/mailtap/mailtap/capture"
)

// stdin is what "read -" reads (a variable so tests can feed it).
var stdin io.Reader = os.Stdin

// openSource opens the capture named on the command line: "-" is standard
// input (pcap, pcapng or gzip, told apart by their magic numbers, as
// tshark -r - and tcpdump -r - do). A file that is no capture, or too
// short to hold one's header, gets one plain sentence naming it.
func openSource(path string) (*capture.FileSource, error) {
	var src *capture.FileSource
	var err error
	name := path
	if path == "-" {
		name = "standard input"
		// Through a pipe: a read blocked on a silent input can then be
		// interrupted (RunFile closes it on SIGINT), which closing
		// os.Stdin cannot do.
		pr, pw := io.Pipe()
		go func() { _, err := io.Copy(pw, stdin); pw.CloseWithError(err) }()
		src, err = capture.OpenReader(pr)
	} else {
		src, err = capture.OpenPath(path)
	}
	if err != nil && (errors.Is(err, capture.ErrFormat) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) {
		return nil, fmt.Errorf("not a capture file or cut short: %s", name)
	}
	return src, err
}
