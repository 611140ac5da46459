package cache

import (
	"fmt"
	"os"
	"testing"

	"basalt/internal/testsupport"
)

// BenchmarkGetSet measures single-key Set and Get, sequential and from
// parallel goroutines, on both implementations.
func BenchmarkGetSet(b *testing.B) {
	for _, kind := range []string{"memory", "redis"} {
		b.Run(kind, func(b *testing.B) {
			var addr, prefix string
			if kind == "redis" {
				if os.Getenv(testsupport.EnvRedisAddr) == "" {
					b.Skip("Redis not configured")
				}
				addr, prefix = testsupport.Redis(b)
			}
			c := newCache(b, kind, addr, prefix)
			ctx := testContext(b)
			value := make([]byte, 512) // about a user record
			const keys = 1024
			for i := range keys {
				if err := c.Set(ctx, fmt.Sprint("k", i), Entry{Value: value, Serial: 1}, 0); err != nil {
					b.Fatalf("Set: %v", err)
				}
			}

			b.Run("Set", func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					if err := c.Set(ctx, fmt.Sprint("k", i%keys), Entry{Value: value, Serial: uint64(i)}, 0); err != nil {
						b.Fatalf("Set: %v", err)
					}
				}
			})
			b.Run("Get", func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					if _, ok, err := c.Get(ctx, fmt.Sprint("k", i%keys)); err != nil || !ok {
						b.Fatalf("Get = %v, %v", ok, err)
					}
				}
			})
			b.Run("GetParallel", func(b *testing.B) {
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						if _, ok, err := c.Get(ctx, fmt.Sprint("k", i%keys)); err != nil || !ok {
							b.Errorf("Get = %v, %v", ok, err)
							return
						}
						i++
					}
				})
			})
		})
	}
}
