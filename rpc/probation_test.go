package rpc

import (
	"context"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport/storetest"
	"basalt/session"
	"basalt/store"
	"basalt/store/outbound"
)

// TestProbationSendLimit: a new account on probation (the site's
// registration) sends no more a day through the webmail than its
// probation allows, though its plan allows more; an account whose
// probation is over sends its plan's share.
func TestProbationSendLimit(t *testing.T) {
	fx := newFixture(t, sqlite(t), fixtureOptions{limits: store.Limits{DailySendBytes: 1 << 20}})
	ctx := context.Background()
	if _, err := fx.env.Store.AddDomain(ctx, "example.org"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr  string
		until time.Time
		both  bool // whether the second message goes too
	}{
		{"newbie@example.org", time.Now().Add(24 * time.Hour), false},
		{"veteran@example.org", time.Now().Add(-time.Minute), true},
	} {
		if _, err := fx.env.Session.CreateUser(ctx, session.NewUser{Address: tc.addr, Password: storetest.Password,
			UserOptions: store.UserOptions{ProbationUntil: tc.until.Unix(), ProbationSendBytes: 3000}}); err != nil {
			t.Fatal(err)
		}
		c := fx.client(t)
		c.login(tc.addr, storetest.Password)
		var meta metaResult
		c.must("meta", nil, &meta)
		if want := map[bool]int64{false: 3000, true: 1 << 20}[tc.both]; meta.Limits.DailySendBytes != want {
			t.Errorf("%s: meta says %d bytes a day, want %d", tc.addr, meta.Limits.DailySendBytes, want)
		}
		before, _ := outbound.New(fx.env.Store).Entries(ctx, 100)
		send := func() *testError {
			var cp composeResult
			c.must("messages.compose", nil, &cp)
			_, e := c.call("messages.send", map[string]any{"composeID": cp.ComposeID, "to": []string{"friend@elsewhere.example"},
				"subject": "hello", "body": map[string]any{"text": strings.Repeat("0123456789abcdef\n", 100)}})
			return e
		}
		if e := send(); e != nil {
			t.Fatalf("%s: first message: %+v", tc.addr, e)
		}
		e := send()
		if tc.both && e != nil {
			t.Fatalf("%s: second message: %+v", tc.addr, e)
		}
		// Refused for its daily limit: as "dailyLimit", or as the
		// recipient's temporary refusal that names it.
		if !tc.both && (e == nil || e.Data.Type != "dailyLimit" && (len(e.Data.Recipients) != 1 || !strings.Contains(e.Data.Recipients[0].Reason, "Daily limit"))) {
			t.Fatalf("%s: second message over the probation's limit: %+v", tc.addr, e)
		}
		after, _ := outbound.New(fx.env.Store).Entries(ctx, 100)
		if want := map[bool]int{false: 1, true: 2}[tc.both]; len(after)-len(before) != want {
			t.Fatalf("%s: %d messages queued, want %d", tc.addr, len(after)-len(before), want)
		}
	}
}
