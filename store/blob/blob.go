package blob

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// Errors callers may test for with errors.Is. A missing blob is reported
// with fs.ErrNotExist and an existing one (on Put) with fs.ErrExist.
var (
	ErrInvalidID        = errors.New("blob: invalid id")
	ErrUnknownPartition = errors.New("blob: unknown partition")
	ErrFormat           = errors.New("blob: not a blob file or unsupported format")
	ErrEncrypted        = errors.New("blob: blob is encrypted and no decryption was given")
	ErrCorrupt          = errors.New("blob: content does not match its header")
)

// Partition is one root directory blobs may be written to. Name is what
// callers record next to the blob id; Path may change between runs as long
// as Name stays.
type Partition struct {
	Name, Path string
}

// Options configure a Store.
type Options struct {
	Partitions []Partition
	// Level is the zstd level; the zero value means zstd.SpeedDefault,
	// which is fast enough to stay well below the cost of the fsyncs and
	// compresses mail text noticeably better than SpeedFastest.
	Level zstd.EncoderLevel
	// NoCompress stores new blobs uncompressed. Blobs already written
	// compressed still open.
	NoCompress bool
}

// Transform wraps w with an encrypting writer; Close must finish the stream
// without closing w. Compression happens before the Transform.
type Transform func(io.Writer) (io.WriteCloser, error)

// Unwrap undoes a Transform on read.
type Unwrap func(io.Reader) (io.Reader, error)

// Info describes a stored blob.
type Info struct {
	Partition  string
	Size       int64 // plaintext bytes
	Stored     int64 // bytes on disk, header included
	Compressed bool
	Encrypted  bool
}

// Store reads and writes blobs. It is safe for concurrent use.
type Store struct {
	parts  []*partition
	byName map[string]*partition
	level  zstd.EncoderLevel
	noComp bool

	// freeSpace reports the bytes available in a directory; tests replace
	// it to steer partition choice.
	freeSpace func(dir string) (uint64, error)

	// Encoders and decoders are costly to build (window buffers, tables)
	// and cheap to Reset, so they are reused across blobs.
	encoders sync.Pool
	decoders sync.Pool
	// whole compresses bodies held in memory in one call; it is safe for
	// concurrent use and keeps its state between calls (EncodeAll).
	whole *zstd.Encoder
}

type partition struct {
	Partition
	// mkdirMu serialises directory creation so no Put can use a directory
	// whose entry another Put created but has not fsynced yet.
	mkdirMu sync.Mutex
	// lastDir is the directory ensured last (blobs of one second share
	// it), and lastDurable whether its entries were fsynced then.
	lastDir     string
	lastDurable bool
}

// New checks opts and creates the partition roots (mode 0700).
func New(opts Options) (*Store, error) {
	if len(opts.Partitions) == 0 {
		return nil, errors.New("new blob store: no partitions configured")
	}
	s := &Store{
		byName:    make(map[string]*partition, len(opts.Partitions)),
		level:     opts.Level,
		noComp:    opts.NoCompress,
		freeSpace: statfsFree,
	}
	if s.level == 0 {
		s.level = zstd.SpeedDefault
	}
	if s.level < zstd.SpeedFastest || s.level > zstd.SpeedBestCompression {
		return nil, fmt.Errorf("new blob store: invalid zstd level %d", opts.Level)
	}
	whole, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(s.level), zstd.WithZeroFrames(true),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
	if err != nil {
		return nil, fmt.Errorf("new blob store: %w", err)
	}
	s.whole = whole
	paths := make(map[string]string)
	for _, p := range opts.Partitions {
		if p.Name == "" || p.Path == "" {
			return nil, fmt.Errorf("new blob store: partition %q: name and path are required", p.Name)
		}
		if _, dup := s.byName[p.Name]; dup {
			return nil, fmt.Errorf("new blob store: duplicate partition name %q", p.Name)
		}
		abs, err := filepath.Abs(p.Path)
		if err != nil {
			return nil, fmt.Errorf("new blob store: partition %q: %w", p.Name, err)
		}
		if other, dup := paths[abs]; dup {
			return nil, fmt.Errorf("new blob store: partitions %q and %q share path %s", other, p.Name, abs)
		}
		paths[abs] = p.Name
		if err := mkdirAllDurable(abs); err != nil {
			return nil, fmt.Errorf("new blob store: partition %q: %w", p.Name, err)
		}
		part := &partition{Partition: Partition{Name: p.Name, Path: abs}}
		s.parts = append(s.parts, part)
		s.byName[p.Name] = part
	}
	// Build one encoder now so a bad option fails here, not on first Put.
	enc, err := s.newEncoder()
	if err != nil {
		return nil, fmt.Errorf("new blob store: %w", err)
	}
	s.encoders.Put(enc)
	return s, nil
}

