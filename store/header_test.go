package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

func TestHeaderLimitsCheck(t *testing.T) {
	fields := func(n int, sep string) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "X-%d: v%s", i, sep)
		}
		return b.String()
	}
	l := store.HeaderLimits{MaxBytes: 1000, MaxFields: 10}
	for _, tc := range []struct {
		name, raw string
		l         store.HeaderLimits
		bad       bool
	}{
		{"ten fields", fields(10, "\r\n") + "\r\nbody", l, false},
		{"eleven fields", fields(11, "\r\n") + "\r\nbody", l, true},
		{"eleven fields, bare LF", fields(11, "\n") + "\nbody", l, true},
		{"folded lines are one field", "A: x\r\n y\r\n\tz\r\n" + fields(9, "\r\n") + "\r\n", l, false},
		{"fields in the body do not count", fields(2, "\r\n") + "\r\n" + fields(100, "\r\n"), l, false},
		{"no body, few fields", fields(5, "\r\n"), l, false},
		{"no empty line, many fields", fields(50, "\r\n"), l, true},
		{"one long line", "A: " + strings.Repeat("x", 2000) + "\r\n\r\n", l, true},
		{"a header of exactly the limit", "A: " + strings.Repeat("x", 995) + "\r\n\r\nbody", l, false},
		{"one byte over", "A: " + strings.Repeat("x", 996) + "\r\n\r\nbody", l, true},
		{"unterminated line of the limit", "A: " + strings.Repeat("x", 997), l, false},
		{"big body after a small header", "A: b\r\n\r\n" + strings.Repeat("x", 5000), l, false},
		{"no limits", fields(5000, "\r\n"), store.HeaderLimits{MaxBytes: -1, MaxFields: -1}, false},
		{"defaults", fields(1001, "\r\n"), store.HeaderLimits{}.WithDefaults(), true},
	} {
		err := tc.l.Check([]byte(tc.raw))
		if (err != nil) != tc.bad {
			t.Errorf("%s: %v, want refused %v", tc.name, err, tc.bad)
		}
		if err != nil && (!errors.Is(err, store.ErrHeaderTooLarge) || !errors.Is(err, store.ErrTooLarge)) {
			t.Errorf("%s: %v is not ErrHeaderTooLarge and ErrTooLarge", tc.name, err)
		}
	}
}

// TestAppendHeaderLimit: Append (IMAP APPEND, drafts, sent copies)
// refuses a header past the limits before parsing it, and stores nothing.
func TestAppendHeaderLimit(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		inbox := storetest.Inbox(t, a)
		var b strings.Builder
		for i := range store.DefaultMaxHeaderFields + 1 {
			fmt.Fprintf(&b, "X-%d: v\r\n", i)
		}
		raw := []byte(b.String() + "\r\nbody\r\n")
		if _, err := a.Append(context.Background(), inbox, raw, store.AppendOptions{}); !errors.Is(err, store.ErrHeaderTooLarge) {
			t.Fatalf("append of %d fields: %v, want ErrHeaderTooLarge", store.DefaultMaxHeaderFields+1, err)
		}
		if n := len(storetest.Messages(t, a, "INBOX")); n != 0 {
			t.Fatalf("%d messages stored", n)
		}
	})
}
