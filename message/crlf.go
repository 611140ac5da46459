package message

import (
	"bytes"
	"io"
)

// CRLFSize returns the size of a message in its canonical form, every line
// ended by CRLF (RFC 5322 2.1, the form POP3 sends: RFC 1939 3): a bare LF
// counts as CRLF, a last line without a line end gets one (a bare CR
// there gets its LF). Other octets, a CR inside a line among them, count
// as they are. Mail appended by IMAP or the webmail may have bare LFs, so
// the stored size is not always the size sent.
func CRLFSize(r io.Reader) (int64, error) {
	buf := make([]byte, 32<<10)
	var (
		n    int64
		last byte // the last octet read
		any  bool
	)
	for {
		k, err := r.Read(buf)
		chunk := buf[:k]
		n += int64(k)
		for len(chunk) > 0 {
			i := bytes.IndexByte(chunk, '\n')
			if i < 0 {
				last = chunk[len(chunk)-1]
				break
			}
			prev := last
			if i > 0 {
				prev = chunk[i-1]
			}
			if prev != '\r' {
				n++ // the CR a bare LF gets
			}
			last = '\n'
			chunk = chunk[i+1:]
		}
		any = any || k > 0
		if err == io.EOF {
			if any && last != '\n' {
				n++ // the LF
				if last != '\r' {
					n++ // and the CR
				}
			}
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
}
