package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"basalt/store"
	"basalt/store/internal/spine"
)

// Job states.
const (
	JobQueued  = "queued"
	JobRunning = "running"
	JobDone    = "done"
	JobFailed  = "failed"
)

// Job is a long operation the API answered 202 for.
type Job struct {
	ID         int64  `db:"id"`
	Kind       string `db:"kind"`
	State      string `db:"state"`
	Domain     string `db:"domain"`
	Params     string `db:"params"`
	Progress   int64  `db:"progress"`
	Total      int64  `db:"total"`
	Result     string `db:"result"`
	Errors     string `db:"errors"`
	Attempts   int    `db:"attempts"`
	LeaseUntil int64  `db:"lease_until"`
	AdminID    int64  `db:"admin_id"`
	KeyID      int64  `db:"key_id"`
	CreatedAt  int64  `db:"created_at"`
	UpdatedAt  int64  `db:"updated_at"`
	StartedAt  int64  `db:"started_at"`
	FinishedAt int64  `db:"finished_at"`
}

// ErrorList returns the job's per-item errors.
func (j Job) ErrorList() []string {
	var es []string
	if j.Errors != "" {
		json.Unmarshal([]byte(j.Errors), &es)
	}
	if es == nil {
		es = []string{}
	}
	return es
}

const jobColumns = `id, kind, state, domain, params, progress, total, result, errors, attempts, lease_until, admin_id, key_id,
	created_at, updated_at, started_at, finished_at`

// EnqueueJob records a job to run, by the actor ctx carries, audited in
// the same transaction. domain is the one it works in ("" server-wide).
func (s *Store) EnqueueJob(ctx context.Context, kind, domain string, params any) (Job, error) {
	p, err := jsonText(params)
	if err != nil {
		return Job{}, fmt.Errorf("enqueue %s job: %w", kind, err)
	}
	if p == "" {
		p = "{}"
	}
	a, _ := store.ActorOf(ctx)
	now := s.sp.Unix()
	j := Job{Kind: kind, State: JobQueued, Domain: domain, Params: p, AdminID: a.AdminID, KeyID: a.KeyID, CreatedAt: now, UpdatedAt: now}
	err = s.sp.DB.Tx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, s.sp.Rebind(`INSERT INTO jobs (kind, state, domain, params, result, errors, admin_id, key_id, created_at, updated_at)
			VALUES (?, ?, ?, ?, '', '', ?, ?, ?, ?)`), kind, JobQueued, domain, p, a.AdminID, a.KeyID, now, now)
		if err != nil {
			return err
		}
		if j.ID, err = res.LastInsertId(); err != nil {
			return err
		}
		return s.st.AuditTx(ctx, spine.Lend(), tx, store.AuditEntry{Action: "job.create", Target: "job:" + strconv.FormatInt(j.ID, 10),
			Domain: domain, After: map[string]any{"kind": kind, "params": json.RawMessage(p)}})
	})
	if err != nil {
		return Job{}, fmt.Errorf("enqueue %s job: %w", kind, err)
	}
	return j, nil
}

// Job returns a job.
func (s *Store) Job(ctx context.Context, id int64) (Job, error) {
	var j Job
	if err := s.sp.DB.GetContext(ctx, &j, s.sp.Rebind("SELECT "+jobColumns+" FROM jobs WHERE id = ?"), id); err != nil {
		return Job{}, fmt.Errorf("job %d: %w", id, spine.NotFound(err))
	}
	return j, nil
}

// JobQuery filters a listing of jobs, newest first; Before continues
// below an id.
type JobQuery struct {
	Before int64
	Limit  int
	Kind   string
	State  string
	Domain string
	// Domains, when not nil, restricts to jobs in these domains.
	Domains []string
}

// Jobs lists jobs.
func (s *Store) Jobs(ctx context.Context, q JobQuery) ([]Job, error) {
	where, args := []string{"1 = 1"}, []any{}
	if q.Before > 0 {
		where, args = append(where, "id < ?"), append(args, q.Before)
	}
	if q.Kind != "" {
		where, args = append(where, "kind = ?"), append(args, q.Kind)
	}
	if q.State != "" {
		where, args = append(where, "state = ?"), append(args, q.State)
	}
	if q.Domain != "" {
		where, args = append(where, "domain = ?"), append(args, q.Domain)
	}
	if q.Domains != nil {
		if len(q.Domains) == 0 {
			return []Job{}, nil
		}
		where = append(where, "domain IN (?"+strings.Repeat(", ?", len(q.Domains)-1)+")")
		for _, d := range q.Domains {
			args = append(args, d)
		}
	}
	var js []Job
	if err := s.sp.DB.SelectContext(ctx, &js, s.sp.Rebind("SELECT "+jobColumns+" FROM jobs WHERE "+strings.Join(where, " AND ")+
		" ORDER BY id DESC LIMIT "+strconv.Itoa(q.Limit)), args...); err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return js, nil
}

