package store

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Flags is a message's system flags as a bitmask. The bit values are
// magma's, so its status codes carry over.
type Flags uint32

// The flags.
const (
	FlagRecent     Flags = 2
	FlagSeen       Flags = 4
	FlagAnswered   Flags = 8
	FlagFlagged    Flags = 16
	FlagDeleted    Flags = 32
	FlagDraft      Flags = 64
	FlagSecure     Flags = 128
	FlagAppended   Flags = 256
	FlagHidden     Flags = 512
	FlagJunk       Flags = 1024
	FlagInfected   Flags = 2048
	FlagSpoofed    Flags = 4096
	FlagBlackholed Flags = 8192
	FlagPhishing   Flags = 16384
	FlagTagged     Flags = 32768
	FlagEncrypted  Flags = 65536
	allFlags             = 1<<17 - 2

	// ClientFlags are the flags a user's client may set and clear; the
	// rest record what the server found (encryption, filter verdicts)
	// and only the delivery path sets them.
	ClientFlags = FlagSeen | FlagAnswered | FlagFlagged | FlagDeleted | FlagDraft | FlagJunk | FlagHidden | FlagTagged
)

// Has reports whether every flag in g is set in f.
func (f Flags) Has(g Flags) bool { return f&g == g }

// FlagOp says how SetFlags combines the given flags with a message's own.
type FlagOp int

// Flag operations (RFC 9051 6.4.6: +FLAGS, -FLAGS, FLAGS).
const (
	FlagAdd FlagOp = iota
	FlagRemove
	FlagReplace
)

// maxKeywords bounds the keywords one message may carry.
const maxKeywords = 64

// normalizeKeywords checks keywords (IMAP atoms, RFC 9051 9: no spaces,
// parentheses, wildcards, quotes or backslashes, and not system flags)
// and returns them sorted without duplicates, comparing case-insensitively
// as IMAP does.
func normalizeKeywords(kws []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, k := range kws {
		if k == "" || len(k) > 100 || strings.HasPrefix(k, `\`) {
			return nil, fmt.Errorf("%w: keyword %q", ErrInvalid, k)
		}
		for _, r := range k {
			if r <= ' ' || r >= 0x7f || strings.ContainsRune(`(){%*"\]`, r) {
				return nil, fmt.Errorf("%w: keyword %q has a character IMAP does not allow", ErrInvalid, k)
			}
		}
		l := strings.ToLower(k)
		if !seen[l] {
			seen[l] = true
			out = append(out, k)
		}
	}
	if len(out) > maxKeywords {
		return nil, fmt.Errorf("%w: more than %d keywords", ErrInvalid, maxKeywords)
	}
	sort.Strings(out)
	return out, nil
}

func splitKeywords(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, " ")
}

// applyFlags returns the flags and keywords of a message after op; adding
// past the keyword limit is an error, never a silent loss of keywords.
func applyFlags(op FlagOp, cur Flags, curKW []string, f Flags, kws []string) (Flags, []string, error) {
	switch op {
	case FlagAdd:
		out, err := normalizeKeywords(append(append([]string{}, curKW...), kws...))
		if err != nil {
			return 0, nil, err
		}
		return cur | f, out, nil
	case FlagRemove:
		drop := map[string]bool{}
		for _, k := range kws {
			drop[strings.ToLower(k)] = true
		}
		var out []string
		for _, k := range curKW {
			if !drop[strings.ToLower(k)] {
				out = append(out, k)
			}
		}
		return cur &^ f, out, nil
	default:
		return f, kws, nil
	}
}

// UIDRange is an inclusive range of UIDs; Stop 0 means "the largest" (*).
type UIDRange struct{ Start, Stop uint32 }

// UIDSet is a set of UID ranges. A nil set means every message; an empty
// non-nil set means none.
type UIDSet []UIDRange

// dense reports whether a set of more than two ranges, none open-ended,
// lies within a span at most about twice the UIDs it names, and that span.
func (u UIDSet) dense() (lo, hi uint32, ok bool) {
	if len(u) <= 2 || len(u) > maxRanges {
		return 0, 0, false
	}
	var n uint64
	lo, hi = ^uint32(0), 0
	for _, r := range u {
		start, stop := r.Start, r.Stop
		if stop == 0 {
			return 0, 0, false
		}
		if stop < start {
			start, stop = stop, start
		}
		lo, hi = min(lo, start), max(hi, stop)
		n += uint64(stop-start) + 1
	}
	return lo, hi, uint64(hi-lo)+1 <= 2*n+64
}

// has reports whether uid is in the set ("*", Stop 0, is open-ended).
func (u UIDSet) has(uid uint32) bool {
	for _, r := range u {
		start, stop := r.Start, r.Stop
		if stop != 0 && stop < start {
			start, stop = stop, start
		}
		if uid >= start && (stop == 0 || uid <= stop) {
			return true
		}
	}
	return false
}

// maxRanges bounds the SQL one set may turn into.
const maxRanges = 2000

// rowFilter is a condition on the rows of one mailbox.
type rowFilter interface {
	sql() (string, []any, error)
}

// deletedOnly narrows a set to the messages that carry \Deleted.
type deletedOnly struct{ set UIDSet }

func (d deletedOnly) sql() (string, []any, error) {
	cond, args, err := d.set.sql()
	return cond + fmt.Sprintf(" AND (flags & %d) <> 0", FlagDeleted), args, err
}

// maxPrecheck is the most UIDs a set may span for a write to read its
// messages first, outside the transaction, to find whether it has anything
// to do.
const maxPrecheck = 1000

// span returns how many UIDs the set covers at most; an open range (n:*)
// or a nil set (all) counts as unbounded.
func (u UIDSet) span() uint64 {
	if u == nil {
		return math.MaxUint64
	}
	var n uint64
	for _, r := range u {
		if r.Stop == 0 {
			return math.MaxUint64
		}
		lo, hi := min(r.Start, r.Stop), max(r.Start, r.Stop)
		n += uint64(hi-lo) + 1
	}
	return n
}

// sql returns a condition on column uid and its arguments.
func (u UIDSet) sql() (string, []any, error) {
	if u == nil {
		return "", nil, nil
	}
	if len(u) == 0 {
		return " AND 1 = 0", nil, nil
	}
	if len(u) > maxRanges {
		return "", nil, fmt.Errorf("%w: more than %d UID ranges", ErrInvalid, maxRanges)
	}
	var b strings.Builder
	var args []any
	b.WriteString(" AND (")
	for i, r := range u {
		if i > 0 {
			b.WriteString(" OR ")
		}
		start, stop := r.Start, r.Stop
		if stop != 0 && stop < start {
			start, stop = stop, start
		}
		if stop == 0 {
			b.WriteString("uid >= ?")
			args = append(args, start)
		} else {
			b.WriteString("uid BETWEEN ? AND ?")
			args = append(args, start, stop)
		}
	}
	b.WriteString(")")
	return b.String(), args, nil
}
