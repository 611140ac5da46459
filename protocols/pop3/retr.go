package pop3

import (
	"bufio"
	"bytes"
	"io"
)

// writeMessage copies a message whose lines all end in CRLF (as
// crlfLines gives it) to w as the body of a multi-line answer: a line
// that starts with "." gets another in front (RFC 1939 3). With bodyLines
// >= 0 it stops after the header, the blank line that ends it, and that
// many lines of the body (TOP). It returns the octets of the message it
// copied, the stuffing not counted, and never holds more than a chunk.
func writeMessage(w *bufio.Writer, r io.Reader, bodyLines int64) (int64, error) {
	var (
		buf     = make([]byte, 32<<10)
		total   int64
		atStart = true // at the start of a line
		firstCR bool   // the line being copied started with CR
		lineLen int64  // octets of the line so far, its LF not counted
		inBody  bool   // past the blank line that ends the header
		lines   int64  // body lines copied
	)
	for {
		n, err := r.Read(buf)
		chunk := buf[:n]
		for len(chunk) > 0 {
			if atStart {
				if inBody && bodyLines >= 0 && lines >= bodyLines {
					return total, nil
				}
				if chunk[0] == '.' {
					w.WriteByte('.')
				}
				atStart, firstCR, lineLen = false, chunk[0] == '\r', 0
			}
			i := bytes.IndexByte(chunk, '\n')
			if i < 0 {
				w.Write(chunk)
				total += int64(len(chunk))
				lineLen += int64(len(chunk))
				break
			}
			w.Write(chunk[:i+1])
			total += int64(i + 1)
			lineLen += int64(i)
			switch {
			case inBody:
				lines++
			case lineLen == 1 && firstCR:
				inBody = true // the empty line "\r\n" ends the header
			}
			atStart = true
			chunk = chunk[i+1:]
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		if _, werr := w.Write(nil); werr != nil {
			return total, werr
		}
	}
}
