package rpc

import (
	"context"
	"strings"
	"testing"

	"basalt/internal/testsupport/storetest"
)

// TestContactsSuggest: completion draws on the address book and on the
// people the user has sent to, the most used first, by address, name or a
// word of the name.
func TestContactsSuggest(t *testing.T) {
	forEachBackend(t, fixtureOptions{}, func(t *testing.T, fx *fixture) {
		alice, _ := fx.user(t, "alice@example.org", false)
		fx.user(t, "bob@example.org", false)
		for range 2 {
			alice.must("messages.send", map[string]any{"composeID": alice.compose(), "to": []string{"Bob Builder <bob@example.org>"}, "subject": "x"}, nil)
		}
		alice.must("messages.send", map[string]any{"composeID": alice.compose(), "to": []string{"carol@remote.test"}, "cc": []string{"BOB@example.org"}, "subject": "y"}, nil)
		alice.must("contacts.add", map[string]any{"name": "Carla Contact", "emails": []map[string]any{{"value": "carla@example.net"}}}, nil)
		got := func(prefix string) []suggestion {
			var r suggestResult
			alice.must("contacts.suggest", map[string]any{"prefix": prefix}, &r)
			return r.Suggestions
		}
		if s := got("b"); len(s) != 1 || s[0].Address != "bob@example.org" || s[0].Uses != 3 || s[0].Name != "Bob Builder" || s[0].Display != `"Bob Builder" <bob@example.org>` {
			t.Errorf("b: %+v", s)
		}
		if s := got("build"); len(s) != 1 || s[0].Address != "bob@example.org" {
			t.Errorf("build: %+v", s)
		}
		if s := got("CAR"); len(s) != 2 || s[0].Address != "carol@remote.test" || s[0].Uses != 1 || s[1].Address != "carla@example.net" || !s[1].Contact {
			t.Errorf("car: %+v", s)
		}
		if s := got("zz"); len(s) != 0 {
			t.Errorf("zz: %+v", s)
		}
		var r suggestResult
		alice.must("contacts.suggest", map[string]any{"prefix": "c", "limit": 1}, &r)
		if len(r.Suggestions) != 1 {
			t.Errorf("limit 1: %+v", r)
		}
	})
}

// TestIdentities: one identity made from settings.identity until others
// are saved; an identity's address must be the user's; messages.send
// sends as the identity named, or the default one.
func TestIdentities(t *testing.T) {
	fx := newFixture(t, sqlite(t), fixtureOptions{})
	alice, aliceAuth := fx.user(t, "alice@example.org", false)
	if _, err := fx.env.Store.AddAlias(context.Background(), "sales@example.org", "alice@example.org"); err != nil {
		t.Fatal(err)
	}
	alice.must("settings.identity", map[string]any{"displayName": "Alice A", "signature": "-- \nAlice"}, nil)
	var ir identitiesResult
	alice.must("identities.list", nil, &ir)
	if len(ir.Identities) != 1 || ir.Identities[0].ID != "primary" || ir.Identities[0].Name != "Alice A" || ir.Identities[0].Address != "alice@example.org" ||
		ir.Identities[0].SignatureText != "-- \nAlice" || !ir.Identities[0].Default {
		t.Fatalf("made-up identity: %+v", ir)
	}
	alice.fail("identities.save", map[string]any{"identity": map[string]any{"address": "boss@example.org"}}, CodeForbiddenFrom, "forbiddenFrom")
	alice.must("identities.save", map[string]any{"identity": map[string]any{"name": "Sales", "address": "Sales@Example.org",
		"signatureText": "Sales team", "signatureHTML": `<p onclick="x()">Sales <b>team</b></p><script>alert(1)</script>`, "default": true}}, &ir)
	if len(ir.Identities) != 1 || ir.Identities[0].Address != "sales@example.org" || !ir.Identities[0].Default ||
		ir.Identities[0].SignatureHTML != "<p>Sales <b>team</b></p>" {
		t.Fatalf("saved: %+v", ir)
	}
	salesID := ir.Identities[0].ID
	alice.must("identities.save", map[string]any{"identity": map[string]any{"name": "Alice", "address": "alice@example.org"}}, &ir)
	if len(ir.Identities) != 2 || !ir.Identities[0].Default || ir.Identities[1].Default {
		t.Fatalf("two: %+v", ir)
	}
	aliceID := ir.Identities[1].ID
	aa := fx.env.Account(aliceAuth)
	alice.must("messages.send", map[string]any{"composeID": alice.compose(), "to": []string{"alice@example.org"}, "subject": "default"}, nil)
	alice.must("messages.send", map[string]any{"composeID": alice.compose(), "to": []string{"alice@example.org"}, "subject": "named", "identity": aliceID}, nil)
	sent := storetest.Messages(t, aa, "Sent")
	if len(sent) != 2 || !strings.Contains(sent[0], `From: "Sales" <sales@example.org>`) || !strings.Contains(sent[1], `From: "Alice" <alice@example.org>`) {
		t.Fatalf("sent: %q", sent)
	}
	alice.fail("messages.send", map[string]any{"composeID": alice.compose(), "to": []string{"alice@example.org"}, "identity": "nope"}, CodeNotFound, "notFound")
	alice.must("identities.remove", map[string]any{"id": salesID}, &ir)
	if len(ir.Identities) != 1 || ir.Identities[0].ID != aliceID || !ir.Identities[0].Default {
		t.Fatalf("after remove: %+v", ir)
	}
	alice.fail("identities.remove", map[string]any{"id": salesID}, CodeNotFound, "notFound")
}
