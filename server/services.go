package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"basalt/session"
	"basalt/store"
	"basalt/store/blob"
	"basalt/store/cache"
	"basalt/store/sqldb"
)

// Services are the opened storage, session and encryption services that
// the daemon and the administrative commands share.
type Services struct {
	Config  Config
	Log     *slog.Logger
	DB      *sqldb.DB
	Cache   cache.Cache
	Store   *store.Store
	Session *session.Service
}

// Open opens the database (migrating it), the blob store and the cache,
// and builds the services over them.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Services, error) {
	db, err := sqldb.Open(ctx, cfg.Database)
	if err != nil {
		return nil, err
	}
	n, err := db.Migrate(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	if n > 0 {
		log.Info("database migrated", "applied", n, "driver", db.Dialect())
	}
	blobs, err := blob.New(blob.Options{Partitions: cfg.Storage.Partitions, NoCompress: cfg.Storage.NoCompress})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open blob store: %w", err)
	}
	var c cache.Cache
	if cfg.Cache.RedisAddr != "" {
		c, err = cache.NewRedis(ctx, cache.RedisOptions{
			Addr: cfg.Cache.RedisAddr, Username: cfg.Cache.RedisUsername, Password: cfg.Cache.RedisPassword,
			DB: cfg.Cache.RedisDB, Prefix: cfg.Cache.Prefix, TLS: cfg.Cache.RedisTLS,
		})
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("open cache: %w", err)
		}
	} else {
		c = cache.NewMemory(cache.MemoryOptions{MaxEntries: cfg.Cache.MaxEntries})
	}
	st, err := store.New(store.Config{DB: db, Blobs: blobs, Cache: c, Logger: log, Limits: cfg.Limits})
	if err != nil {
		c.Close()
		db.Close()
		return nil, err
	}
	return &Services{
		Config: cfg, Log: log, DB: db, Cache: c, Store: st,
		Session: session.New(st, cfg.Auth.Config, log),
	}, nil
}

// Close releases the cache and the database.
func (s *Services) Close() error {
	return errors.Join(s.Cache.Close(), s.DB.Close())
}
