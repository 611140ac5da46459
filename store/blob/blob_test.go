package blob

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"basalt/crypt"

	"github.com/klauspost/compress/zstd"
)

func newStore(t testing.TB, opts Options, names ...string) *Store {
	t.Helper()
	if len(names) == 0 {
		names = []string{"p1"}
	}
	dir := t.TempDir()
	for _, n := range names {
		opts.Partitions = append(opts.Partitions, Partition{Name: n, Path: filepath.Join(dir, n)})
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func put(t testing.TB, s *Store, id string, body []byte, enc Transform) Info {
	t.Helper()
	info, err := s.Put(context.Background(), id, bytes.NewReader(body), enc)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func read(t testing.TB, s *Store, part, id string, dec Unwrap) ([]byte, error) {
	t.Helper()
	rc, err := s.Open(context.Background(), part, id, dec)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// mailText returns n bytes of compressible, mail-like text.
func mailText(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "Line %d of a message body: the quick brown fox jumps over the lazy dog.\r\n", i)
	}
	return b.Bytes()[:n]
}

// xorTransform is a stand-in cipher: enough to prove the Transform and
// Unwrap are applied in the right place.
func xorTransform(w io.Writer) (io.WriteCloser, error) { return xorWriter{w}, nil }

type xorWriter struct{ w io.Writer }

func (x xorWriter) Write(p []byte) (int, error) {
	q := make([]byte, len(p))
	for i, c := range p {
		q[i] = c ^ 0x5a
	}
	return x.w.Write(q)
}
func (xorWriter) Close() error { return nil }

func xorUnwrap(r io.Reader) (io.Reader, error) { return xorReader{r}, nil }

type xorReader struct{ r io.Reader }

func (x xorReader) Read(p []byte) (int, error) {
	n, err := x.r.Read(p)
	for i := range p[:n] {
		p[i] ^= 0x5a
	}
	return n, err
}

func ageCodec(t testing.TB) (Transform, Unwrap) {
	t.Helper()
	id, err := crypt.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	to := id.Recipient()
	return func(w io.Writer) (io.WriteCloser, error) { return crypt.Encrypt(w, to) },
		func(r io.Reader) (io.Reader, error) { return crypt.Decrypt(r, id) }
}

func TestRoundTrip(t *testing.T) {
	ageEnc, ageDec := ageCodec(t)
	codecs := []struct {
		name string
		enc  Transform
		dec  Unwrap
	}{
		{"plain", nil, nil},
		{"xor", xorTransform, xorUnwrap},
		{"age", ageEnc, ageDec},
	}
	bodies := []struct {
		name string
		body []byte
	}{
		{"empty", nil},
		{"one byte", []byte("x")},
		{"4KB text", mailText(4096)},
		{"1MB random", randBytes(t, 1<<20)},
		{"3MB text", mailText(3 << 20)},
	}
	// A body in memory (a *bytes.Reader) is compressed in one call; any
	// other reader is streamed. Both must write the same format.
	readers := []struct {
		name string
		r    func([]byte) io.Reader
	}{
		{"in memory", func(b []byte) io.Reader { return bytes.NewReader(b) }},
		{"streamed", func(b []byte) io.Reader { return struct{ io.Reader }{bytes.NewReader(b)} }},
	}
	for _, noComp := range []bool{false, true} {
		s := newStore(t, Options{NoCompress: noComp})
		for _, c := range codecs {
			for _, b := range bodies {
				for _, rd := range readers {
					t.Run(fmt.Sprintf("nocompress=%v/%s/%s/%s", noComp, c.name, b.name, rd.name), func(t *testing.T) {
						id := NewID()
						info, err := s.Put(context.Background(), id, rd.r(b.body), c.enc)
						if err != nil {
							t.Fatal(err)
						}
						want := Info{Partition: "p1", Size: int64(len(b.body)), Stored: info.Stored, Compressed: !noComp, Encrypted: c.enc != nil}
						if info != want {
							t.Errorf("Info = %+v, want %+v", info, want)
						}
						fi, err := os.Stat(s.parts[0].blobPath(id))
						if err != nil {
							t.Fatal(err)
						}
						if fi.Size() != info.Stored {
							t.Errorf("Stored = %d, file is %d bytes", info.Stored, fi.Size())
						}
						if !noComp && c.enc == nil && b.name == "3MB text" && info.Stored > info.Size/5 {
							t.Errorf("text compressed only to %d of %d bytes", info.Stored, info.Size)
						}
						got, err := read(t, s, "p1", id, c.dec)
						if err != nil {
							t.Fatal(err)
						}
						if !bytes.Equal(got, b.body) {
							t.Fatalf("read back %d bytes that differ from the %d written", len(got), len(b.body))
						}
					})
				}
			}
		}
	}
}

func TestNoPlaintextOnDisk(t *testing.T) {
	canary := []byte("CANARY-91d2e-secret-body-text")
	body := bytes.Repeat(append(bytes.Clone(canary), "\r\n"...), 2000)
	enc, dec := ageCodec(t)
	tests := []struct {
		name     string
		noComp   bool
		enc      Transform
		wantSeen bool // the control case proves the scan can see the canary
	}{
		{"compressed+encrypted", false, enc, false},
		{"encrypted", true, enc, false},
		{"plain control", true, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, Options{NoCompress: tt.noComp})
			id := NewID()
			put(t, s, id, body, tt.enc)
			raw, err := os.ReadFile(s.parts[0].blobPath(id))
			if err != nil {
				t.Fatal(err)
			}
			if seen := bytes.Contains(raw, canary[:16]); seen != tt.wantSeen {
				t.Fatalf("canary on disk = %v, want %v", seen, tt.wantSeen)
			}
			if tt.enc != nil {
				got, err := read(t, s, "p1", id, dec)
				if err != nil || !bytes.Equal(got, body) {
					t.Fatalf("read back: %v", err)
				}
			}
		})
	}
}

