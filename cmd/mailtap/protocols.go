package main

import (
	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/dispatch"
	"github.com/mailtap/mailtap/decode/imap"
	"github.com/mailtap/mailtap/decode/pop3"
	"github.com/mailtap/mailtap/decode/smtp"
)

// protocols lists the decoders the dispatcher may choose from.
func protocols() map[decode.Proto]dispatch.NewFunc {
	return map[decode.Proto]dispatch.NewFunc{
		decode.ProtoSMTP: func(c *decode.ConnInfo, o decode.Options, s decode.Sink) decode.Decoder { return smtp.New(c, o, s) },
		decode.ProtoPOP3: func(c *decode.ConnInfo, o decode.Options, s decode.Sink) decode.Decoder { return pop3.New(c, o, s) },
		decode.ProtoIMAP: func(c *decode.ConnInfo, o decode.Options, s decode.Sink) decode.Decoder { return imap.New(c, o, s) },
	}
}
