package blob

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Entry is a file found by Walk.
type Entry struct {
	Partition, ID string
	ModTime       time.Time
	// Temp marks a temp file: a Put in progress, or one that died. Only
	// remove temp files older than any Put could take.
	Temp bool
	Path string
}

// Walk calls fn for every blob and every temp file in every partition, in
// partition order and then path order, so a sweeper can find orphans. Files
// and directories that are not part of the layout are skipped. An error from
// fn stops the walk and is returned unchanged.
func (s *Store) Walk(ctx context.Context, fn func(Entry) error) error {
	for _, p := range s.parts {
		if err := s.walkPartition(ctx, p, fn); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) walkPartition(ctx context.Context, p *partition, fn func(Entry) error) error {
	l1, err := hexDirs(p.Path)
	if err != nil {
		return fmt.Errorf("walk partition %q: %w", p.Name, err)
	}
	for _, a := range l1 {
		l2, err := hexDirs(filepath.Join(p.Path, a))
		if err != nil {
			return fmt.Errorf("walk partition %q: %w", p.Name, err)
		}
		for _, b := range l2 {
			l3, err := hexDirs(filepath.Join(p.Path, a, b))
			if err != nil {
				return fmt.Errorf("walk partition %q: %w", p.Name, err)
			}
			for _, c := range l3 {
				if err := ctx.Err(); err != nil {
					return fmt.Errorf("walk partition %q: %w", p.Name, err)
				}
				if err := walkLeaf(p, a+b+c, filepath.Join(p.Path, a, b, c), fn); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// walkLeaf reports the blobs and temp files in one leaf directory whose
// names belong there (their id starts with prefix).
func walkLeaf(p *partition, prefix, dir string, fn func(Entry) error) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("walk partition %q: %w", p.Name, err)
	}
	for _, de := range des {
		if !de.Type().IsRegular() {
			continue
		}
		name := de.Name()
		id, temp := name, false
		if rest, ok := strings.CutPrefix(name, tempPrefix); ok {
			id, _, ok = strings.Cut(rest, "-")
			if !ok {
				continue
			}
			temp = true
		}
		if !validID(id) || !strings.HasPrefix(id, prefix) {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed since ReadDir, e.g. a Put's temp file
			}
			return fmt.Errorf("walk partition %q: %w", p.Name, err)
		}
		e := Entry{Partition: p.Name, ID: id, ModTime: fi.ModTime(), Temp: temp, Path: filepath.Join(dir, name)}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// hexDirs lists the subdirectories of dir named by two lowercase hex digits,
// sorted. A missing dir has none.
func hexDirs(dir string) ([]string, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []string
	for _, de := range des {
		n := de.Name()
		if de.IsDir() && len(n) == 2 && isLowerHex(n[0]) && isLowerHex(n[1]) {
			out = append(out, n)
		}
	}
	return out, nil
}

func isLowerHex(c byte) bool { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') }

// Remove deletes a file reported by Walk, blob or temp. The entry is checked
// against the layout so a forged Entry cannot delete anything else. A file
// that is already gone is not an error.
func (s *Store) Remove(ctx context.Context, e Entry) error {
	if !e.Temp {
		return s.Delete(ctx, e.Partition, e.ID)
	}
	if !validID(e.ID) {
		return fmt.Errorf("remove temp file %q: %w", e.Path, ErrInvalidID)
	}
	p, err := s.partition(e.Partition)
	if err != nil {
		return fmt.Errorf("remove temp file %q: %w", e.Path, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("remove temp file %q: %w", e.Path, err)
	}
	path := filepath.Clean(e.Path)
	if filepath.Dir(path) != p.dir(e.ID) || !strings.HasPrefix(filepath.Base(path), tempPrefix+e.ID+"-") {
		return fmt.Errorf("remove temp file %q: not a temp file of blob %s in partition %q", e.Path, e.ID, e.Partition)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove temp file: %w", err)
	}
	return nil
}
