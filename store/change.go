package store

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/jmoiron/sqlx"

	"basalt/store/internal/spine"
)

// Actor is who makes the changes a context carries: the admin API puts the
// admin, its API key and the client's address here (WithActor), and every
// audit record written under the context names them. A change with no
// actor (the command line, the daemon itself) is recorded as the system's.
type Actor struct {
	AdminID int64
	KeyID   int64
	// Name is the admin's name (or "cli", "system").
	Name   string
	Client string
}

type actorKey struct{}

// WithActor returns ctx carrying a.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorOf returns the actor ctx carries, if any.
func ActorOf(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(Actor)
	return a, ok
}

// AuditEntry is one administrative change: what was done (Action, e.g.
// "domain.update"), to what (Target) in which domain, and the target's
// state before and after (marshalled to JSON; nil is none).
type AuditEntry struct {
	Action string
	Target string
	Domain string
	Before any
	After  any
}

// auditIn writes e, by the actor ctx carries, through q: inside the
// change's own transaction where there is one, so the log and the change
// are committed together or not at all.
func (s *Store) auditIn(ctx context.Context, q sqlx.ExecerContext, e AuditEntry) error {
	a, _ := ActorOf(ctx)
	name := a.Name
	if name == "" {
		name = "system"
	}
	before, err := auditJSON(e.Before)
	if err != nil {
		return err
	}
	after, err := auditJSON(e.After)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, s.rebind(`INSERT INTO audit_log (at, actor, action, subject, detail, admin_id, key_id,
		domain, before_json, after_json, client) VALUES (?, ?, ?, ?, '', ?, ?, ?, ?, ?, ?)`),
		s.unix(), spine.Clip(name), e.Action, spine.Clip(e.Target), a.AdminID, a.KeyID, e.Domain, before, after, a.Client)
	return err
}

func auditJSON(v any) (string, error) {
	if v == nil {
		return "", nil
	}
	if r, ok := v.(json.RawMessage); ok {
		return string(r), nil
	}
	b, err := json.Marshal(v)
	return string(b), err
}

// AuditTx writes e in tx, the transaction of the change it records. It is
// lent to the store's sub-packages (store/admin) so that one writer keeps
// the log's form.
func (s *Store) AuditTx(ctx context.Context, k spine.Key, tx *sqlx.Tx, e AuditEntry) error {
	k.Check()
	return s.auditIn(ctx, tx, e)
}

// Audit records a change that was made outside a transaction of the store
// (or in several); a failure to record is logged.
func (s *Store) Audit(ctx context.Context, e AuditEntry) {
	if err := s.auditIn(context.WithoutCancel(ctx), s.db, e); err != nil {
		s.log.Warn("audit log", "action", e.Action, "err", err)
	}
}

// audit records an administrative action the older way (a subject and a
// detail); a failure to record is logged.
// The actor is the one ctx carries (WithActor); the domain is that of the
// subject's first word when it is an address.
func (s *Store) audit(ctx context.Context, _ string, action, subject, detail string) {
	var after any
	if detail != "" {
		after = map[string]string{"detail": detail}
	}
	first, _, _ := strings.Cut(subject, " ")
	_, domain, _ := strings.Cut(first, "@")
	s.Audit(ctx, AuditEntry{Action: action, Target: subject, Domain: domain, After: after})
}

// notFound maps sql.ErrNoRows to ErrNotFound.
func notFound(err error) error { return spine.NotFound(err) }
