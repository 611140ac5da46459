package rpc

import (
	"testing"
)

// TestAuthUnavailable: when the store cannot answer a login, auth says
// the service is unavailable (retry later), as other calls do, not that
// the server has a bug (-32603).
func TestAuthUnavailable(t *testing.T) {
	fx := newFixture(t, sqlite(t), fixtureOptions{})
	fx.env.NewUser(t, "alice@example.org", false)
	c := fx.client(t)
	if err := fx.env.DB.Close(); err != nil {
		t.Fatal(err)
	}
	c.fail("auth", map[string]any{"username": "alice@example.org", "password": "correct horse battery staple"}, CodeUnavailable, "")
}
