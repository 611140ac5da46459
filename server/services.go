package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"basalt/delivery"
	"basalt/rest"
	"basalt/session"
	"basalt/store"
	"basalt/store/admin"
	"basalt/store/blob"
	"basalt/store/cache"
	"basalt/store/sqldb"
)

// redisLogEvery bounds go-redis's own log lines: while Redis is away it
// writes one for every command that tries to dial.
const redisLogEvery = 10 * time.Second

// Services are the opened storage, session and encryption services that
// the daemon and the administrative commands share.
type Services struct {
	Config  Config
	Log     *slog.Logger
	DB      *sqldb.DB
	Cache   cache.Cache
	Store   *store.Store
	Session *session.Service
	// Agent is the delivery path every message in takes.
	Agent *delivery.Agent
	// Queue relays mail for other domains (with a smarthost) and retries
	// local deliveries and bounces.
	Queue *delivery.Queue
	// API is the admin REST API; Admin keeps its admins, keys and jobs,
	// and Jobs runs its long operations.
	API   *rest.API
	Admin *admin.Store
	Jobs  *admin.Runner
	// captchaHook is the site's templates.Deps.CaptchaHook: set only by
	// this package's browser test, which cannot read the picture.
	captchaHook func(id, answer string)
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
		// go-redis logs through a global of its own; this is the one
		// place that sets it, so its lines follow [log] too.
		cache.SetRedisLogger(log, redisLogEvery)
		c, err = cache.NewRedis(ctx, cache.RedisOptions{
			Addr: cfg.Cache.RedisAddr, Username: cfg.Cache.RedisUsername, Password: cfg.Cache.RedisPassword,
			DB: cfg.Cache.RedisDB, Prefix: cfg.Cache.Prefix, TLS: cfg.Cache.RedisTLS, Logger: log,
		})
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("open cache: %w", err)
		}
	} else {
		c = cache.NewMemory(cache.MemoryOptions{MaxEntries: cfg.Cache.MaxEntries})
	}
	st, err := store.New(store.Config{DB: db, Blobs: blobs, Cache: c, Logger: log, Limits: cfg.Limits, InlineMax: cfg.Storage.InlineMax, Header: cfg.Message})
	if err != nil {
		c.Close()
		db.Close()
		return nil, err
	}
	var filters []delivery.Filter
	for _, m := range cfg.Milters {
		network := m.Network
		if network == "" {
			network = "tcp"
		}
		filters = append(filters, delivery.NewMilter(delivery.MilterConfig{Network: network, Address: m.Address, Timeout: m.Timeout, FailOpen: m.FailOpen}, log))
	}
	// The queue and the agent each need the other: the agent queues mail
	// for elsewhere, local copies to retry and bounces; the queue hands
	// what is for local users back to the agent. Without a smarthost the
	// queue still runs, for those, and mail for other domains is refused.
	var agent *delivery.Agent
	q := cfg.Queue
	queue := delivery.NewQueue(delivery.QueueConfig{
		Smarthost: q.Smarthost, StartTLS: q.StartTLS, ImplicitTLS: q.ImplicitTLS, TLSInsecure: q.TLSInsecure,
		Username: q.Username, Password: q.Password, Hostname: cfg.SMTP.Hostname, Concurrency: q.Concurrency,
		Backoff: q.Backoff, MaxAge: q.MaxAge, PollInterval: q.PollInterval, Timeout: q.Timeout,
	}, st, delivery.LocalDeliveryFunc(func(ctx context.Context, from, to string, raw []byte) error {
		return agent.DeliverLocal(ctx, from, to, raw)
	}), log)
	agent = delivery.New(delivery.Config{
		Hostname: cfg.SMTP.Hostname, MaxRecipients: cfg.SMTP.MaxRecipients,
		MaxSize: maxMessageSize(cfg), QuotaPermanent: cfg.SMTP.QuotaPermanent, MaxConcurrent: cfg.SMTP.MaxConcurrentData,
	}, st, queue, log, filters...)
	svc := &Services{
		Config: cfg, Log: log, DB: db, Cache: c, Store: st,
		Session: session.New(st, c, cfg.Auth.Config, log),
		Agent:   agent,
		Queue:   queue,
	}
	adm := admin.New(st)
	svc.Admin = adm
	svc.Jobs = adm.NewRunner(admin.RunnerConfig{Log: log})
	apiCfg := cfg.API
	apiCfg.Hostname = cfg.SMTP.Hostname
	if svc.API, err = rest.New(apiCfg, rest.Deps{Store: st, Admin: adm, Jobs: svc.Jobs, Session: svc.Session, Agent: agent, Queue: queue, Log: log}); err != nil {
		c.Close()
		db.Close()
		return nil, fmt.Errorf("admin api: %w", err)
	}
	return svc, nil
}

// Close stops the session service's background work and releases the
// cache and the database.
func (s *Services) Close() error {
	s.Session.Close()
	return errors.Join(s.Cache.Close(), s.DB.Close())
}
