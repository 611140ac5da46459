package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"basalt/store/blob"
	"basalt/store/cache"
	"basalt/store/internal/spine"
	"basalt/store/sqldb"
)

// Errors callers branch on. They are wrapped with context; test with errors.Is.
var (
	ErrNotFound     = spine.ErrNotFound
	ErrExists       = errors.New("already exists")
	ErrOverQuota    = spine.ErrOverQuota
	ErrTooLarge     = errors.New("message exceeds the size limit")
	ErrDailyLimit   = spine.ErrDailyLimit
	ErrLocked       = errors.New("the user's key is not unlocked")
	ErrInvalid      = errors.New("invalid argument")
	ErrNotEmpty     = errors.New("not empty")
	ErrUnknownLocal = errors.New("no such local recipient")
)

// IsUnavailable reports whether err is a failure of what the store runs
// on rather than of the request: the database unreachable or not serving.
// It passes by itself, so front ends tell the client to try again later
// (SMTP 4xx, IMAP NO [UNAVAILABLE], JSON-RPC's unavailable code) rather
// than report a server bug.
func IsUnavailable(err error) bool { return sqldb.IsUnavailable(err) }

// IsNoSpace reports whether err is a full disk under the database or the
// message files (ENOSPC, a disk quota, SQLite's SQLITE_FULL): the server
// cannot take the message now and will when room is made (SMTP 452 4.3.1,
// RFC 3463 X.3.1 "mail system full").
func IsNoSpace(err error) bool { return sqldb.IsNoSpace(err) }

// Config wires a Store to its parts.
type Config struct {
	DB     *sqldb.DB
	Blobs  *blob.Store
	Cache  cache.Cache
	Logger *slog.Logger
	// Limits applies where neither a user nor its plan sets a limit.
	Limits Limits
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// InlineMax is the largest message, in bytes, kept in the database
	// with its rows rather than in a file of its own; 0 means
	// DefaultInlineMax, and a negative value keeps every message in a file.
	InlineMax int64
	// Header bounds a message's header (header.go); zero fields take
	// their defaults.
	Header HeaderLimits
	// Search holds the thresholds of a search's plans (findplan.go);
	// zero fields take their defaults.
	Search SearchTuning
}

// DefaultInlineMax keeps most mail (text, small attachments) in the
// database: a file costs an inode and its share of a sync, which on a busy
// server cost more than the message's bytes in the write-ahead log.
const DefaultInlineMax = 64 << 10

// Store is the storage service.
type Store struct {
	db    *sqldb.DB
	blobs *blob.Store
	cache cache.Cache
	// inlineMax is Config.InlineMax with its default.
	inlineMax int64
	// domains remembers recent domain lookups (domains.go).
	domains domainCache
	log     *slog.Logger
	limits  Limits
	header  HeaderLimits
	search  SearchTuning
	now     func() time.Time
	hooks   hooks
	group   groupCommit
	claims  claimLocks  // ClaimRecent
	files   *fileCaches // message files' metadata and small bodies (filecache.go)
	// localCache is set when the cache lives in this process only.
	localCache bool
	// watches fans change events out to this process's watchers (watch.go).
	watches watchHub
	// sp is what the store and its sub-packages write with.
	sp *spine.Spine
	// textWake wakes IndexPending: an append left it a text to index.
	textWake chan struct{}
	// textMu is held while pending texts are indexed (indexPending).
	textMu sync.Mutex
}

// New returns a Store over already-open parts. The database must be migrated.
func New(cfg Config) (*Store, error) {
	if cfg.DB == nil || cfg.Blobs == nil || cfg.Cache == nil {
		return nil, errors.New("store: database, blob store and cache are all required")
	}
	_, local := cfg.Cache.(*cache.Memory)
	s := &Store{db: cfg.DB, blobs: cfg.Blobs, cache: cfg.Cache, log: cfg.Logger, limits: cfg.Limits, now: cfg.Now, localCache: local, files: newFileCaches(),
		inlineMax: cfg.InlineMax, header: cfg.Header.WithDefaults(), search: cfg.Search, textWake: make(chan struct{}, 1)}
	if s.inlineMax == 0 {
		s.inlineMax = DefaultInlineMax
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	// Now reads s.now at each call: tests move the clock after New.
	s.sp = &spine.Spine{DB: s.db, Blobs: s.blobs, Cache: s.cache, Log: s.log, Now: func() time.Time { return s.now() }}
	return s, nil
}

// The store hands out none of its parts (the database, the files, the
// cache): what a caller needs of them is a method here. The session
// service, which keeps its own state in the cache, is given the cache by
// whoever builds both (server, storetest).

// Ping checks that the database and the cache answer.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if err := s.cache.Ping(ctx); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}

// PingDatabase checks that the database answers.
func (s *Store) PingDatabase(ctx context.Context) error { return s.db.PingContext(ctx) }

// PingCache checks that the cache answers.
func (s *Store) PingCache(ctx context.Context) error { return s.cache.Ping(ctx) }

// Subscribe returns the change events of every user, as they are committed
// by this or (with Redis) any other node.
func (s *Store) Subscribe(ctx context.Context) (*cache.Subscription, error) {
	return s.cache.Subscribe(ctx)
}

func (s *Store) rebind(q string) string { return s.db.Rebind(q) }

func (s *Store) unix() int64 { return s.now().Unix() }

// day is the UTC day number that daily counters are kept under.
func (s *Store) day() int64 { return s.sp.Day() }

// NormalizeAddress lower-cases an address and checks that it has the form
// local@domain. Local parts are treated case-insensitively, as every
// mainstream server does, although RFC 5321 2.4 allows otherwise.
func NormalizeAddress(addr string) (string, error) {
	a := strings.ToLower(strings.TrimSpace(addr))
	local, domain, ok := strings.Cut(a, "@")
	if !ok || local == "" || domain == "" || strings.ContainsAny(a, " \t\r\n<>,;\"") || strings.Contains(domain, "@") {
		return "", fmt.Errorf("%w: %q is not an address of the form local@domain", ErrInvalid, addr)
	}
	if len(a) > 254 {
		return "", fmt.Errorf("%w: address longer than 254 characters", ErrInvalid)
	}
	return a, nil
}

// NormalizeDomain lower-cases a domain name and checks its shape.
func NormalizeDomain(name string) (string, error) {
	d := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
	if d == "" || len(d) > 253 || strings.ContainsAny(d, " \t\r\n@/\\<>,;\"*?") || strings.HasPrefix(d, ".") || strings.Contains(d, "..") {
		return "", fmt.Errorf("%w: %q is not a domain name", ErrInvalid, name)
	}
	return d, nil
}
