package store_test

import (
	"context"
	"errors"
	"testing"

	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

// TestRenameCase: renaming "Work" leaves "work/..." alone on every dialect.
func TestRenameCase(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		for _, n := range []string{"Work/a", "work/b"} {
			if _, err := a.CreateMailbox(ctx, n, ""); err != nil {
				t.Fatal(err)
			}
		}
		w, _ := a.MailboxByName(ctx, "Work")
		if err := a.RenameMailbox(ctx, w.ID, "Jobs"); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"Jobs/a", "work/b", "work"} {
			if _, err := a.MailboxByName(ctx, n); err != nil {
				t.Errorf("%s after rename: %v", n, err)
			}
		}
		if _, err := a.CreateMailbox(ctx, "Foo ", ""); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("trailing space: %v", err)
		}
	})
}
