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

// TestPutEncoded: a blob encoded elsewhere (encrypted to a key the writer
// does not hold) is written as it is and opens as Put's would; what is
// not a blob is refused and nothing is left.
func TestPutEncoded(t *testing.T) {
	ageEnc, ageDec := ageCodec(t)
	ctx := context.Background()
	s := newStore(t, Options{})
	body := mailText(200 << 10)
	data, info, err := s.Encode(ctx, bytes.NewReader(body), ageEnc)
	if err != nil {
		t.Fatal(err)
	}
	if ei, err := EncodedInfo(data); err != nil || ei != info {
		t.Fatalf("EncodedInfo %+v (%v), want %+v", ei, err, info)
	}
	id := NewID()
	put, err := s.PutEncoded(ctx, id, data)
	if err != nil {
		t.Fatal(err)
	}
	if put.Partition != "p1" || put.Size != info.Size || put.Stored != info.Stored || !put.Encrypted {
		t.Fatalf("PutEncoded info %+v, encoded %+v", put, info)
	}
	rc, err := s.Open(ctx, put.Partition, id, ageDec)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read back %d bytes (%v), want %d", len(got), err, len(body))
	}
	bad := NewID()
	if _, err := s.PutEncoded(ctx, bad, []byte("From: not a blob\r\n\r\nhello")); !errors.Is(err, ErrFormat) {
		t.Fatalf("PutEncoded of a message: %v, want ErrFormat", err)
	}
	if _, err := s.Open(ctx, "p1", bad, nil); err == nil {
		t.Fatal("a refused PutEncoded left a blob")
	}
}
