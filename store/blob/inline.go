package blob

import (
	"bytes"
	"context"
	"fmt"
	"io"
)

// Inline is the partition of blobs kept by the caller rather than in a
// file (Encode, Decode): no configured partition has an empty name.
const Inline = ""

// Encode returns a blob as Put would write it to a file, header,
// compression and enc included, for a caller that keeps small blobs
// itself: in a database row, committed with the rows that refer to it,
// where a file would cost an inode and a sync of its own. Info's
// Partition is Inline.
func (s *Store) Encode(ctx context.Context, r io.Reader, enc Transform) ([]byte, Info, error) {
	var (
		h   header
		buf []byte
	)
	if br, ok := r.(*bytes.Reader); ok && enc == nil && !s.noComp && br.Len() <= maxWhole {
		var err error
		if h, buf, err = s.encodeWhole(br); err != nil {
			return nil, Info{}, fmt.Errorf("encode blob: %w", err)
		}
	} else {
		var b bytes.Buffer
		var err error
		if h, err = s.writeBody(ctx, &b, r, enc); err != nil {
			return nil, Info{}, fmt.Errorf("encode blob: %w", err)
		}
		buf = b.Bytes()
		copy(buf, h.marshal())
	}
	return buf, Info{Partition: Inline, Size: int64(h.size), Stored: int64(len(buf)), Compressed: h.compressed(), Encrypted: h.encrypted()}, nil
}

// Decode is Open for the bytes Encode returned.
func (s *Store) Decode(ctx context.Context, data []byte, dec Unwrap) (io.ReadCloser, error) {
	rc, err := s.decode(ctx, io.NopCloser(nil), bytes.NewReader(data), dec)
	if err != nil {
		if err == errShort {
			err = fmt.Errorf("%w: shorter than its header", ErrFormat)
		}
		return nil, fmt.Errorf("decode blob: %w", err)
	}
	return rc, nil
}
