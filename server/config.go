package server

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"basalt/crypt"
	"basalt/rest"
	"basalt/rpc"
	"basalt/session"
	"basalt/store"
	"basalt/store/blob"
	"basalt/store/sqldb"
	"basalt/templates"
)

// Config is the whole configuration; basalt.example.toml documents it.
type Config struct {
	DataDir  string        `toml:"data_dir"`
	Server   ServerConfig  `toml:"server"`
	Log      LogConfig     `toml:"log"`
	Database sqldb.Config  `toml:"database"`
	Storage  StorageConfig `toml:"storage"`
	Cache    CacheConfig   `toml:"cache"`
	HTTP     HTTPConfig    `toml:"http"`
	Auth     AuthConfig    `toml:"auth"`
	Limits   store.Limits  `toml:"limits"`
	// Message bounds what any message taken in (SMTP, LMTP, IMAP APPEND,
	// the webmail) may carry in its header.
	Message store.HeaderLimits `toml:"message"`
	Maint   MaintConfig        `toml:"maintenance"`
	SMTP    SMTPConfig         `toml:"smtp"`
	POP3    POP3Config         `toml:"pop3"`
	IMAP    IMAPConfig         `toml:"imap"`
	Queue   QueueConfig        `toml:"queue"`
	Milters []MilterConfig     `toml:"milter"`
	TLS     TLSConfig          `toml:"tls"`
	RPC     rpc.Config         `toml:"rpc"`
	API     rest.Config        `toml:"api"`
	// Site is the public site at / (package templates).
	Site templates.Config `toml:"site"`
}

// ServerConfig is about the process itself.
type ServerConfig struct {
	// MemoryLimit is the Go runtime's soft memory limit in bytes
	// (runtime/debug.SetMemoryLimit): near it the collector works harder
	// and returns freed memory to the system sooner, which matters after
	// bursts of argon2 hashes of 64 MiB each. 0: DefaultMemoryLimit, or
	// GOMEMLIMIT from the environment when that is set; -1: no limit.
	MemoryLimit int64 `toml:"memory_limit"`
}

// DefaultMemoryLimit is the soft memory limit when none is configured:
// well above what a node with thousands of idle connections uses (tens of
// MiB) plus a few argon2 computations at once, so it only comes into play
// after bursts, and far from making the collector run without pause.
const DefaultMemoryLimit = 1 << 30

// ApplyMemoryLimit sets the runtime's soft memory limit as configured and
// returns what it is now (math.MaxInt64: none).
func (c ServerConfig) ApplyMemoryLimit() int64 {
	switch {
	case c.MemoryLimit > 0:
		debug.SetMemoryLimit(c.MemoryLimit)
	case c.MemoryLimit == 0 && os.Getenv("GOMEMLIMIT") == "":
		debug.SetMemoryLimit(DefaultMemoryLimit)
	case c.MemoryLimit < 0:
		debug.SetMemoryLimit(math.MaxInt64)
	}
	return debug.SetMemoryLimit(-1) // reads it
}

// LogConfig sets the log level ("debug", "info", "warn", "error") and
// format ("text" or "json").
type LogConfig struct {
	Level  string `toml:"level"`
	Format string `toml:"format"`
}

// StorageConfig places message files.
type StorageConfig struct {
	Partitions []blob.Partition `toml:"partitions"`
	NoCompress bool             `toml:"no_compress"`
	// InlineMax is the largest message (bytes) kept in the database rather
	// than in a file; 0: 64 KiB, negative: every message in a file.
	InlineMax int64 `toml:"inline_max"`
}

// CacheConfig points at Redis; with no address the cache is in-process.
type CacheConfig struct {
	RedisAddr     string `toml:"redis_addr"`
	RedisUsername string `toml:"redis_username"`
	RedisPassword string `toml:"redis_password"`
	RedisDB       int    `toml:"redis_db"`
	RedisTLS      bool   `toml:"redis_tls"`
	Prefix        string `toml:"prefix"`
	MaxEntries    int    `toml:"max_entries"`
}

