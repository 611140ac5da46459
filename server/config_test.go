package server

import (
	"os"
	"path/filepath"
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
	if c.Auth.FailuresPerNet != 16 || c.Auth.SessionIdle != time.Hour || c.Maint.OrphanGrace != time.Hour {
		t.Fatalf("example config: %+v", c.Auth)
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
	} {
		_, err := LoadConfig(writeConfig(t, tc.body), "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %q: error %v, want it to mention %q", tc.body, err, tc.want)
		}
	}
}
