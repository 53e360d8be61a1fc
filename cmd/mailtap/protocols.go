package main

import (
	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/dispatch"
)

// protocols lists the decoders the dispatcher may choose from.
func protocols() map[decode.Proto]dispatch.NewFunc {
	return map[decode.Proto]dispatch.NewFunc{}
}
