package pop3

import (
	"bytes"
	"io"
)

// crlfLines gives a stored message with every line ended by CRLF, the form
// POP3 sends (RFC 1939 3): a bare LF becomes CRLF, and a last line
// without a line end gets one (a bare CR there gets its LF). Other octets,
// a CR inside a line among them, pass as they are. Mail appended by IMAP
// or the webmail may have bare LFs. The maildrop's sizes are counted in
// the same form (message.CRLFSize, TestCRLFSizeAgrees), so LIST's sizes
// are of what RETR sends.
func crlfLines(rc io.ReadCloser) io.ReadCloser {
	return &crlfReader{rc: rc, in: make([]byte, crlfChunk)}
}

// crlfChunk is how much of the stored message crlfReader reads at once.
const crlfChunk = 32 << 10

// crlfReader normalises line ends as crlfLines describes, in chunks.
type crlfReader struct {
	rc   io.ReadCloser
	in   []byte
	buf  []byte // what out is cut from, reused
	out  []byte // converted, not yet returned
	last byte   // the last octet read from rc
	any  bool   // rc gave at least one octet
	err  error  // rc's error, once it has one (io.EOF at the end)
}

func (r *crlfReader) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		r.fill()
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

// fill reads one chunk and converts it into out; at the end of the
// message it adds the missing line end.
func (r *crlfReader) fill() {
	n, err := r.rc.Read(r.in)
	out := r.buf[:0]
	chunk := r.in[:n]
	for len(chunk) > 0 {
		i := bytes.IndexByte(chunk, '\n')
		if i < 0 {
			out = append(out, chunk...)
			r.last = chunk[len(chunk)-1]
			break
		}
		prev := r.last
		if i > 0 {
			prev = chunk[i-1]
		}
		out = append(out, chunk[:i]...)
		if prev != '\r' {
			out = append(out, '\r')
		}
		out = append(out, '\n')
		r.last = '\n'
		chunk = chunk[i+1:]
	}
	r.any = r.any || n > 0
	if err != nil {
		if err == io.EOF && r.any && r.last != '\n' {
			if r.last != '\r' {
				out = append(out, '\r')
			}
			out = append(out, '\n')
		}
		r.err = err
	}
	r.buf, r.out = out, out
}

func (r *crlfReader) Close() error { return r.rc.Close() }