func TestLayout(t *testing.T) {
	s := newStore(t, Options{})
	id := "0a1b2c" + strings.Repeat("d", 26)
	put(t, s, id, []byte("hello"), nil)
	root := s.parts[0].Path
	path := filepath.Join(root, "0a", "1b", "2c", id)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("blob not at %s: %v", path, err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Errorf("file mode %o, want 600", m)
	}
	for _, d := range []string{root, filepath.Join(root, "0a"), filepath.Join(root, "0a", "1b"), filepath.Join(root, "0a", "1b", "2c")} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o700 {
			t.Errorf("%s mode %o, want 700", d, m)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := parseHeader(raw)
	if err != nil {
		t.Fatal(err)
	}
	if string(raw[:4]) != magic || raw[4] != formatVersion || h.size != 5 || !h.compressed() || h.encrypted() {
		t.Errorf("header = % x", raw[:headerLen])
	}
	// Nothing else in the leaf directory: the temp file is gone.
	des, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(des) != 1 {
		t.Errorf("leaf directory holds %d entries, want 1", len(des))
	}
}

func TestNewID(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		id := NewID()
		if !validID(id) {
			t.Fatalf("NewID() = %q is not valid", id)
		}
		if seen[id] {
			t.Fatalf("NewID repeated %s", id)
		}
		seen[id] = true
	}
}

func TestInvalidIDs(t *testing.T) {
	s := newStore(t, Options{})
	ctx := context.Background()
	for _, id := range []string{
		"",
		"abc",
		strings.Repeat("A", 32),
		strings.Repeat("g", 32),
		strings.Repeat("a", 31),
		strings.Repeat("a", 33),
		"../../../../etc/passwd/aaaaaaaaa",
		"aa/bb/cc/" + strings.Repeat("a", 23),
		".tmp-" + strings.Repeat("a", 27),
	} {
		if _, err := s.Put(ctx, id, strings.NewReader("x"), nil); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Put(%q): err = %v", id, err)
		}
		if _, err := s.Open(ctx, "p1", id, nil); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Open(%q): err = %v", id, err)
		}
		if err := s.Delete(ctx, "p1", id); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Delete(%q): err = %v", id, err)
		}
	}
}

