package cache_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/store/cache"
)

// TestRedisLogger: go-redis's lines, a flood of them while Redis is away,
// reach the configured log as a trickle that says what it held back.
func TestRedisLogger(t *testing.T) {
	ctx := context.Background()
	logs := &testsupport.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	every := 300 * time.Millisecond
	l := &cache.RedisLogger{Log: log, Every: every}
	for i := range 100 {
		l.Printf(ctx, "dial %d failed", i)
	}
	if n := strings.Count(logs.String(), "\n"); n != 1 || !strings.Contains(logs.String(), "dial 0 failed") {
		t.Fatalf("100 lines at once logged as:\n%s", logs.String())
	}
	time.Sleep(every)
	l.Printf(ctx, "dial again")
	if !strings.Contains(logs.String(), "suppressed=99") || !strings.Contains(logs.String(), "component=redis") {
		t.Fatalf("the line after the pause:\n%s", logs.String())
	}

	// Installed, it takes go-redis's own lines: a stopped server's dial
	// errors come here, and not many of them.
	rs := testsupport.StartRedis(t)
	c, err := cache.NewRedis(ctx, cache.RedisOptions{Addr: rs.Addr, Prefix: "t:", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	installed := &testsupport.LogBuffer{}
	cache.SetRedisLogger(slog.New(slog.NewTextHandler(installed, nil)), time.Hour)
	rs.Stop()
	for range 3 {
		c.Get(ctx, "k")
	}
	if n := strings.Count(installed.String(), "\n"); n != 1 || !strings.Contains(installed.String(), rs.Addr) {
		t.Fatalf("go-redis's lines while Redis is down, %d of them:\n%s", n, installed.String())
	}
}
