package blob

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// tempPrefix starts the name of every temp file: ".tmp-<id>-<random>". The
// leading dot keeps it from ever looking like a blob id.
const tempPrefix = ".tmp-"

// Put writes the blob read from r under id (which must come from NewID) to
// the partition with the most free space, and returns where it went. It
// never replaces an existing blob: if id exists in any partition the error
// wraps fs.ErrExist. enc, if not nil, encrypts the (compressed) body.
//
// ctx is checked between reads of r; a reader that can block forever must be
// given its own deadline. On any error nothing is left behind.
func (s *Store) Put(ctx context.Context, id string, r io.Reader, enc Transform) (Info, error) {
	return s.put(ctx, id, r, enc, true, "")
}

// PutTo is Put into the named partition rather than the one with the
// most free space (a user pinned to a partition); an unknown name is
// ErrUnknownPartition.
func (s *Store) PutTo(ctx context.Context, partition, id string, r io.Reader, enc Transform) (Info, error) {
	return s.put(ctx, id, r, enc, true, partition)
}

// PutDeferredTo is PutDeferred into the named partition.
func (s *Store) PutDeferredTo(ctx context.Context, partition, id string, r io.Reader, enc Transform) (Info, error) {
	return s.put(ctx, id, r, enc, false, partition)
}

// put writes a blob to partition to, or "" the one pick chooses.
func (s *Store) put(ctx context.Context, id string, r io.Reader, enc Transform, sync bool, to string) (Info, error) {
	if !validID(id) {
		return Info{}, fmt.Errorf("put blob %q: %w", id, ErrInvalidID)
	}
	if err := ctx.Err(); err != nil {
		return Info{}, fmt.Errorf("put blob %s: %w", id, err)
	}
	// Cheap early refusal across partitions; the hard link below is what
	// makes "never overwrite" atomic within the chosen one, and all there
	// is to it with a single partition.
	for _, p := range s.parts {
		if len(s.parts) == 1 {
			break
		}
		switch _, err := os.Lstat(p.blobPath(id)); {
		case err == nil:
			return Info{}, fmt.Errorf("put blob %s: in partition %q: %w", id, p.Name, fs.ErrExist)
		case !errors.Is(err, fs.ErrNotExist):
			return Info{}, fmt.Errorf("put blob %s: %w", id, err)
		}
	}
	var p *partition
	var err error
	if to != "" {
		p, err = s.partition(to)
	} else {
		p, err = s.pick()
	}
	if err != nil {
		return Info{}, fmt.Errorf("put blob %s: %w", id, err)
	}
	info, err := s.write(ctx, p, id, r, enc, sync)
	if err != nil {
		return Info{}, fmt.Errorf("put blob %s: %w", id, err)
	}
	return info, nil
}

// PutEncoded writes data, a blob as Encode returned it, under id as Put
// would have written it, fsynced. It is for a blob encrypted to a key this
// process does not hold, kept elsewhere meanwhile (a delivery to a secure
// user that waited in the queue): it cannot be decoded to be written
// again, only copied.
func (s *Store) PutEncoded(ctx context.Context, id string, data []byte) (Info, error) {
	h, err := parseHeader(data)
	if err != nil {
		return Info{}, fmt.Errorf("put blob %s: %w", id, err)
	}
	return s.put(ctx, id, &preEncoded{data: data, h: h}, nil, true, "")
}

// EncodedInfo describes data, a blob as Encode returned it, as Encode did
// (Partition Inline).
func EncodedInfo(data []byte) (Info, error) {
	h, err := parseHeader(data)
	if err != nil {
		return Info{}, err
	}
	return Info{Partition: Inline, Size: int64(h.size), Stored: int64(len(data)), Compressed: h.compressed(), Encrypted: h.encrypted()}, nil
}

// preEncoded is a blob already encoded, to be written as it is.
type preEncoded struct {
	data []byte
	h    header
}

func (p *preEncoded) Read([]byte) (int, error) { return 0, io.EOF } // written whole by write, never read