// fakeFree returns a freeSpace func reading from a map guarded by a mutex.
type fakeFree struct {
	mu   sync.Mutex
	free map[string]uint64 // by path
	fail map[string]bool
}

func (f *fakeFree) set(path string, n uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.free[path] = n
}

func (f *fakeFree) fn(dir string) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail[dir] {
		return 0, errors.New("statfs: injected failure")
	}
	return f.free[dir], nil
}

func TestPartitionChoice(t *testing.T) {
	tests := []struct {
		name   string
		free   [3]uint64
		fail   [3]bool
		want   string
		errors bool
	}{
		{name: "most free wins", free: [3]uint64{10, 30, 20}, want: "b"},
		{name: "tie goes to first", free: [3]uint64{30, 30, 30}, want: "a"},
		{name: "tie after first", free: [3]uint64{10, 30, 30}, want: "b"},
		{name: "failing partition skipped", free: [3]uint64{10, 30, 20}, fail: [3]bool{false, true, false}, want: "c"},
		{name: "all failing", fail: [3]bool{true, true, true}, errors: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, Options{}, "a", "b", "c")
			ff := &fakeFree{free: map[string]uint64{}, fail: map[string]bool{}}
			for i, p := range s.parts {
				ff.free[p.Path] = tt.free[i]
				ff.fail[p.Path] = tt.fail[i]
			}
			s.freeSpace = ff.fn
			info, err := s.Put(context.Background(), NewID(), strings.NewReader("body"), nil)
			if tt.errors {
				if err == nil {
					t.Fatalf("Put succeeded into %q", info.Partition)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if info.Partition != tt.want {
				t.Errorf("partition = %q, want %q", info.Partition, tt.want)
			}
		})
	}
}

func TestTwoPartitions(t *testing.T) {
	s := newStore(t, Options{}, "a", "b")
	ff := &fakeFree{free: map[string]uint64{}}
	s.freeSpace = ff.fn
	type stored struct {
		part, id string
		body     []byte
	}
	var all []stored
	used := map[string]int{}
	for i := range 10 {
		// Alternate which partition has more room.
		ff.set(s.parts[0].Path, uint64(100+i%2*100))
		ff.set(s.parts[1].Path, 150)
		id, body := NewID(), mailText(1000+i)
		info := put(t, s, id, body, nil)
		used[info.Partition]++
		all = append(all, stored{info.Partition, id, body})
	}
	if used["a"] != 5 || used["b"] != 5 {
		t.Fatalf("partition use = %v, want 5 each", used)
	}
	for _, st := range all {
		got, err := read(t, s, st.part, st.id, nil)
		if err != nil || !bytes.Equal(got, st.body) {
			t.Fatalf("read %s from %s: %v", st.id, st.part, err)
		}
		other := map[string]string{"a": "b", "b": "a"}[st.part]
		if _, err := read(t, s, other, st.id, nil); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("read %s from the wrong partition: err = %v", st.id, err)
		}
	}
	if _, err := read(t, s, "nope", all[0].id, nil); !errors.Is(err, ErrUnknownPartition) {
		t.Errorf("unknown partition: err = %v", err)
	}
}

func TestPutExisting(t *testing.T) {
	s := newStore(t, Options{}, "a", "b")
	ff := &fakeFree{free: map[string]uint64{}}
	s.freeSpace = ff.fn
	ff.set(s.parts[0].Path, 100)
	id := NewID()
	orig := []byte("the original body")
	put(t, s, id, orig, nil)

	// Same partition, then the other partition being the emptier one.
	for _, freeB := range []uint64{0, 1000} {
		ff.set(s.parts[1].Path, freeB)
		_, err := s.Put(context.Background(), id, strings.NewReader("an impostor"), nil)
		if !errors.Is(err, fs.ErrExist) {
			t.Fatalf("second Put (free b=%d): err = %v, want fs.ErrExist", freeB, err)
		}
	}
	got, err := read(t, s, "a", id, nil)
	if err != nil || !bytes.Equal(got, orig) {
		t.Fatalf("original damaged: %q, %v", got, err)
	}
	if n := countEntries(t, s); n != 1 {
		t.Errorf("Walk found %d entries, want the 1 blob", n)
	}
}

