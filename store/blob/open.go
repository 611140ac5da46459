package blob

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/klauspost/compress/zstd"
)

// Open returns the plaintext of a blob: decompressed, and decrypted through
// dec when the header says the blob is encrypted (ErrEncrypted if dec is
// nil). A missing blob gives an error wrapping fs.ErrNotExist. Reads fail
// once ctx is done; the reader also checks at EOF that the plaintext has the
// size recorded in the header. The caller must Close it.
func (s *Store) Open(ctx context.Context, partition, id string, dec Unwrap) (io.ReadCloser, error) {
	rc, err := s.open(ctx, partition, id, dec)
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", id, err)
	}
	return rc, nil
}

func (s *Store) open(ctx context.Context, partition, id string, dec Unwrap) (io.ReadCloser, error) {
	if !validID(id) {
		return nil, ErrInvalidID
	}
	p, err := s.partition(partition)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(p.blobPath(id))
	if err != nil {
		return nil, err
	}
	rc, err := s.decode(ctx, f, bufio.NewReaderSize(f, 32<<10), dec)
	if err != nil {
		_ = f.Close()
		if errors.Is(err, errShort) {
			return nil, fmt.Errorf("%w: file shorter than its header", ErrFormat)
		}
		return nil, err
	}
	return rc, nil
}

// errShort is a blob shorter than its header.
var errShort = errors.New("shorter than the header")

// decode reads a blob's header from br and returns the plaintext reader
// over the rest; closing it closes c.
func (s *Store) decode(ctx context.Context, c io.Closer, br io.Reader, dec Unwrap) (*reader, error) {
	hb := make([]byte, headerLen)
	if _, err := io.ReadFull(br, hb); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errShort
		}
		return nil, err
	}
	h, err := parseHeader(hb)
	if err != nil {
		return nil, err
	}
	rc := &reader{ctx: ctx, c: c, store: s, want: h.size}
	var r = br
	if h.encrypted() {
		if dec == nil {
			return nil, ErrEncrypted
		}
		if r, err = dec(r); err != nil {
			return nil, fmt.Errorf("start decryption: %w", err)
		}
	}
	if h.compressed() {
		if rc.zr, err = s.getDecoder(r); err != nil {
			return nil, fmt.Errorf("start decompression: %w", err)
		}
		r = rc.zr
	}
	rc.r = r
	return rc, nil
}

// reader is the plaintext stream returned by Open.
type reader struct {
	ctx   context.Context
	r     io.Reader
	c     io.Closer // the file under it, or nothing to close
	zr    *zstd.Decoder
	store *Store
	want  uint64 // plaintext size from the header
	got   uint64
	err   error // sticky
}

func (r *reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if err := r.ctx.Err(); err != nil {
		r.err = err
		return 0, err
	}
	n, err := r.r.Read(p)
	r.got += uint64(n)
	switch {
	case r.got > r.want:
		err = fmt.Errorf("%w: more than the %d bytes in the header", ErrCorrupt, r.want)
	case err == io.EOF && r.got != r.want:
		err = fmt.Errorf("%w: %d bytes, header says %d", ErrCorrupt, r.got, r.want)
	case err != nil && err != io.EOF:
		err = fmt.Errorf("read blob: %w", err)
	}
	if err != nil {
		r.err = err
	}
	return n, err
}

func (r *reader) Close() error {
	if r.c == nil {
		return nil
	}
	if r.zr != nil {
		r.store.putDecoder(r.zr)
		r.zr = nil
	}
	err := r.c.Close()
	r.c = nil
	if r.err == nil {
		r.err = fs.ErrClosed
	}
	return err
}

// Delete removes a blob. A blob that is already gone is not an error.
//
// The directory is not fsynced: if a crash undoes the removal, the blob is
// an orphan that a Walk-based sweep removes again, and skipping the fsync
// keeps expunging thousands of messages fast.
func (s *Store) Delete(ctx context.Context, partition, id string) error {
	if !validID(id) {
		return fmt.Errorf("delete blob %q: %w", id, ErrInvalidID)
	}
	p, err := s.partition(partition)
	if err != nil {
		return fmt.Errorf("delete blob %s: %w", id, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete blob %s: %w", id, err)
	}
	if err := os.Remove(p.blobPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete blob %s: %w", id, err)
	}
	return nil
}