// PutDeferred is Put without its fsyncs: the blob is complete and named,
// but not durable until Sync returns. Group commit writes many blobs this
// way and then makes them all durable with one Sync, instead of paying
// two fsyncs for each.
func (s *Store) PutDeferred(ctx context.Context, id string, r io.Reader, enc Transform) (Info, error) {
	return s.put(ctx, id, r, enc, false, "")
}

// Sync makes every blob written so far by PutDeferred to the named
// partitions durable, with one syncfs(2) per partition's file system: the
// file data, and the directory entries naming them.
func (s *Store) Sync(ctx context.Context, partitions ...string) error {
	for _, name := range partitions {
		p, ok := s.byName[name]
		if !ok {
			return fmt.Errorf("sync partition %q: %w", name, ErrUnknownPartition)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := syncFS(p.Path); err != nil {
			return fmt.Errorf("sync partition %q: %w", name, err)
		}
	}
	return nil
}

func syncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}

// pick returns the partition with the most free space; ties go to the one
// configured first. A partition whose free space cannot be read is skipped.
func (s *Store) pick() (*partition, error) {
	if len(s.parts) == 1 {
		return s.parts[0], nil
	}
	var (
		best     *partition
		bestFree uint64
		errs     []error
	)
	for _, p := range s.parts {
		free, err := s.freeSpace(p.Path)
		if err != nil {
			errs = append(errs, fmt.Errorf("partition %q: %w", p.Name, err))
			continue
		}
		if best == nil || free > bestFree {
			best, bestFree = p, free
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no usable partition: %w", errors.Join(errs...))
	}
	return best, nil
}

func (s *Store) write(ctx context.Context, p *partition, id string, r io.Reader, enc Transform, sync bool) (Info, error) {
	dir := p.dir(id)
	if err := p.ensureDir(id, sync); err != nil {
		return Info{}, err
	}
	f, commit, err := createUnnamed(dir, id)
	if err != nil {
		return Info{}, err
	}
	committed := false
	defer func() {
		if !committed {
			_ = f.Close()
			commit.abort()
		}
	}()

	var (
		h      header
		stored int64
	)
	if pe, ok := r.(*preEncoded); ok {
		h, stored = pe.h, int64(len(pe.data))
		_, err = f.Write(pe.data)
	} else if br, ok := r.(*bytes.Reader); ok && enc == nil && !s.noComp && br.Len() <= maxWhole {
		h, stored, err = s.writeWhole(f, br)
	} else {
		h, stored, err = s.writeStream(ctx, f, r, enc)
	}
	if err != nil {
		return Info{}, err
	}
	if sync {
		if err := f.Sync(); err != nil {
			return Info{}, fmt.Errorf("fsync %s: %w", id, err)
		}
	}
	// Last chance to give up before the blob becomes visible.
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	final := p.blobPath(id)
	// link(2), unlike rename(2), fails if the target exists: an atomic
	// no-overwrite commit that needs no platform-specific renameat2.
	if err := commit.link(f, final); err != nil {
		return Info{}, err // EEXIST wraps fs.ErrExist
	}
	committed = true
	if err := f.Close(); err != nil {
		_ = os.Remove(final)
		return Info{}, err
	}
	if !sync {
		return p.info(h, stored), nil
	}
	if err := syncDir(dir); err != nil {
		// The caller will treat the Put as failed and record nothing, so
		// don't leave a blob that may or may not survive a crash.
		_ = os.Remove(final)
		return Info{}, err
	}
	return p.info(h, stored), nil
}

// maxWhole is the largest body compressed in one call rather than
// streamed: the size of most mail, whose compressed copy costs little to
// hold.
const maxWhole = 1 << 20

// writeWhole writes a body held in memory, compressed in one call, with
// its header in one write.
func (s *Store) writeWhole(f *os.File, br *bytes.Reader) (header, int64, error) {
	h, buf, err := s.encodeWhole(br)
	if err != nil {
		return header{}, 0, err
	}
	if _, err := f.Write(buf); err != nil {
		return header{}, 0, err
	}
	return h, int64(len(buf)), nil
}

// encodeWhole compresses a body held in memory in one call and returns
// it after its header, as a blob file holds it.
func (s *Store) encodeWhole(br *bytes.Reader) (header, []byte, error) {
	raw := make([]byte, br.Len())
	if _, err := io.ReadFull(br, raw); err != nil {
		return header{}, nil, err
	}
	h := header{flags: flagCompressed, size: uint64(len(raw))}
	buf := make([]byte, headerLen, headerLen+len(raw)/2+64)
	copy(buf, h.marshal())
	return h, s.whole.EncodeAll(raw, buf), nil
}

// writeStream streams the body through compression and encryption, then
// writes the header, whose size is known only at the end.
func (s *Store) writeStream(ctx context.Context, f *os.File, r io.Reader, enc Transform) (header, int64, error) {
	h, err := s.writeBody(ctx, f, r, enc)
	if err != nil {
		return header{}, 0, err
	}
	if _, err := f.WriteAt(h.marshal(), 0); err != nil {
		return header{}, 0, fmt.Errorf("write header: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		return header{}, 0, err
	}
	return h, st.Size(), nil
}

// pending is a file being written that has no final name yet.
type pending struct {
	tmp string // its temporary name, or "" for an O_TMPFILE inode
}

// createUnnamed opens a file to write a blob into. Where the file system
// supports O_TMPFILE (Linux: ext4, xfs, btrfs, tmpfs) the file has no
// name at all until it is linked into place: one directory change per
// blob instead of three (create, link, unlink), and nothing left behind by
// a crash. Elsewhere a temporary name in the same directory is used.
func createUnnamed(dir, id string) (*os.File, pending, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return os.NewFile(uintptr(fd), filepath.Join(dir, id)), pending{}, nil
	}
	f, err := os.CreateTemp(dir, tempPrefix+id+"-*") // mode 0600
	if err != nil {
		return nil, pending{}, err
	}
	return f, pending{tmp: f.Name()}, nil
}

// link gives the finished file its final name.
func (p pending) link(f *os.File, final string) error {
	if p.tmp == "" {
		// linkat(2) through /proc/self/fd works without the privilege
		// that AT_EMPTY_PATH needs.
		err := unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", f.Fd()), unix.AT_FDCWD, final, unix.AT_SYMLINK_FOLLOW)
		if err != nil {
			return &os.LinkError{Op: "link", Old: "(unnamed)", New: final, Err: err}
		}
		return nil
	}
	if err := os.Link(p.tmp, final); err != nil {
		return err
	}
	// Drop the temp name. If this fails the extra name points at the same
	// complete file and Walk reports it as Temp for the sweeper.
	_ = os.Remove(p.tmp)
	return nil
}

// abort removes what a failed write left.
func (p pending) abort() {
	if p.tmp != "" {
		_ = os.Remove(p.tmp)
	}
}

func (p *partition) info(h header, stored int64) Info {
	return Info{Partition: p.Name, Size: int64(h.size), Stored: stored, Compressed: h.compressed(), Encrypted: h.encrypted()}
}

// writeBody writes a placeholder header and the body to f:
// r -> zstd -> enc -> f. It returns the real header.
func (s *Store) writeBody(ctx context.Context, f io.Writer, r io.Reader, enc Transform) (header, error) {
	var h header
	bw := bufio.NewWriterSize(f, 64<<10)
	if _, err := bw.Write(make([]byte, headerLen)); err != nil {
		return h, err
	}
	var w io.Writer = bw
	var encW io.WriteCloser
	if enc != nil {
		var err error
		if encW, err = enc(bw); err != nil {
			return h, fmt.Errorf("start encryption: %w", err)
		}
		h.flags |= flagEncrypted
		w = encW
	}
	var zw *zstd.Encoder
	if !s.noComp {
		var err error
		if zw, err = s.getEncoder(w); err != nil {
			return h, fmt.Errorf("start compression: %w", err)
		}
		defer s.putEncoder(zw)
		h.flags |= flagCompressed
		w = zw
	}

	src := &ctxReader{ctx: ctx, r: r}
	if _, err := io.Copy(w, src); err != nil {
		return h, err
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return h, fmt.Errorf("finish compression: %w", err)
		}
	}
	if encW != nil {
		if err := encW.Close(); err != nil {
			return h, fmt.Errorf("finish encryption: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return h, err
	}
	h.size = uint64(src.n)
	return h, nil
}

// ensureDir creates the blob's directory chain with mode 0700, fsyncing the
// parent of every directory it creates so the new entries survive a crash
// (unless sync is false: then Sync's syncfs will).
func (p *partition) ensureDir(id string, sync bool) error {
	p.mkdirMu.Lock()
	defer p.mkdirMu.Unlock()
	dir := p.dir(id)
	if dir == p.lastDir {
		if sync && !p.lastDurable {
			// Made by a Put whose Sync may not have run yet.
			for _, d := range []string{p.Path, filepath.Join(p.Path, id[0:2]), filepath.Join(p.Path, id[0:2], id[2:4])} {
				if err := syncDir(d); err != nil {
					return err
				}
			}
			p.lastDurable = true
		}
		return nil
	}
	if err := p.mkdirs(id, sync); err != nil {
		return err
	}
	p.lastDir, p.lastDurable = dir, sync
	return nil
}

// mkdirs creates what is missing of the blob's directory chain.
func (p *partition) mkdirs(id string, sync bool) error {
	if fi, err := os.Stat(p.dir(id)); err == nil && fi.IsDir() {
		return nil
	}
	parent := p.Path
	for _, part := range []string{id[0:2], id[2:4], id[4:6]} {
		d := filepath.Join(parent, part)
		switch err := os.Mkdir(d, 0o700); {
		case err == nil:
			if !sync {
				break
			}
			if err := syncDir(parent); err != nil {
				return err
			}
		case !errors.Is(err, fs.ErrExist):
			return err
		}
		parent = d
	}
	return nil
}

// mkdirAllDurable is os.MkdirAll(dir, 0700) that also fsyncs the parent of
// each directory it creates.
func mkdirAllDurable(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirAllDurable(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

// syncDir fsyncs a directory so entries created or removed in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// ctxReader stops a copy when ctx is done and counts the bytes read.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
	n   int64
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// CopyTo writes blob id of partition from into partition to byte for
// byte, its header, compression and encryption as they are (so an
// encrypted blob moves without its key), fsynced as Put does. A copy
// already in to, left by a move that stopped before its rows changed, is
// replaced. The caller records the new partition, then deletes the old
// copy (a user's move to another partition).
func (s *Store) CopyTo(ctx context.Context, id, from, to string) (Info, error) {
	if !validID(id) {
		return Info{}, fmt.Errorf("copy blob %q: %w", id, ErrInvalidID)
	}
	src, err := s.partition(from)
	if err != nil {
		return Info{}, fmt.Errorf("copy blob %s: %w", id, err)
	}
	dst, err := s.partition(to)
	if err != nil {
		return Info{}, fmt.Errorf("copy blob %s: %w", id, err)
	}
	if src == dst {
		return Info{}, fmt.Errorf("copy blob %s: source and target are both partition %q", id, to)
	}
	data, err := os.ReadFile(src.blobPath(id))
	if err != nil {
		return Info{}, fmt.Errorf("copy blob %s: %w", id, err)
	}
	h, err := parseHeader(data)
	if err != nil {
		return Info{}, fmt.Errorf("copy blob %s: %w", id, err)
	}
	if err := os.Remove(dst.blobPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("copy blob %s: %w", id, err)
	}
	info, err := s.write(ctx, dst, id, &preEncoded{data: data, h: h}, nil, true)
	if err != nil {
		return Info{}, fmt.Errorf("copy blob %s: %w", id, err)
	}
	return info, nil
}
