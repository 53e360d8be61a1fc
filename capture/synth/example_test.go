package synth_test

import (
	"bytes"
	"fmt"
	"net/netip"

	"github.com/mailtap/mailtap/capture/synth"
)

func ExampleCapture() {
	c := synth.NewCapture(synth.LinkEthernet)
	conn := c.Conn(
		netip.MustParseAddrPort("192.0.2.10:49152"),
		netip.MustParseAddrPort("198.51.100.25:25"),
		synth.Options{MSS: 10},
	)
	conn.Server("220 mail.example.net ESMTP Postfix\r\n").
		// Three segments: the first two swapped, the third lost.
		Client("EHLO client.example.org\r\n", synth.Reorder(0), synth.Drop(2)).
		Server("250 mail.example.net\r\n").
		Close(synth.ServerSide)

	pkts, err := c.Packets()
	if err != nil {
		panic(err)
	}
	st := conn.Stream(synth.ClientSide)
	fmt.Println(len(pkts), "packets")
	fmt.Printf("client: %q, gaps %+v\n", st.Bytes, st.Gaps)

	var file bytes.Buffer
	if err := c.Write(&file, synth.FormatPcapng); err != nil {
		panic(err)
	}
	fmt.Println(file.Len(), "bytes of pcapng")
	// Output:
	// 19 packets
	// client: "EHLO client.example.", gaps [{At:20 Off:20 Len:5}]
	// 1888 bytes of pcapng
}
