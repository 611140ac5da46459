package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "basalt.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := LoadConfig("", "")
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != DefaultDataDir || c.Database.Driver != "sqlite" || c.Database.DSN != filepath.Join(DefaultDataDir, "basalt.db") {
		t.Fatalf("database defaults: %+v", c.Database)
	}
	if c.HTTP.Listen != "127.0.0.1:8080" || c.Cache.RedisAddr != "" || len(c.Storage.Partitions) != 1 {
		t.Fatalf("defaults: %+v", c)
	}
	if c.Limits.MaxRecvSize != DefaultMaxMessageSize || c.Auth.KDF.MemoryKiB == 0 {
		t.Fatalf("limits/kdf defaults: %+v %+v", c.Limits, c.Auth.KDF)
	}
	d, err := LoadConfig("", "/srv/x")
	if err != nil || d.Database.DSN != "/srv/x/basalt.db" || d.Storage.Partitions[0].Path != "/srv/x/blobs" {
		t.Fatalf("-data: %+v, %v", d, err)
	}
}

// TestExampleConfig: the shipped example parses and says what it documents.
func TestExampleConfig(t *testing.T) {
	c, err := LoadConfig(filepath.Join("..", "basalt.example.toml"), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.FailuresPerNet != 16 || c.Auth.SessionIdle != time.Hour || c.Maint.OrphanGrace != time.Hour {
		t.Fatalf("example config: %+v", c.Auth)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"[database]\ndriver = \"postgres\"\n", "neither sqlite nor mysql"},
		{"[database]\ndriver = \"mysql\"\n", "dsn: required"},
		{"[htttp]\nlisten = \"x\"\n", "unknown keys: htttp"},
		{"[log]\nlevel = \"loud\"\n", "log.level"},
		{"[maintenance]\norphan_grace = \"1s\"\n", "orphan_grace"},
		{"not toml", "read config"},
	} {
		_, err := LoadConfig(writeConfig(t, tc.body), "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %q: error %v, want it to mention %q", tc.body, err, tc.want)
		}
	}
}
