package testsupport

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"
)

// Environment variables written by scripts/testenv.sh.
const (
	EnvMySQLDSN  = "BASALT_TEST_MYSQL_DSN"
	EnvRedisAddr = "BASALT_TEST_REDIS_ADDR"
)

// missing fails the test under CI and skips it elsewhere.
func missing(t testing.TB, what, env string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required under CI but %s is not set (run the tests with `make test`)", what, env)
	}
	t.Skipf("%s not configured: set %s or run `make test`", what, env)
}

// RandomName returns prefix followed by 12 random hex digits.
func RandomName(prefix string) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return prefix + hex.EncodeToString(b[:])
}

// MySQLDSN creates an empty database on the test MariaDB server and returns
// a DSN for it; the database is dropped when the test ends.
func MySQLDSN(t testing.TB) string {
	t.Helper()
	root := os.Getenv(EnvMySQLDSN)
	if root == "" {
		missing(t, "MariaDB", EnvMySQLDSN)
	}
	cfg, err := mysql.ParseDSN(root)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvMySQLDSN, err)
	}
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatalf("open MariaDB: %v", err)
	}
	name := RandomName("t_")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		admin.Close()
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
		admin.Close()
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}

// MySQLAdmin returns a connection pool to the test MariaDB server with no
// database selected, for tests that act on the server itself (killing
// connections, for one). It is closed when the test ends.
func MySQLAdmin(t testing.TB) *sql.DB {
	t.Helper()
	root := os.Getenv(EnvMySQLDSN)
	if root == "" {
		missing(t, "MariaDB", EnvMySQLDSN)
	}
	db, err := sql.Open("mysql", root)
	if err != nil {
		t.Fatalf("open MariaDB: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// SQLiteDSN returns the path of a fresh SQLite database file in the test's
// temporary directory.
func SQLiteDSN(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "basalt.db")
}

// Redis returns the address of the test Redis server and a key prefix that
// belongs to this test alone; keys under the prefix are deleted when the
// test ends.
func Redis(t testing.TB) (addr, prefix string) {
	t.Helper()
	addr = os.Getenv(EnvRedisAddr)
	if addr == "" {
		missing(t, "Redis", EnvRedisAddr)
	}
	prefix = RandomName("t") + ":"
	t.Cleanup(func() {
		c := redis.NewClient(&redis.Options{Addr: addr})
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 500).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
	return addr, prefix
}

// Database names one SQL backend a test runs against.
type Database struct {
	Driver string // "sqlite" or "mysql"
	DSN    string
}

// ForEachDatabase runs f as a subtest on each SQL backend.
func ForEachDatabase(t *testing.T, f func(t *testing.T, db Database)) {
	t.Helper()
	for _, d := range []string{"sqlite", "mysql"} {
		t.Run(d, func(t *testing.T) {
			var db Database
			switch d {
			case "sqlite":
				db = Database{Driver: d, DSN: SQLiteDSN(t)}
			case "mysql":
				if os.Getenv(EnvMySQLDSN) == "" {
					missing(t, "MariaDB", EnvMySQLDSN)
				}
				db = Database{Driver: d, DSN: MySQLDSN(t)}
			}
			f(t, db)
		})
	}
}

// ForEachCache runs f as a subtest with "memory" and with "redis", giving
// the Redis address and a private key prefix for the latter.
func ForEachCache(t *testing.T, f func(t *testing.T, kind, addr, prefix string)) {
	t.Helper()
	t.Run("memory", func(t *testing.T) { f(t, "memory", "", "") })
	t.Run("redis", func(t *testing.T) {
		addr, prefix := Redis(t)
		f(t, "redis", addr, prefix)
	})
}
