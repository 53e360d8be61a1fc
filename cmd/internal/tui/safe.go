package tui

import "github.com/mailtap/mailtap/decode/textsafe"

// safeText is the one function every string from the wire goes through
// before it reaches the screen: the project's shared escaping
// (decode/textsafe) turns C0 and C1 controls (ESC, BEL, CR, NUL, ...),
// DEL, bidirectional overrides and isolates, zero-width and other format
// characters and invalid UTF-8 into visible escapes (\x1b, \u202e).
func safeText(s string) string { return textsafe.String(s) }