// Progress is what a job's handler reports through.
type Progress interface {
	// Set records how far the job is; it also renews the job's lease. An
	// error means the job is no longer this runner's (its lease was lost).
	Set(done, total int64) error
	// Fail records an error about one item; the job goes on.
	Fail(item string, err error)
}

// Handler runs one kind of job. It must be safe to run again from the
// start after an interruption (a crash, a restart): it works on what is
// left (the users still in a domain, those not yet on the plan), not on
// a list made when the job was queued. Its result is stored as JSON.
type Handler func(ctx context.Context, j Job, p Progress) (result any, err error)

// RunnerConfig tunes a Runner.
type RunnerConfig struct {
	// Lease is how long a running job is this runner's without renewal;
	// one whose lease ran out was interrupted. Default 30 s.
	Lease time.Duration
	// Poll is how often queued jobs are looked for when not woken.
	// Default 2 s.
	Poll time.Duration
	// MaxAttempts bounds how often an interrupted job is resumed before it
	// is failed. Default 3.
	MaxAttempts int
	Log         *slog.Logger
}

// Runner runs queued jobs, one at a time, on every node that runs one;
// a job is claimed with a lease, so two nodes never run it at once, and
// a job whose runner died (its lease ran out) is resumed or failed.
type Runner struct {
	s        *Store
	cfg      RunnerConfig
	handlers map[string]Handler
	wake     chan struct{}
	owner    string
	mu       sync.Mutex
	started  bool
}

// NewRunner returns a runner over s's jobs; register handlers before Start.
func (s *Store) NewRunner(cfg RunnerConfig) *Runner {
	cfg.Lease = cmpOr(cfg.Lease, 30*time.Second)
	cfg.Poll = cmpOr(cfg.Poll, 2*time.Second)
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.Log == nil {
		cfg.Log = s.sp.Log
	}
	var b [8]byte
	rand.Read(b[:])
	return &Runner{s: s, cfg: cfg, handlers: map[string]Handler{}, wake: make(chan struct{}, 1), owner: hex.EncodeToString(b[:])}
}

func cmpOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Handle registers the handler of a kind of job. It panics after Start.
func (r *Runner) Handle(kind string, h Handler) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		panic("admin: Runner.Handle after Start")
	}
	r.handlers[kind] = h
}

// Wake tells the runner a job was queued.
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run recovers interrupted jobs and then runs queued ones until ctx ends.
// A job running when ctx ends is left as it is, as a crash would leave it:
// its lease runs out and it is resumed.
func (r *Runner) Run(ctx context.Context) error {
	r.mu.Lock()
	r.started = true
	r.mu.Unlock()
	t := time.NewTicker(r.cfg.Poll)
	defer t.Stop()
	// Interrupted jobs are looked for at start and then once a lease, and
	// old Idempotency-Key records pruned hourly: not at every poll, which
	// would take the database's write lock every few seconds for nothing.
	var recovered, pruned time.Time
	for {
		if now := time.Now(); now.Sub(recovered) >= r.cfg.Lease {
			recovered = now
			if err := r.Recover(ctx); err != nil && ctx.Err() == nil {
				r.cfg.Log.Warn("jobs: recover", "err", err)
			}
		}
		if now := time.Now(); now.Sub(pruned) >= time.Hour {
			pruned = now
			if _, err := r.s.PruneIdempotency(ctx); err != nil && ctx.Err() == nil {
				r.cfg.Log.Warn("jobs: prune idempotency records", "err", err)
			}
		}
		for ctx.Err() == nil {
			ran, err := r.runOne(ctx)
			if err != nil && ctx.Err() == nil {
				r.cfg.Log.Warn("jobs: run", "err", err)
			}
			if !ran || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-r.wake:
		}
	}
}

// Recover requeues the running jobs whose lease ran out (their runner
// died) or fails those interrupted MaxAttempts times.
func (r *Runner) Recover(ctx context.Context) error {
	s := r.s
	now := s.sp.Now()
	if _, err := s.sp.DB.ExecContext(ctx, s.sp.Rebind(`UPDATE jobs SET state = ?, errors = ?, finished_at = ?, updated_at = ?, lease_until = 0
		WHERE state = ? AND lease_until < ? AND attempts >= ?`),
		JobFailed, `["interrupted too often"]`, now.Unix(), now.Unix(), JobRunning, now.UnixMilli(), r.cfg.MaxAttempts); err != nil {
		return fmt.Errorf("fail interrupted jobs: %w", err)
	}
	if _, err := s.sp.DB.ExecContext(ctx, s.sp.Rebind(`UPDATE jobs SET state = ?, updated_at = ?, lease_until = 0
		WHERE state = ? AND lease_until < ?`), JobQueued, now.Unix(), JobRunning, now.UnixMilli()); err != nil {
		return fmt.Errorf("requeue interrupted jobs: %w", err)
	}
	return nil
}