// TestPutRaceSameID checks the link-based commit itself: the early Lstat
// check is bypassed by racing many Puts of one id; exactly one may win.
func TestPutRaceSameID(t *testing.T) {
	s := newStore(t, Options{})
	id := NewID()
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.Put(context.Background(), id, bytes.NewReader(mailText(100_000+i)), nil)
		})
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, fs.ErrExist):
			t.Errorf("unexpected error: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d Puts of one id succeeded, want 1", wins)
	}
	got, err := read(t, s, "p1", id, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(mailText(200_000), got) || len(got) < 100_000 || len(got) >= 100_000+n {
		t.Errorf("winner's body is not one of the bodies written (%d bytes)", len(got))
	}
	if c := countEntries(t, s); c != 1 {
		t.Errorf("Walk found %d entries, want 1", c)
	}
}

func countEntries(t testing.TB, s *Store) int {
	t.Helper()
	n := 0
	if err := s.Walk(context.Background(), func(Entry) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestWalkAndRemove(t *testing.T) {
	s := newStore(t, Options{}, "a", "b")
	ff := &fakeFree{free: map[string]uint64{}}
	s.freeSpace = ff.fn
	ctx := context.Background()

	want := map[string]Entry{}
	for i := range 6 {
		ff.set(s.parts[0].Path, uint64(i%2))
		id := NewID()
		info := put(t, s, id, []byte("body"), nil)
		want[info.Partition+"/"+id] = Entry{Partition: info.Partition, ID: id, Path: s.byName[info.Partition].blobPath(id)}
	}
	// A temp file left by a Put that died between create and commit.
	tid := NewID()
	p := s.byName["b"]
	if err := p.ensureDir(tid, true); err != nil {
		t.Fatal(err)
	}
	tpath := filepath.Join(p.dir(tid), tempPrefix+tid+"-12345")
	if err := os.WriteFile(tpath, []byte("half a blob"), 0o600); err != nil {
		t.Fatal(err)
	}
	want["b/"+tid+"/temp"] = Entry{Partition: "b", ID: tid, Temp: true, Path: tpath}

	// Things that are not part of the layout and must be ignored.
	junk := []string{
		filepath.Join(p.Path, "lost+found", "x"),
		filepath.Join(p.Path, "README"),
		filepath.Join(p.dir(tid), "notes.txt"),
		filepath.Join(p.dir(tid), strings.Repeat("f", 32)), // valid id, wrong directory
		filepath.Join(p.dir(tid), tempPrefix+"nothex"),
		filepath.Join(p.Path, "ZZ", "00", "00", strings.Repeat("0", 32)),
	}
	for _, j := range junk {
		if err := os.MkdirAll(filepath.Dir(j), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(j, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	got := map[string]Entry{}
	err := s.Walk(ctx, func(e Entry) error {
		if e.ModTime.IsZero() {
			t.Errorf("%s: zero ModTime", e.Path)
		}
		key := e.Partition + "/" + e.ID
		if e.Temp {
			key += "/temp"
		}
		e.ModTime = e.ModTime.UTC().Truncate(0)
		got[key] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("Walk found %d entries, want %d: %v", len(got), len(want), got)
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("Walk missed %s", k)
			continue
		}
		g.ModTime = w.ModTime
		if g != w {
			t.Errorf("entry %s = %+v, want %+v", k, g, w)
		}
	}

	// Remove everything Walk reported; the junk stays.
	for _, e := range got {
		if err := s.Remove(ctx, e); err != nil {
			t.Fatal(err)
		}
		if err := s.Remove(ctx, e); err != nil {
			t.Errorf("second Remove of %s: %v", e.Path, err)
		}
	}
	if n := countEntries(t, s); n != 0 {
		t.Errorf("after Remove, Walk finds %d entries", n)
	}
	for _, j := range junk {
		if _, err := os.Stat(j); err != nil {
			t.Errorf("junk %s was touched: %v", j, err)
		}
	}

	// An error from fn stops the walk and comes back unchanged.
	put(t, s, NewID(), []byte("x"), nil)
	put(t, s, NewID(), []byte("y"), nil)
	stop := errors.New("stop")
	calls := 0
	if err := s.Walk(ctx, func(Entry) error { calls++; return stop }); err != stop || calls != 1 {
		t.Errorf("Walk = %v after %d calls, want stop after 1", err, calls)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Walk(cctx, func(Entry) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Walk with cancelled ctx: %v", err)
	}
}

func TestRemoveRefusesForeignPaths(t *testing.T) {
	s := newStore(t, Options{})
	outside := filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(outside, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	id := NewID()
	info := put(t, s, id, []byte("blob"), nil)
	p := s.parts[0]
	bad := []Entry{
		{Partition: "p1", ID: id, Temp: true, Path: outside},
		{Partition: "p1", ID: id, Temp: true, Path: p.blobPath(id)}, // the blob itself, posing as temp
		{Partition: "p1", ID: id, Temp: true, Path: filepath.Join(p.dir(id), tempPrefix+id+"-1", "..", id)},
		{Partition: "p1", ID: "../x", Temp: true, Path: outside},
		{Partition: "zz", ID: id, Temp: true, Path: filepath.Join(p.dir(id), tempPrefix+id+"-1")},
	}
	for _, e := range bad {
		if err := s.Remove(context.Background(), e); err == nil {
			t.Errorf("Remove(%+v) succeeded", e)
		}
	}
	if _, err := os.Stat(outside); err != nil {
		t.Error("file outside the store removed")
	}
	if _, err := read(t, s, info.Partition, id, nil); err != nil {
		t.Errorf("blob removed: %v", err)
	}
}

func TestDelete(t *testing.T) {
	s := newStore(t, Options{})
	ctx := context.Background()
	id := NewID()
	put(t, s, id, []byte("bye"), nil)
	if err := s.Delete(ctx, "p1", id); err != nil {
		t.Fatal(err)
	}
	if _, err := read(t, s, "p1", id, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open after Delete: err = %v", err)
	}
	if err := s.Delete(ctx, "p1", id); err != nil {
		t.Errorf("Delete of a deleted blob: %v", err)
	}
	if err := s.Delete(ctx, "p1", NewID()); err != nil {
		t.Errorf("Delete of a never-written blob: %v", err)
	}
	if err := s.Delete(ctx, "nope", NewID()); !errors.Is(err, ErrUnknownPartition) {
		t.Errorf("Delete in unknown partition: %v", err)
	}
	// The id can be reused once deleted.
	put(t, s, id, []byte("again"), nil)
}

// endless yields data and calls hook once after limit bytes. It gives up
// with an error at 16 times limit, so a Put that ignores cancellation fails
// the test instead of hanging it.
type endless struct {
	n, limit int
	hook     func()
}

var errNotStopped = errors.New("endless: reader was not stopped")

func (e *endless) Read(p []byte) (int, error) {
	if e.n >= 16*e.limit {
		return 0, errNotStopped
	}
	if e.n >= e.limit && e.hook != nil {
		e.hook()
		e.hook = nil
	}
	for i := range p {
		p[i] = byte('a' + (e.n+i)%26)
	}
	e.n += len(p)
	return len(p), nil
}

func TestPutCancelled(t *testing.T) {
	enc, _ := ageCodec(t)
	for _, tc := range []struct {
		name string
		enc  Transform
	}{{"plain", nil}, {"encrypted", enc}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, Options{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			id := NewID()
			src := &endless{limit: 1 << 20, hook: cancel}
			_, err := s.Put(ctx, id, src, tc.enc)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Put = %v, want context.Canceled", err)
			}
			if src.n > 2<<20 {
				t.Errorf("Put read %d bytes after cancellation at 1 MiB", src.n)
			}
			if n := countEntries(t, s); n != 0 {
				t.Errorf("Walk found %d entries after a cancelled Put", n)
			}
			if _, err := read(t, s, "p1", id, nil); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Open after cancelled Put: %v", err)
			}
			// Already cancelled: nothing is even created.
			if _, err := s.Put(ctx, NewID(), strings.NewReader("x"), nil); !errors.Is(err, context.Canceled) {
				t.Errorf("Put with cancelled ctx = %v", err)
			}
		})
	}
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("connection reset")
	}
	n := min(len(p), f.n)
	f.n -= n
	return n, nil
}

func TestPutFailuresLeaveNothing(t *testing.T) {
	tests := []struct {
		name string
		r    io.Reader
		enc  Transform
	}{
		{"reader error", &failingReader{n: 100_000}, nil},
		{"transform error", strings.NewReader("x"), func(io.Writer) (io.WriteCloser, error) { return nil, errors.New("no key") }},
		{"transform close error", strings.NewReader("x"), func(w io.Writer) (io.WriteCloser, error) { return closeFails{w}, nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, Options{})
			id := NewID()
			if _, err := s.Put(context.Background(), id, tt.r, tt.enc); err == nil {
				t.Fatal("Put succeeded")
			}
			if n := countEntries(t, s); n != 0 {
				t.Errorf("Walk found %d entries", n)
			}
		})
	}
}

type closeFails struct{ io.Writer }

func (closeFails) Close() error { return errors.New("close failed") }

func TestOpenDamaged(t *testing.T) {
	enc, dec := ageCodec(t)
	_, otherDec := ageCodec(t)
	s := newStore(t, Options{NoCompress: true})
	sc := newStore(t, Options{})
	body := mailText(10_000)

	// Write raw file content under a fresh id and return it.
	raw := func(s *Store, b []byte) string {
		id := NewID()
		p := s.parts[0]
		if err := p.ensureDir(id, true); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p.blobPath(id), b, 0o600); err != nil {
			t.Fatal(err)
		}
		return id
	}
	valid := func(s *Store, enc Transform) []byte {
		id := NewID()
		put(t, s, id, body, enc)
		b, err := os.ReadFile(s.parts[0].blobPath(id))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	plain := valid(s, nil)
	compressed := valid(sc, nil)
	encrypted := valid(s, enc)
	patch := func(b []byte, i int, v byte) []byte { c := bytes.Clone(b); c[i] = v; return c }

	tests := []struct {
		name string
		s    *Store
		file []byte
		dec  Unwrap
		want error // nil: any error
	}{
		{"empty file", s, nil, nil, ErrFormat},
		{"short header", s, plain[:10], nil, ErrFormat},
		{"bad magic", s, patch(plain, 0, 'X'), nil, ErrFormat},
		{"future version", s, patch(plain, 4, 2), nil, ErrFormat},
		{"unknown flag", s, patch(plain, 5, 0x80), nil, ErrFormat},
		{"reserved set", s, patch(plain, 7, 1), nil, ErrFormat},
		{"truncated body", s, plain[:len(plain)-1], nil, ErrCorrupt},
		{"extra body", s, append(bytes.Clone(plain), 'x'), nil, ErrCorrupt},
		{"size too small", s, patch(plain, 15, plain[15]-1), nil, ErrCorrupt},
		{"truncated zstd", sc, compressed[:len(compressed)-3], nil, nil},
		{"flipped zstd", sc, patch(compressed, len(compressed)/2, ^compressed[len(compressed)/2]), nil, nil},
		{"encrypted, no dec", s, encrypted, nil, ErrEncrypted},
		{"encrypted, wrong key", s, encrypted, otherDec, crypt.ErrWrongKey},
		{"encrypted, flipped", s, patch(encrypted, len(encrypted)-5, ^encrypted[len(encrypted)-5]), dec, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := raw(tt.s, tt.file)
			got, err := read(t, tt.s, "p1", id, tt.dec)
			if err == nil {
				t.Fatalf("read %d bytes without error", len(got))
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	// And the undamaged encrypted one reads fine.
	if got, err := read(t, s, "p1", raw(s, encrypted), dec); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("valid encrypted: %v", err)
	}
}

func TestOpenContext(t *testing.T) {
	s := newStore(t, Options{})
	id := NewID()
	put(t, s, id, mailText(200_000), nil)
	ctx, cancel := context.WithCancel(context.Background())
	rc, err := s.Open(ctx, "p1", id, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := rc.Read(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.ReadAll(rc); !errors.Is(err, context.Canceled) {
		t.Errorf("read after cancel: %v", err)
	}
	if err := rc.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := rc.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Open(ctx, "p1", id, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with cancelled ctx: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p := func(name, sub string) Partition { return Partition{Name: name, Path: filepath.Join(dir, sub)} }
	tests := []struct {
		name string
		opts Options
	}{
		{"no partitions", Options{}},
		{"duplicate names", Options{Partitions: []Partition{p("a", "x"), p("a", "y")}}},
		{"duplicate paths", Options{Partitions: []Partition{p("a", "x"), p("b", "x/.")}}},
		{"empty name", Options{Partitions: []Partition{p("", "x")}}},
		{"empty path", Options{Partitions: []Partition{{Name: "a"}}}},
		{"root is a file", Options{Partitions: []Partition{p("a", "file")}}},
		{"bad level", Options{Partitions: []Partition{p("a", "x")}, Level: zstd.SpeedBestCompression + 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.opts); err == nil {
				t.Fatal("New succeeded")
			}
		})
	}
	// Roots are created, nested, with mode 0700.
	root := filepath.Join(dir, "deep", "er", "root")
	s, err := New(Options{Partitions: []Partition{{Name: "a", Path: root}}, Level: zstd.SpeedBestCompression})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(root); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("root: %v, %v", fi, err)
	}
	if got := s.Partitions(); len(got) != 1 || got[0].Path != root {
		t.Errorf("Partitions() = %v", got)
	}
}

// TestConcurrentPuts hammers one leaf directory from many goroutines, so the
// directory creation and the pools are exercised under -race.
func TestConcurrentPuts(t *testing.T) {
	s := newStore(t, Options{}, "a", "b")
	enc, dec := ageCodec(t)
	const workers, each = 8, 10
	// Both partitions are on one file system, so which one a Put picks
	// depends on free space read at that instant: read from where it went.
	type placed struct{ id, part string }
	ids := make([][]placed, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := "abcdef" + NewID()[6:]
				var tr Transform
				if i%2 == 1 {
					tr = enc
				}
				info, err := s.Put(context.Background(), id, bytes.NewReader(mailText(5000+i)), tr)
				if err != nil {
					t.Error(err)
					return
				}
				ids[w] = append(ids[w], placed{id, info.Partition})
			}
		})
	}
	wg.Wait()
	for w := range workers {
		for i, pl := range ids[w] {
			id := pl.id
			wg.Go(func() {
				got, err := read(t, s, pl.part, id, dec)
				if err != nil || !bytes.Equal(got, mailText(5000+i)) {
					t.Errorf("%s: %v", id, err)
				}
			})
		}
	}
	wg.Wait()
	if n := countEntries(t, s); n != workers*each {
		t.Errorf("Walk found %d entries, want %d", n, workers*each)
	}
}

func BenchmarkPut4KB(b *testing.B) {
	for _, bc := range []struct {
		name   string
		noComp bool
		age    bool
	}{{"zstd", false, false}, {"raw", true, false}, {"zstd+age", false, true}} {
		b.Run(bc.name, func(b *testing.B) {
			s := newStore(b, Options{NoCompress: bc.noComp})
			var enc Transform
			if bc.age {
				enc, _ = ageCodec(b)
			}
			body := mailText(4096)
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := s.Put(context.Background(), NewID(), bytes.NewReader(body), enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpen4KB(b *testing.B) {
	for _, bc := range []struct {
		name   string
		noComp bool
		age    bool
	}{{"zstd", false, false}, {"raw", true, false}, {"zstd+age", false, true}} {
		b.Run(bc.name, func(b *testing.B) {
			s := newStore(b, Options{NoCompress: bc.noComp})
			var (
				enc Transform
				dec Unwrap
			)
			if bc.age {
				enc, dec = ageCodec(b)
			}
			body := mailText(4096)
			id := NewID()
			put(b, s, id, body, enc)
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				rc, err := s.Open(context.Background(), "p1", id, dec)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, rc); err != nil {
					b.Fatal(err)
				}
				rc.Close()
			}
		})
	}
}
