package server

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"basalt/store"
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
	s := c.SMTP
	if s.Hostname == "" || s.MXListen != "127.0.0.1:2525" || s.SubmissionListen != "127.0.0.1:2587" ||
		s.SubmissionsListen != "127.0.0.1:2465" || s.LMTPListen != "127.0.0.1:2424" || s.LMTPSocket != "" {
		t.Fatalf("smtp listener defaults: %+v", s)
	}
	if s.MaxRecipients != 100 || s.MaxConnections != 500 || s.MaxConnectionsPerIP != 20 || s.MaxMessagesPerConn != 100 ||
		s.MaxErrors != 10 || s.MaxLineLength != 2000 || s.ReadTimeout != 5*time.Minute || s.WriteTimeout != time.Minute ||
		s.AllowPlaintextAuth || s.QuotaPermanent {
		t.Fatalf("smtp limit defaults: %+v", s)
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
	if c.Auth.FailuresPerNet != 16 || c.Auth.SessionIdle != time.Hour || c.Maint.OrphanGrace != time.Hour ||
		c.Auth.FailuresPerAccount != 5 || c.Auth.FailuresPerAccountAll != 20 || c.Auth.BanTime != time.Minute ||
		c.Auth.MaxBan != 15*time.Minute || c.Auth.TrustFor != 720*time.Hour || c.Auth.LoginCache != 5*time.Minute {
		t.Fatalf("example config: %+v", c.Auth)
	}
	if c.Server.MemoryLimit != 0 {
		t.Fatalf("example config: memory_limit %d", c.Server.MemoryLimit)
	}
	if c.SMTP.MXListen != "127.0.0.1:2525" || c.SMTP.MaxErrors != 10 || c.SMTP.ReadTimeout != 5*time.Minute || c.TLS.CertFile != "" {
		t.Fatalf("example config: %+v %+v", c.SMTP, c.TLS)
	}
	def, err := LoadConfig("", "")
	if err != nil {
		t.Fatal(err)
	}
	if want := (store.HeaderLimits{MaxBytes: 102400, MaxFields: 1000}); def.Message != want || c.Message != want {
		t.Fatalf("[message]: default %+v, example %+v, want %+v", def.Message, c.Message, want)
	}
	o, err := LoadConfig(writeConfig(t, "[message]\nmax_header_bytes = 2048\nmax_header_fields = -1\n"), "")
	if err != nil || o.Message != (store.HeaderLimits{MaxBytes: 2048, MaxFields: -1}) {
		t.Fatalf("[message] set: %+v, %v", o.Message, err)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"[database]\ndriver = \"postgres\"\n", "neither sqlite nor mysql"},
		{"[database]\ndriver = \"mysql\"\n", "dsn: required"},
		{"[htttp]\nlisten = \"x\"\n", "unknown keys: htttp"},
		{"[log]\nlevel = \"loud\"\n", "log.level"},
		{"[maintenance]\norphan_grace = \"1s\"\n", "orphan_grace"},
		{"[storage]\ninline_max = 100000000\n", "storage.inline_max"},
		{"not toml", "read config"},
		{"[tls]\ncert_file = \"/x.pem\"\n", "cert_file and key_file"},
		{"[smtp]\nmax_line_length = 500\n", "max_line_length"},
		{"[smtp]\nmax_recipients = -1\n", "max_recipients"},
		{"[smtp]\nread_timeout = \"-1s\"\n", "read_timeout"},
		{"[server]\nmemory_limit = 1000\n", "server.memory_limit"},
		{"[server]\nmemory_limit = -2\n", "server.memory_limit"},
	} {
		_, err := LoadConfig(writeConfig(t, tc.body), "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %q: error %v, want it to mention %q", tc.body, err, tc.want)
		}
	}
}

// TestMemoryLimit: the runtime's soft memory limit is what the
// configuration says, the default when it says nothing, and GOMEMLIMIT's
// when that is set and the configuration says nothing.
func TestMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	for _, tc := range []struct {
		name  string
		limit int64
		env   string
		want  int64
	}{
		{"default", 0, "", DefaultMemoryLimit},
		{"configured", 256 << 20, "", 256 << 20},
		{"configured over GOMEMLIMIT", 256 << 20, "300MiB", 256 << 20},
		{"none", -1, "", math.MaxInt64},
		{"GOMEMLIMIT", 0, "300MiB", 123 << 20}, // left as the runtime had it
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOMEMLIMIT", tc.env)
			debug.SetMemoryLimit(123 << 20) // what the runtime took from GOMEMLIMIT, say
			if got := (ServerConfig{MemoryLimit: tc.limit}).ApplyMemoryLimit(); got != tc.want {
				t.Fatalf("limit %d: %d, want %d", tc.limit, got, tc.want)
			}
		})
	}
}