// runOne claims and runs the oldest queued job of a kind it handles.
func (r *Runner) runOne(ctx context.Context) (bool, error) {
	s := r.s
	kinds := make([]any, 0, len(r.handlers))
	for k := range r.handlers {
		kinds = append(kinds, k)
	}
	if len(kinds) == 0 {
		return false, nil
	}
	var ids []int64
	if err := s.sp.DB.SelectContext(ctx, &ids, s.sp.Rebind("SELECT id FROM jobs WHERE state = ? AND kind IN (?"+strings.Repeat(", ?", len(kinds)-1)+") ORDER BY id LIMIT 1"),
		append([]any{JobQueued}, kinds...)...); err != nil {
		return false, fmt.Errorf("find queued job: %w", err)
	}
	if len(ids) == 0 {
		return false, nil
	}
	id := ids[0]
	now := s.sp.Now()
	lease := now.Add(r.cfg.Lease).UnixMilli()
	res, err := s.sp.DB.ExecContext(ctx, s.sp.Rebind(`UPDATE jobs SET state = ?, lease_until = ?, attempts = attempts + 1, updated_at = ?,
		started_at = CASE WHEN started_at = 0 THEN ? ELSE started_at END WHERE id = ? AND state = ?`),
		JobRunning, lease, now.Unix(), now.Unix(), id, JobQueued)
	if err != nil {
		return false, fmt.Errorf("claim job %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return true, nil // another node took it
	}
	j, err := s.Job(ctx, id)
	if err != nil {
		return false, err
	}
	p := &progress{r: r, id: id, lease: lease}
	if j.Errors != "" {
		json.Unmarshal([]byte(j.Errors), &p.errs)
	}
	// Renew the lease while the handler works, so a long step between
	// progress reports does not look like a dead runner.
	hctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(r.cfg.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-hctx.Done():
				return
			case <-t.C:
				if err := p.renew(hctx, -1, -1); err != nil {
					cancel()
					return
				}
			}
		}
	}()
	result, herr := r.handlers[j.Kind](hctx, j, p)
	cancel()
	<-done
	if ctx.Err() != nil {
		// Stopping: leave the job running, as a crash would; its lease
		// runs out and it is resumed.
		return false, nil
	}
	state, text := JobDone, ""
	if herr != nil {
		state = JobFailed
		p.Fail("", herr)
	} else if text, err = jsonText(result); err != nil {
		state = JobFailed
		p.Fail("", err)
	}
	p.mu.Lock()
	errs, _ := json.Marshal(p.errs)
	p.mu.Unlock()
	end := s.sp.Unix()
	res, err = s.sp.DB.ExecContext(context.WithoutCancel(ctx), s.sp.Rebind(`UPDATE jobs SET state = ?, result = ?, errors = ?, finished_at = ?,
		updated_at = ?, lease_until = 0 WHERE id = ? AND state = ? AND lease_until = ?`), state, text, string(errs), end, end, id, JobRunning, p.current())
	if err != nil {
		return false, fmt.Errorf("finish job %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		r.cfg.Log.Warn("jobs: lease lost before the end", "job", id)
	}
	return true, nil
}

// maxJobErrors bounds the per-item errors a job keeps.
const maxJobErrors = 100

type progress struct {
	r     *Runner
	id    int64
	mu    sync.Mutex
	lease int64
	errs  []string
}

func (p *progress) current() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lease
}

// renew extends the lease (fenced on the one held) and, with done >= 0,
// records progress.
func (p *progress) renew(ctx context.Context, done, total int64) error {
	s := p.r.s
	p.mu.Lock()
	defer p.mu.Unlock()
	now := s.sp.Now()
	lease := now.Add(p.r.cfg.Lease).UnixMilli()
	if lease <= p.lease {
		lease = p.lease + 1
	}
	q, args := "UPDATE jobs SET lease_until = ?, updated_at = ?", []any{lease, now.Unix()}
	if done >= 0 {
		errs, _ := json.Marshal(p.errs)
		q, args = q+", progress = ?, total = ?, errors = ?", append(args, done, total, string(errs))
	}
	res, err := s.sp.DB.ExecContext(ctx, s.sp.Rebind(q+" WHERE id = ? AND state = ? AND lease_until = ?"), append(args, p.id, JobRunning, p.lease)...)
	if err != nil {
		return fmt.Errorf("job %d progress: %w", p.id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("job %d: lease lost", p.id)
	}
	p.lease = lease
	return nil
}

func (p *progress) Set(done, total int64) error { return p.renew(context.Background(), done, total) }

func (p *progress) Fail(item string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.errs) >= maxJobErrors {
		return
	}
	msg := err.Error()
	if item != "" {
		msg = item + ": " + msg
	}
	p.errs = append(p.errs, msg)
}
