package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

// TestDomainCacheSeesOwnChanges: once AddDomain or DeleteDomain returns,
// lookups in the same process see the change, even while other lookups of
// the same name are running (one that read before the change must not
// cache what it read after the cache was cleared).
func TestDomainCacheSeesOwnChanges(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		ctx, cancel := context.WithCancel(context.Background())
		const name = "race.example"
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					_, _ = e.Store.DomainByName(ctx, name)
				}
			}()
		}
		defer func() { cancel(); wg.Wait() }()
		for i := range 100 {
			if _, err := e.Store.AddDomain(ctx, name); err != nil {
				t.Fatal(err)
			}
			if _, err := e.Store.DomainByName(ctx, name); err != nil {
				t.Fatalf("round %d: right after AddDomain: %v", i, err)
			}
			if err := e.Store.DeleteDomain(ctx, name); err != nil {
				t.Fatal(err)
			}
			if _, err := e.Store.DomainByName(ctx, name); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("round %d: right after DeleteDomain: %v", i, err)
			}
		}
	})
}
