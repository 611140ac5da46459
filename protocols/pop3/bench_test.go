package pop3

import (
	"bufio"
	"errors"
	"fmt"
	"testing"

	"basalt/internal/testsupport/storetest"
)

// BenchmarkRETR measures sending a 10 MiB message over loopback: store
// read, CRLF normalisation, dot-stuffing and the socket.
func BenchmarkRETR(b *testing.B) {
	h := start(b, setup{})
	msg := string(storetest.SizedMessage(10 << 20))
	h.deliver(h.user("bench@example.org", false), msg)
	c := h.dial()
	c.login("bench@example.org")
	want := fmt.Sprintf("+OK %d octets", len(crlf(msg)))
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		c.write("RETR 1\r\n")
		if l := c.line(); l != want {
			b.Fatalf("RETR: %q", l)
		}
		for {
			s, err := c.r.ReadSlice('\n')
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if err != nil {
				b.Fatal(err)
			}
			if string(s) == ".\r\n" {
				break
			}
		}
	}
}
