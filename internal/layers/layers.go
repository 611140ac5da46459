// Package layers states DESIGN.md's layers as a table and checks the
// module's import graph against it: `make vet` (and `make test`) run its
// test, which fails on an import that goes up, from one front end to
// another, or from a front end or what the front ends share to the
// store's backends.
//
// Two things the table says that the drawing in DESIGN.md does not:
// internal/testsupport ranks above the front ends, as its helpers start
// whole front ends for the tests of others; and only the packages
// themselves are checked, not their _test files, whose imports go where
// a test needs (a store test makes its users through session, an IMAP
// test wraps the cache in one that refuses to publish).
package layers

import (
	"fmt"
	"strings"
)

// Module is the module path the rules are written for.
const Module = "basalt"

// Rank is a layer: a package may import those of lower ranks (and, where
// same allows, of its own).
type Rank int

// The layers, top to bottom (DESIGN.md, Layout and layers).
const (
	Backend    Rank = 10 // crypt, store/sqldb, store/blob, store/cache
	Model      Rank = 20 // store and its model packages, message
	Service    Rank = 30 // delivery, session
	FrontShare Rank = 35 // what front ends share: the listener, SASL, the static assets
	FrontEnd   Rank = 40 // rpc, rest, templates, protocols/*
	TestSupp   Rank = 45 // internal/testsupport: builds whole stores for tests
	Root       Rank = 50 // server, the composition root
	Command    Rank = 60 // cmd/...
)

func (r Rank) String() string {
	switch r {
	case Backend:
		return "store backend"
	case Model:
		return "model"
	case Service:
		return "service"
	case FrontShare:
		return "front ends' shared"
	case FrontEnd:
		return "front end"
	case TestSupp:
		return "test support"
	case Root:
		return "composition root"
	case Command:
		return "command"
	}
	return fmt.Sprintf("rank(%d)", int(r))
}

// layers places the module's packages by path, relative to the module;
// the longest prefix that matches a package (itself or a folder above
// it) decides. A package none matches fails the check: a new one is
// placed here on purpose.
var layers = []struct {
	prefix string
	rank   Rank
}{
	// The module's root package holds the files that live at the root
	// (openapi.yaml, embedded) and imports nothing of the module's.
	{"", Model},
	{"crypt", Backend},
	{"store/sqldb", Backend},
	{"store/blob", Backend},
	{"store/cache", Backend},
	{"store", Model},
	// The store's sub-packages, one client each, on the store's spine
	// (store/internal/spine, which Go lets only the store's tree import).
	{"store/internal", Model},
	{"store/outbound", Model},
	{"store/webmail", Model},
	{"store/contacts", Model},
	{"store/admin", Model},
	{"store/signup", Model},
	{"message", Model},
	{"delivery", Service},
	{"session", Service},
	{"protocols/listener", FrontShare},
	{"protocols/saslserver", FrontShare},
	{"protocols", FrontEnd},
	{"rpc", FrontEnd},
	{"rest", FrontEnd},
	{"templates", FrontEnd},
	{"static", FrontShare},
	{"internal/testsupport", TestSupp},
	{"internal/layers", Backend}, // imports nothing of the module's
	{"server", Root},
	{"cmd", Command},
}

// RankOf returns the layer of a package of the module, given by import
// path, and whether it has one.
func RankOf(pkg string) (Rank, bool) {
	rel, ok := strings.CutPrefix(pkg, Module+"/")
	if pkg == Module {
		rel, ok = "", true
	}
	if !ok {
		return 0, false
	}
	best, rank := -1, Rank(0)
	for _, l := range layers {
		if (rel == l.prefix || strings.HasPrefix(rel, l.prefix+"/")) && len(l.prefix) > best {
			best, rank = len(l.prefix), l.rank
		}
	}
	return rank, best >= 0
}

// Check returns why the import of to by from breaks the layers, or nil.
// Imports from outside the module are not its business.
func Check(from, to string) error {
	if !strings.HasPrefix(to, Module+"/") && to != Module {
		return nil
	}
	rf, ok := RankOf(from)
	if !ok {
		return fmt.Errorf("%s has no layer: place it in internal/layers", from)
	}
	rt, ok := RankOf(to)
	if !ok {
		return fmt.Errorf("%s has no layer: place it in internal/layers", to)
	}
	switch {
	case from == Module+"/message" || strings.HasPrefix(from, Module+"/message/"):
		// MIME parsing and building stands alone, under the store.
		return fmt.Errorf("%s imports %s: message imports nothing of the module's", from, to)
	case rt == TestSupp && rf != TestSupp:
		return fmt.Errorf("%s imports %s: test support is for tests only", from, to)
	case rf < rt:
		return fmt.Errorf("%s (%s) imports %s (%s): imports go down the layers", from, rf, to, rt)
	case rf == FrontEnd && rt == FrontEnd:
		return fmt.Errorf("%s imports %s: front ends do not import each other", from, to)
	case (rf == FrontEnd || rf == FrontShare) && rt == Backend:
		// What the front ends share is front-end code: the listener, SASL
		// and the static assets reach storage through the store too.
		return fmt.Errorf("%s imports %s: a front end does not touch the store's backends (the store grows a method)", from, to)
	}
	return nil
}