// HTTPConfig is the HTTP core's listener.
type HTTPConfig struct {
	Listen string `toml:"listen"`
	// MetricsListen serves /metrics on a listener of its own; empty: none.
	MetricsListen   string        `toml:"metrics_listen"`
	ShutdownTimeout time.Duration `toml:"shutdown_timeout"`
}

// AuthConfig tunes password hashing, login throttling and web sessions.
type AuthConfig struct {
	session.Config
	Argon2Time      uint32 `toml:"argon2_time"`
	Argon2MemoryKiB uint32 `toml:"argon2_memory_kib"`
	Argon2Threads   uint8  `toml:"argon2_threads"`
}

// QueueConfig is the outbound queue: where mail for other domains is
// relayed, and how it and local deliveries that must wait (bounces, a full
// mailbox) are retried. With no smarthost, mail for other domains is
// refused.
type QueueConfig struct {
	Smarthost    string          `toml:"smarthost"` // host:port
	StartTLS     bool            `toml:"starttls"`
	ImplicitTLS  bool            `toml:"implicit_tls"`
	TLSInsecure  bool            `toml:"tls_insecure"`
	Username     string          `toml:"username"`
	Password     string          `toml:"password"`
	Concurrency  int             `toml:"concurrency"`
	Backoff      []time.Duration `toml:"backoff"`
	MaxAge       time.Duration   `toml:"max_age"`
	PollInterval time.Duration   `toml:"poll_interval"`
	Timeout      time.Duration   `toml:"timeout"`
}

// MilterConfig is one milter in the filter chain, in the order given.
type MilterConfig struct {
	Network  string        `toml:"network"` // "tcp" (default) or "unix"
	Address  string        `toml:"address"`
	Timeout  time.Duration `toml:"timeout"`
	FailOpen bool          `toml:"fail_open"`
}

// MaintConfig schedules the periodic cleanup.
type MaintConfig struct {
	Interval    time.Duration `toml:"interval"`     // default 1h
	OrphanGrace time.Duration `toml:"orphan_grace"` // default 1h
	CounterDays int64         `toml:"counter_days"` // default 7
}

// DefaultMaxMessageSize is the default receive and send size limit.
const DefaultMaxMessageSize = 50 << 20

// DefaultDataDir is where an unconfigured Basalt keeps its state.
const DefaultDataDir = "./data"