// Partitions returns the configured partitions, paths made absolute.
func (s *Store) Partitions() []Partition {
	out := make([]Partition, len(s.parts))
	for i, p := range s.parts {
		out[i] = p.Partition
	}
	return out
}

// NewID returns a fresh blob id: 32 lowercase hex digits. The first six,
// which name the blob's directories, count seconds (wrapping every 194
// days); the other 26 come from crypto/rand. Blobs written in the same
// second therefore share a directory: with a fully random prefix nearly
// every blob would need directories of its own, and under load creating
// them costs more than writing the message. At a trickle a blob still gets
// a new directory, which costs nothing that matters then.
func NewID() string {
	return newIDAt(time.Now())
}

func newIDAt(t time.Time) string {
	var b [16]byte
	// crypto/rand.Read does not fail (it aborts the program instead).
	_, _ = rand.Read(b[:])
	period := uint32(t.Unix()) & 0xffffff
	b[0], b[1], b[2] = byte(period>>16), byte(period>>8), byte(period)
	return hex.EncodeToString(b[:])
}

// validID reports whether id has NewID's form. It is the only thing that
// keeps ids from naming paths outside the tree, so it is strict.
func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (p *partition) dir(id string) string {
	return filepath.Join(p.Path, id[0:2], id[2:4], id[4:6])
}

func (p *partition) blobPath(id string) string {
	return filepath.Join(p.dir(id), id)
}

func (s *Store) partition(name string) (*partition, error) {
	p, ok := s.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownPartition, name)
	}
	return p, nil
}

func (s *Store) newEncoder() (*zstd.Encoder, error) {
	return zstd.NewWriter(nil,
		zstd.WithEncoderLevel(s.level),
		// One goroutine per blob: blobs are small and many are written at
		// once, so parallelism comes from concurrent Puts.
		zstd.WithEncoderConcurrency(1),
		// An empty body still gets a frame, so every compressed blob is a
		// valid zstd stream.
		zstd.WithZeroFrames(true),
	)
}

func (s *Store) getEncoder(w io.Writer) (*zstd.Encoder, error) {
	if enc, ok := s.encoders.Get().(*zstd.Encoder); ok {
		enc.Reset(w)
		return enc, nil
	}
	enc, err := s.newEncoder()
	if err != nil {
		return nil, err
	}
	enc.Reset(w)
	return enc, nil
}

func (s *Store) putEncoder(enc *zstd.Encoder) {
	enc.Reset(nil) // drop the reference to the file
	s.encoders.Put(enc)
}

// maxDecoderWindow bounds what a damaged or foreign file can make the
// decoder allocate; the encoder never uses more than 8 MiB.
const maxDecoderWindow = 64 << 20

func (s *Store) getDecoder(r io.Reader) (*zstd.Decoder, error) {
	if dec, ok := s.decoders.Get().(*zstd.Decoder); ok {
		if err := dec.Reset(r); err != nil {
			return nil, err
		}
		return dec, nil
	}
	// Concurrency 1 decodes synchronously: no goroutines to leak if a
	// reader is abandoned, and the decoder can go back to the pool.
	return zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxDecoderWindow))
}

func (s *Store) putDecoder(dec *zstd.Decoder) {
	if dec.Reset(nil) == nil {
		s.decoders.Put(dec)
	}
}

// statfsFree returns the bytes available to unprivileged users under dir.
func statfsFree(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, &os.PathError{Op: "statfs", Path: dir, Err: err}
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil // field types differ by OS
}
