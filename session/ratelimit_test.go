package session_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"basalt/crypt"
	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/session"
)

// TestAdmitCall: a web session's calls are counted per minute across
// nodes (two services over one Redis share the count), the one over the
// limit is refused with the time left in the window, and while Redis is
// down calls are counted on the node alone instead of refused.
func TestAdmitCall(t *testing.T) {
	ctx := context.Background()
	rs := testsupport.StartRedis(t)
	e := storetest.Open(t, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)},
		storetest.Options{RedisAddr: rs.Addr, RedisPrefix: "t:"})
	logs := &testsupport.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	a := session.New(e.Store, e.Cache, session.Config{KDF: crypt.TestKDF()}, log)
	b := session.New(e.Store, e.Cache, session.Config{KDF: crypt.TestKDF()}, log)

	const limit = 6
	var rl *session.RateLimitError
	// The window may turn over during a round: then its count starts
	// again, and the round is run again with a new session.
	for round := 0; ; round++ {
		id := fmt.Sprintf("sess1-%d", round)
		window := time.Now().Unix() / 60
		for i := range limit {
			svc := a
			if i%2 == 1 {
				svc = b
			}
			if err := svc.AdmitCall(ctx, id, limit); err != nil {
				t.Fatalf("call %d of %d: %v", i+1, limit, err)
			}
		}
		err := b.AdmitCall(ctx, id, limit)
		if time.Now().Unix()/60 != window && round < 3 {
			continue
		}
		if !errors.As(err, &rl) || !errors.Is(err, session.ErrRateLimited) || rl.RetryAfter <= 0 || rl.RetryAfter > time.Minute {
			t.Fatalf("call %d over two nodes: %v, want a RateLimitError within a minute", limit+1, err)
		}
		break
	}
	if err := a.AdmitCall(ctx, "sess2", limit); err != nil {
		t.Fatalf("another session's first call: %v", err)
	}

	rs.Stop()
	for round := 0; ; round++ {
		id := fmt.Sprintf("sess3-%d", round)
		window := time.Now().Unix() / 60
		for i := range limit {
			if err := a.AdmitCall(ctx, id, limit); err != nil {
				t.Fatalf("call %d while Redis is down: %v", i+1, err)
			}
		}
		err := a.AdmitCall(ctx, id, limit)
		if time.Now().Unix()/60 != window && round < 3 {
			continue
		}
		if !errors.As(err, &rl) {
			t.Fatalf("call %d while Redis is down: %v, want it counted locally and refused", limit+1, err)
		}
		break
	}
	if n := strings.Count(logs.String(), "webmail call rate: the shared cache failed"); n != 1 {
		t.Fatalf("%d warnings about the shared cache, want 1:\n%s", n, logs.String())
	}
}
