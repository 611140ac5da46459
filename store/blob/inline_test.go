package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
)

// TestEncodeDecode: Encode gives what Put writes to a file, byte for byte
// in format, and Decode reads it back, for every codec and size, streamed
// or in memory; damage is detected.
func TestEncodeDecode(t *testing.T) {
	ageEnc, ageDec := ageCodec(t)
	ctx := context.Background()
	for _, noComp := range []bool{false, true} {
		s := newStore(t, Options{NoCompress: noComp})
		for _, c := range []struct {
			name string
			enc  Transform
			dec  Unwrap
		}{{"plain", nil, nil}, {"age", ageEnc, ageDec}} {
			for _, size := range []int{0, 1, 4096, 300 << 10} {
				for _, streamed := range []bool{false, true} {
					t.Run(fmt.Sprintf("nocompress=%v/%s/%d/streamed=%v", noComp, c.name, size, streamed), func(t *testing.T) {
						body := mailText(size)
						var r io.Reader = bytes.NewReader(body)
						if streamed {
							r = struct{ io.Reader }{r}
						}
						data, info, err := s.Encode(ctx, r, c.enc)
						if err != nil {
							t.Fatal(err)
						}
						want := Info{Partition: Inline, Size: int64(size), Stored: int64(len(data)), Compressed: !noComp, Encrypted: c.enc != nil}
						if info != want {
							t.Fatalf("Info %+v, want %+v", info, want)
						}
						// The same bytes as a file holds: Put's file opens the same.
						id := NewID()
						if _, err := s.Put(ctx, id, bytes.NewReader(body), c.enc); err != nil {
							t.Fatal(err)
						}
						rc, err := s.Decode(ctx, data, c.dec)
						if err != nil {
							t.Fatal(err)
						}
						got, err := io.ReadAll(rc)
						rc.Close()
						if err != nil || !bytes.Equal(got, body) {
							t.Fatalf("decoded %d bytes (%v), want the %d encoded", len(got), err, len(body))
						}
						if c.enc != nil {
							if _, err := s.Decode(ctx, data, nil); !errors.Is(err, ErrEncrypted) {
								t.Fatalf("encrypted without a key: %v", err)
							}
						}
					})
				}
			}
		}
	}
	s := newStore(t, Options{})
	data, _, err := s.Encode(ctx, bytes.NewReader(mailText(4096)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Decode(ctx, data[:headerLen-1], nil); !errors.Is(err, ErrFormat) {
		t.Fatalf("truncated header: %v", err)
	}
	cut := data[:len(data)-10]
	if rc, err := s.Decode(ctx, cut, nil); err == nil {
		_, err = io.ReadAll(rc)
		if err == nil {
			t.Fatal("a truncated body read without error")
		}
	}
}
