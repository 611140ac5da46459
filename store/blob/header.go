package blob

import (
	"encoding/binary"
	"fmt"
)

// File header, 16 bytes:
//
//	0  4  magic "BSLB"
//	4  1  format version (1)
//	5  1  flags: 1 compressed (zstd), 2 encrypted (by the caller's Transform)
//	6  2  reserved, zero
//	8  8  plaintext size, big endian
//
// The size is written last (the body is streamed), before the fsync.
const (
	headerLen     = 16
	formatVersion = 1
	magic         = "BSLB"

	flagCompressed = 1 << 0
	flagEncrypted  = 1 << 1
	knownFlags     = flagCompressed | flagEncrypted
)

type header struct {
	flags byte
	size  uint64
}

func (h header) marshal() []byte {
	b := make([]byte, headerLen)
	copy(b, magic)
	b[4] = formatVersion
	b[5] = h.flags
	binary.BigEndian.PutUint64(b[8:], h.size)
	return b
}

func parseHeader(b []byte) (header, error) {
	if len(b) < headerLen {
		return header{}, fmt.Errorf("%w: header truncated to %d bytes", ErrFormat, len(b))
	}
	if string(b[:4]) != magic {
		return header{}, fmt.Errorf("%w: bad magic %q", ErrFormat, b[:4])
	}
	if b[4] != formatVersion {
		return header{}, fmt.Errorf("%w: unsupported version %d", ErrFormat, b[4])
	}
	if b[5]&^knownFlags != 0 || b[6] != 0 || b[7] != 0 {
		return header{}, fmt.Errorf("%w: unknown flags %#x %#x%02x", ErrFormat, b[5], b[6], b[7])
	}
	size := binary.BigEndian.Uint64(b[8:])
	if size > 1<<62 {
		return header{}, fmt.Errorf("%w: impossible size %d", ErrFormat, size)
	}
	return header{flags: b[5], size: size}, nil
}

func (h header) compressed() bool { return h.flags&flagCompressed != 0 }
func (h header) encrypted() bool  { return h.flags&flagEncrypted != 0 }
