package store

import (
	"bytes"
	"fmt"
)

// Header limits: what a message's header may hold before it is refused.
// Parsing a header costs memory and time in proportion to its fields, and
// a delivery parses it more than once (the agent, the store, a filter), so
// an unbounded header lets one message cost gigabytes. Postfix refuses
// headers past header_size_limit (102,400 bytes); the field count bounds
// a header of many short fields, which costs most per byte.
const (
	DefaultMaxHeaderBytes  = 102400
	DefaultMaxHeaderFields = 1000
)

// ErrHeaderTooLarge refuses a message whose header is past the limits; it
// is an ErrTooLarge, so callers that know only that one answer as for a
// message too big.
var ErrHeaderTooLarge = fmt.Errorf("message header exceeds the limit: %w", ErrTooLarge)

// HeaderLimits bound a message's header (RFC 5322 2.2: the fields before
// the first empty line).
type HeaderLimits struct {
	// MaxBytes bounds the header's size, line ends included; 0 means
	// DefaultMaxHeaderBytes, negative: no limit.
	MaxBytes int64 `toml:"max_header_bytes"`
	// MaxFields bounds the number of header fields; 0 means
	// DefaultMaxHeaderFields, negative: no limit.
	MaxFields int `toml:"max_header_fields"`
}

// WithDefaults fills in the zero limits.
func (l HeaderLimits) WithDefaults() HeaderLimits {
	if l.MaxBytes == 0 {
		l.MaxBytes = DefaultMaxHeaderBytes
	}
	if l.MaxFields == 0 {
		l.MaxFields = DefaultMaxHeaderFields
	}
	return l
}

// Check refuses raw with ErrHeaderTooLarge when its header is past the
// limits. It reads no further than the limits, so its cost is bounded
// whatever the message: a header is the lines before the first empty one
// (CRLF or a bare LF ending them), or the whole message if none is empty.
// A field begins with a line that does not start with white space (RFC
// 5322 2.2.3: continuation lines of a folded field do).
func (l HeaderLimits) Check(raw []byte) error {
	tooBig := func() error { return fmt.Errorf("%w (more than %d bytes)", ErrHeaderTooLarge, l.MaxBytes) }
	fields := 0
	for off := 0; off < len(raw); {
		// Look no further for the line's end than the byte limit allows
		// (and the CRLF of an empty line that would end the header there).
		rest := raw[off:]
		window := rest
		if l.MaxBytes > 0 && int64(len(window)) > l.MaxBytes-int64(off)+2 {
			window = window[:l.MaxBytes-int64(off)+2]
		}
		end := bytes.IndexByte(window, '\n')
		last := end < 0
		if last {
			if len(window) < len(rest) {
				return tooBig()
			}
			end = len(rest) // the message ends inside its header
		}
		line := rest[:end]
		if len(line) == 0 || (len(line) == 1 && line[0] == '\r') {
			return nil // the empty line that ends the header
		}
		if line[0] != ' ' && line[0] != '\t' {
			fields++
			if l.MaxFields > 0 && fields > l.MaxFields {
				return fmt.Errorf("%w (more than %d fields)", ErrHeaderTooLarge, l.MaxFields)
			}
		}
		if last {
			off += end
		} else {
			off += end + 1
		}
		if l.MaxBytes > 0 && int64(off) > l.MaxBytes {
			return tooBig()
		}
	}
	return nil
}

// CheckHeader applies the store's header limits to a message.
func (s *Store) CheckHeader(raw []byte) error { return s.header.Check(raw) }
