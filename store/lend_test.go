package store_test

import (
	"testing"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
	"basalt/store/internal/spine"
)

// zeroOf is how code outside the store's tree could make a spine.Key
// without naming it: the zero value of a method's parameter type.
func zeroOf[K, R any](f func(*store.Store, K) R, s *store.Store) R {
	var k K
	return f(s, k)
}

// The lending methods answer a Key from spine.Lend alone; the zero Key,
// which any package can make, panics.
func TestLendNeedsKey(t *testing.T) {
	e := storetest.Open(t, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}, storetest.Options{})
	if e.Store.Spine(spine.Lend()) == nil {
		t.Fatal("no spine with a lent key")
	}
	for name, f := range map[string]func(){
		"zero key":          func() { e.Store.Spine(spine.Key{}) },
		"zero from generic": func() { zeroOf((*store.Store).Spine, e.Store) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: lent the spine", name)
				}
			}()
			f()
		}()
	}
}
