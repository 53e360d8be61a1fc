package dispatch

import (
	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/imap"
	"github.com/mailtap/mailtap/decode/pop3"
	"github.com/mailtap/mailtap/decode/smtp"
)

// Protocols returns the protocol registry: the decoder of every protocol
// mailtap knows. read, sniff, tui and replay all decode with it; the map
// is fresh on each call, so a caller may change its copy.
func Protocols() map[decode.Proto]NewFunc {
	return map[decode.Proto]NewFunc{
		decode.ProtoSMTP: func(c decode.ConnInfo, o decode.Options, s decode.Sink) decode.Decoder { return smtp.New(c, o, s) },
		decode.ProtoPOP3: func(c decode.ConnInfo, o decode.Options, s decode.Sink) decode.Decoder { return pop3.New(c, o, s) },
		decode.ProtoIMAP: func(c decode.ConnInfo, o decode.Options, s decode.Sink) decode.Decoder { return imap.New(c, o, s) },
	}
}