// LoadConfig reads path (none: all defaults) and fills in every default.
// A non-empty dataDir overrides the file's data_dir.
func LoadConfig(path, dataDir string) (Config, error) {
	var c Config
	if path != "" {
		md, err := toml.DecodeFile(path, &c)
		if err != nil {
			return Config{}, fmt.Errorf("read config %s: %w", path, err)
		}
		if und := md.Undecoded(); len(und) > 0 {
			keys := make([]string, len(und))
			for i, k := range und {
				keys[i] = k.String()
			}
			return Config{}, fmt.Errorf("read config %s: unknown keys: %s", path, strings.Join(keys, ", "))
		}
	}
	if dataDir != "" {
		c.DataDir = dataDir
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.Database.Driver == "" {
		c.Database.Driver = sqldb.SQLite
	}
	if c.Database.Driver == sqldb.SQLite && c.Database.DSN == "" {
		c.Database.DSN = filepath.Join(c.DataDir, "basalt.db")
	}
	if len(c.Storage.Partitions) == 0 {
		c.Storage.Partitions = []blob.Partition{{Name: "default", Path: filepath.Join(c.DataDir, "blobs")}}
	}
	if c.Cache.Prefix == "" {
		c.Cache.Prefix = "basalt:"
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = "127.0.0.1:8080"
	}
	if c.HTTP.ShutdownTimeout == 0 {
		c.HTTP.ShutdownTimeout = 15 * time.Second
	}
	// Mail of unbounded size is never what an operator wants; 50 MiB is
	// what the large providers accept.
	if c.Limits.MaxRecvSize == 0 {
		c.Limits.MaxRecvSize = DefaultMaxMessageSize
	}
	if c.Limits.MaxSendSize == 0 {
		c.Limits.MaxSendSize = DefaultMaxMessageSize
	}
	c.Message = c.Message.WithDefaults()
	def := crypt.DefaultKDF()
	if c.Auth.Argon2Time == 0 {
		c.Auth.Argon2Time = def.Time
	}
	if c.Auth.Argon2MemoryKiB == 0 {
		c.Auth.Argon2MemoryKiB = def.MemoryKiB
	}
	if c.Auth.Argon2Threads == 0 {
		c.Auth.Argon2Threads = def.Threads
	}
	c.Auth.KDF = crypt.KDFParams{Time: c.Auth.Argon2Time, MemoryKiB: c.Auth.Argon2MemoryKiB, Threads: c.Auth.Argon2Threads}
	if c.Maint.Interval == 0 {
		c.Maint.Interval = time.Hour
	}
	if c.Maint.OrphanGrace == 0 {
		c.Maint.OrphanGrace = time.Hour
	}
	if c.Maint.CounterDays == 0 {
		c.Maint.CounterDays = 7
	}
	c.Site.MinPassword = c.Auth.MinPassword
	c.Site = c.Site.WithDefaults()
	c.SMTP.setDefaults()
	c.POP3.setDefaults()
	c.IMAP.setDefaults()
	return c, c.validate()
}

func (c Config) validate() error {
	var errs []error
	switch c.Database.Driver {
	case sqldb.SQLite, sqldb.MySQL:
	default:
		errs = append(errs, fmt.Errorf("database.driver: %q is neither sqlite nor mysql", c.Database.Driver))
	}
	if c.Database.Driver == sqldb.MySQL && c.Database.DSN == "" {
		errs = append(errs, errors.New("database.dsn: required for mysql"))
	}
	// MySQL keeps inline messages in a MEDIUMBLOB (migration 0008); and
	// past a few MiB a file costs less than the rows' copies in the log.
	if c.Storage.InlineMax > maxInlineMax {
		errs = append(errs, fmt.Errorf("storage.inline_max: at most %d bytes (-1 keeps every message in a file)", maxInlineMax))
	}
	if c.Maint.OrphanGrace < time.Minute {
		errs = append(errs, errors.New("maintenance.orphan_grace: must be at least a minute, longer than any delivery takes"))
	}
	if c.Server.MemoryLimit != 0 && c.Server.MemoryLimit != -1 && c.Server.MemoryLimit < 64<<20 {
		errs = append(errs, errors.New("server.memory_limit: at least 64 MiB (67108864), 0 for the default or -1 for none"))
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.SMTP.validate(), c.POP3.validate(), c.IMAP.validate(), c.TLS.validate(), c.Site.Validate())
	for i, m := range c.Milters {
		if m.Address == "" {
			errs = append(errs, fmt.Errorf("milter %d: address is required", i+1))
		}
		if m.Network != "" && m.Network != "tcp" && m.Network != "unix" {
			errs = append(errs, fmt.Errorf("milter %d: network %q is neither tcp nor unix", i+1, m.Network))
		}
	}
	return errors.Join(errs...)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if s == "" {
		return slog.LevelInfo, nil
	}
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log.level: %w", err)
	}
	return l, nil
}

// NewLogger returns the logger the configuration asks for, writing to stderr.
func (c Config) NewLogger() *slog.Logger {
	level, _ := parseLevel(c.Log.Level)
	opts := &slog.HandlerOptions{Level: level}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// maxInlineMax bounds storage.inline_max.
const maxInlineMax = 8 << 20

// orDefault sets *v to d when it holds its type's zero value: a setting
// left out of the configuration.
func orDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}
