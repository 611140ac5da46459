package rest

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"basalt/delivery"
	"basalt/store"
	"basalt/store/admin"
)

// The aliases, shares, queue, bulletins and maintenance resources.

// jobRun is a job as its handler runs it.
type jobRun struct {
	job      admin.Job
	progress admin.Progress
}

// runJob makes an admin.Handler of fn, acting as the job's admin.
func (a *API) runJob(fn func(ctx context.Context, j jobRun) (any, error)) admin.Handler {
	return func(ctx context.Context, j admin.Job, p admin.Progress) (any, error) {
		ctx = store.WithActor(ctx, store.Actor{AdminID: j.AdminID, KeyID: j.KeyID, Name: "job:" + strconv.FormatInt(j.ID, 10)})
		return fn(ctx, jobRun{job: j, progress: p})
	}
}

// bodyDomain normalizes a body's domain member ("" stays ""): the form
// the key's domains, the job's domain and the users' addresses are in.
func bodyDomain(d string) (string, error) {
	if d == "" {
		return "", nil
	}
	n, err := store.NormalizeDomain(d)
	if err != nil {
		return "", Invalid("domain", "not a domain name")
	}
	return n, nil
}

// --- aliases -----------------------------------------------------------------

func (a *API) aliasRoutes() []Route {
	p := PathAddress("pattern")
	return []Route{
		{Method: http.MethodGet, Path: "/aliases", Scope: "aliases:read", Domain: Listed(), Handle: a.listAliases},
		{Method: http.MethodPost, Path: "/aliases", Scope: "aliases:write", Domain: BodyAddress("pattern"), Idempotent: true, Handle: a.createAlias},
		{Method: http.MethodGet, Path: "/aliases/{pattern}", Scope: "aliases:read", Domain: p, Handle: a.getAlias},
		{Method: http.MethodPut, Path: "/aliases/{pattern}", Scope: "aliases:write", Domain: p, Handle: a.putAlias},
		{Method: http.MethodDelete, Path: "/aliases/{pattern}", Scope: "aliases:write", Domain: p, Handle: a.deleteAlias},
	}
}

// AliasView is an alias (valias): a pattern and its targets.
type AliasView struct {
	Pattern   string   `json:"pattern"`
	Targets   []string `json:"targets"`
	IsPattern bool     `json:"isPattern"`
	CatchAll  bool     `json:"catchAll"`
}

func aliasView(g store.AliasGroup) AliasView { return AliasView(g) }

type aliasPos struct {
	P string `json:"p"`
}

func (a *API) listAliases(c *Ctx) error {
	var pos aliasPos
	limit, _, err := c.Paging(&pos)
	if err != nil {
		return err
	}
	f := store.AliasFilter{Domain: c.Query("domain"), Q: c.Query("q"), Cursor: pos.P, Limit: limit + 1}
	if ds, all := c.Domains(); !all && f.Domain == "" {
		f.Only = ds
	}
	page, err := a.st.ListAliases(c.Context(), f)
	if err != nil {
		return err
	}
	return Page(c, page.Aliases, limit, func(g store.AliasGroup) any { return aliasPos{P: g.Pattern} }, aliasView)
}

type aliasCreate struct {
	Pattern string   `json:"pattern"`
	Targets []string `json:"targets"`
}

// aliasProblem names the field of an invalid pattern or target.
func aliasProblem(err error) error {
	if errors.Is(err, store.ErrInvalid) {
		field := "pattern"
		if strings.Contains(err.Error(), "target") {
			field = "targets"
		}
		return Invalid(field, err.Error())
	}
	return err
}

func (a *API) checkTargets(targets []string) error {
	var fe []FieldError
	if len(targets) == 0 {
		return Invalid("targets", "at least one address")
	}
	for i, t := range targets {
		if _, err := store.NormalizeAddress(t); err != nil {
			fe = append(fe, FieldError{Field: fmt.Sprintf("targets[%d]", i), Message: "not an address"})
		}
	}
	if fe != nil {
		return Validation(fe...)
	}
	return nil
}

func (a *API) createAlias(c *Ctx) error {
	var in aliasCreate
	if err := c.Decode(&in); err != nil {
		return err
	}
	if _, err := store.NormalizeAliasPattern(in.Pattern); err != nil {
		return Invalid("pattern", err.Error())
	}
	if err := a.checkTargets(in.Targets); err != nil {
		return err
	}
	g, err := a.st.SetAlias(c.Context(), in.Pattern, in.Targets, true)
	if err != nil {
		return aliasProblem(err)
	}
	return c.Created("/aliases/"+g.Pattern, aliasView(g))
}

func (a *API) alias(c *Ctx) (store.AliasGroup, error) {
	g, err := a.st.Alias(c.Context(), c.Param("pattern"))
	if errors.Is(err, store.ErrInvalid) {
		return g, NotFound("No such alias.")
	}
	return g, err
}

// aliasUnchanged is the precondition of a change made on the strength of
// having read read: the alias is still as it was (412 otherwise).
func aliasUnchanged(read store.AliasGroup) func(store.AliasGroup) error {
	return stillAsRead("alias", read, aliasView)
}

func (a *API) getAlias(c *Ctx) error {
	g, err := a.alias(c)
	if err != nil {
		return err
	}
	return c.Resource(aliasView(g))
}

// putAlias replaces an alias's targets.
func (a *API) putAlias(c *Ctx) error {
	var in struct {
		Targets []string `json:"targets"`
	}
	if err := c.Decode(&in); err != nil {
		return err
	}
	if err := a.checkTargets(in.Targets); err != nil {
		return err
	}
	g, err := a.alias(c)
	if err != nil {
		return err
	}
	if err := c.IfMatch(aliasView(g)); err != nil {
		return err
	}
	after, err := a.st.SetAliasIf(c.Context(), g.Pattern, in.Targets, aliasUnchanged(g))
	if err != nil {
		return aliasProblem(err)
	}
	return c.Resource(aliasView(after))
}

func (a *API) deleteAlias(c *Ctx) error {
	g, err := a.alias(c)
	if err != nil {
		return err
	}
	if err := c.IfMatch(aliasView(g)); err != nil {
		return err
	}
	if err := a.st.DeleteAliasIf(c.Context(), g.Pattern, aliasUnchanged(g)); err != nil {
		return err
	}
	return c.NoContent()
}

// --- shares ------------------------------------------------------------------

// ShareView is one grant of rights on one of a user's mailboxes.
type ShareView struct {
	Mailbox string `json:"mailbox"`
	Grantee string `json:"grantee"`
	Domain  bool   `json:"domain"`
	Rights  string `json:"rights"`
}

func (a *API) shares(c *Ctx, ownerID int64) ([]ShareView, error) {
	gs, err := a.st.GrantsFor(c.Context(), ownerID)
	if err != nil {
		return nil, err
	}
	out := make([]ShareView, 0, len(gs))
	for _, g := range gs {
		out = append(out, ShareView{Mailbox: g.MailboxName, Grantee: g.Grantee, Domain: g.Domain, Rights: g.Rights.String()})
	}
	return out, nil
}

func (a *API) listShares(c *Ctx) error {
	info, err := a.user(c)
	if err != nil {
		return err
	}
	items, err := a.shares(c, info.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"items": items})
}

// putShare grants a user or the owner's domain rights on a mailbox
// (RFC 4314 letters; they replace what the grantee had).
func (a *API) putShare(c *Ctx) error {
	var in ShareView
	if err := c.Decode(&in); err != nil {
		return err
	}
	if in.Mailbox == "" {
		return Invalid("mailbox", "required")
	}
	rights, err := store.ParseRights(in.Rights)
	if err != nil || rights == 0 {
		return Invalid("rights", "RFC 4314 rights letters (lrswipkxtea), at least one")
	}
	return a.grant(c, in.Mailbox, in.Grantee, rights)
}

func (a *API) deleteShare(c *Ctx) error {
	return a.grant(c, c.Query("mailbox"), c.Query("grantee"), 0)
}

func (a *API) grant(c *Ctx, mailbox, grantee string, rights store.Rights) error {
	if grantee == "" {
		return Invalid("grantee", "an address, or the owner's domain")
	}
	if strings.Contains(grantee, "@") {
		if err := c.CheckDomain(domainOf(grantee)); err != nil {
			return err
		}
	}
	info, err := a.user(c)
	if err != nil {
		return err
	}
	// The grantee as the store will resolve it: a login name (with or
	// without an "@") may be a user of another domain than it says.
	addr, isDomain, err := a.st.Grantee(c.Context(), info.ID, grantee)
	if errors.Is(err, store.ErrNotFound) {
		return Invalid("grantee", "no such user, and not the owner's domain")
	}
	if err != nil {
		return err
	}
	if !isDomain {
		if err := c.CheckDomain(domainOf(addr)); err != nil {
			return err
		}
	}
	acct := a.st.Account(info.ID, nil)
	m, err := acct.MailboxByName(c.Context(), mailbox)
	if errors.Is(err, store.ErrNotFound) {
		return Invalid("mailbox", "no such mailbox")
	}
	if err != nil {
		return err
	}
	before, _ := a.shares(c, info.ID)
	if err := acct.Grant(c.Context(), m.ID, grantee, rights); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Invalid("grantee", "no such user, and not the owner's domain")
		}
		return err
	}
	after, err := a.shares(c, info.ID)
	if err != nil {
		return err
	}
	c.Audit(store.AuditEntry{Action: "user.share", Target: info.Address + " " + mailbox, Domain: domainOf(info.Address), Before: before, After: after})
	if rights == 0 {
		return c.NoContent()
	}
	// The grant as recorded: under the user's address (whatever name it
	// was given by) or the owner's domain.
	for _, s := range after {
		if s.Mailbox == mailbox && s.Domain == isDomain && (isDomain || s.Grantee == addr) {
			return c.JSON(http.StatusOK, s)
		}
	}
	if isDomain {
		addr = domainOf(info.Address)
	}
	return c.JSON(http.StatusOK, ShareView{Mailbox: mailbox, Grantee: addr, Domain: isDomain, Rights: rights.String()})
}

// --- queue ---------------------------------------------------------------------

func (a *API) queueRoutes() []Route {
	g := Global()
	return []Route{
		{Method: http.MethodGet, Path: "/queue", Scope: "queue:read", Domain: g, Handle: a.listQueue},
		{Method: http.MethodGet, Path: "/queue/{id}", Scope: "queue:read", Domain: g, Handle: a.getQueued},
		{Method: http.MethodDelete, Path: "/queue/{id}", Scope: "queue:write", Domain: g, Handle: a.deleteQueued},
		{Method: http.MethodPost, Path: "/queue/{id}/retry", Scope: "queue:write", Domain: g, Handle: a.queueOp((*delivery.Queue).RetryNow, "queue.retry")},
		{Method: http.MethodPost, Path: "/queue/{id}/hold", Scope: "queue:write", Domain: g, Handle: a.queueOp((*delivery.Queue).Hold, "queue.hold")},
		{Method: http.MethodPost, Path: "/queue/{id}/release", Scope: "queue:write", Domain: g, Handle: a.queueOp((*delivery.Queue).Release, "queue.release")},
	}
}

// QueueView is a queued message.
type QueueView struct {
	ID          int64           `json:"id"`
	From        string          `json:"from"`
	CreatedAt   int64           `json:"createdAt"`
	NextAttempt int64           `json:"nextAttemptAt"`
	Attempts    int             `json:"attempts"`
	LastError   string          `json:"lastError"`
	Size        int64           `json:"size"`
	Held        bool            `json:"held"`
	Sealed      bool            `json:"sealed"`
	Recipients  []QueueRcptView `json:"recipients"`
}

// QueueRcptView is one recipient of a queued message.
type QueueRcptView struct {
	Address string `json:"address"`
	Status  string `json:"status"`
	Reply   string `json:"reply"`
}

func queueView(e delivery.QueueEntry) QueueView {
	v := QueueView{ID: e.ID, From: e.From, CreatedAt: e.CreatedAt.Unix(), NextAttempt: e.NextAttempt.Unix(), Attempts: e.Attempts,
		LastError: e.LastError, Size: e.Size, Held: e.Held, Sealed: e.SealedUser != 0, Recipients: []QueueRcptView{}}
	for _, r := range e.Rcpts {
		v.Recipients = append(v.Recipients, QueueRcptView{Address: r.Address, Status: string(r.Status), Reply: r.Reply})
	}
	return v
}

func (a *API) queue() (*delivery.Queue, error) {
	if a.deps.Queue == nil {
		return nil, NewProblem(http.StatusServiceUnavailable, "unavailable", "Service unavailable", "This server runs no outbound queue.")
	}
	return a.deps.Queue, nil
}

// queuedID is the outbound queue and the id of the message the path names.
func (a *API) queuedID(c *Ctx) (*delivery.Queue, int64, error) {
	q, err := a.queue()
	if err != nil {
		return nil, 0, err
	}
	id, err := c.ID("id")
	return q, id, err
}

type queuePos struct {
	C string `json:"c"`
}

func (a *API) listQueue(c *Ctx) error {
	q, err := a.queue()
	if err != nil {
		return err
	}
	var pos queuePos
	limit, _, err := c.Paging(&pos)
	if err != nil {
		return err
	}
	f := delivery.QueueFilter{Domain: c.Query("domain"), Recipient: c.Query("recipient"), Cursor: pos.C, Limit: limit + 1}
	switch s := c.Query("state"); s {
	case "", "queued", "deferred", "held":
		f.State = delivery.QueueState(s)
	default:
		return Invalid("state", "one of queued, deferred, held")
	}
	if s := c.Query("olderThan"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return Invalid("olderThan", "seconds, an integer from 0")
		}
		f.OlderThan = time.Duration(n) * time.Second
	}
	page, err := q.List(c.Context(), f)
	if err != nil {
		if errors.Is(err, store.ErrInvalid) {
			return Invalid("filter", err.Error())
		}
		return err
	}
	return Page(c, page.Entries, limit, func(e delivery.QueueEntry) any { return queuePos{C: strconv.FormatInt(e.ID, 10)} }, queueView)
}

func (a *API) getQueued(c *Ctx) error {
	q, id, err := a.queuedID(c)
	if err != nil {
		return err
	}
	e, err := q.Get(c.Context(), id)
	if err != nil {
		return err
	}
	return c.Resource(queueView(e))
}

func (a *API) deleteQueued(c *Ctx) error {
	q, id, err := a.queuedID(c)
	if err != nil {
		return err
	}
	e, err := q.Get(c.Context(), id)
	if err != nil {
		return err
	}
	if err := c.IfMatch(queueView(e)); err != nil {
		return err
	}
	if err := q.Delete(c.Context(), id); err != nil {
		return err
	}
	c.Audit(store.AuditEntry{Action: "queue.delete", Target: strconv.FormatInt(id, 10), Before: queueView(e)})
	return c.NoContent()
}

// queueOp answers an operation on one queued message with its new state.
func (a *API) queueOp(op func(*delivery.Queue, context.Context, int64) error, action string) func(*Ctx) error {
	return func(c *Ctx) error {
		q, id, err := a.queuedID(c)
		if err != nil {
			return err
		}
		if err := op(q, c.Context(), id); err != nil {
			return err
		}
		e, err := q.Get(c.Context(), id)
		if errors.Is(err, store.ErrNotFound) {
			// Sent (or failed for good) as soon as the runner was woken.
			c.Audit(store.AuditEntry{Action: action, Target: strconv.FormatInt(id, 10)})
			return c.NoContent()
		}
		if err != nil {
			return err
		}
		c.Audit(store.AuditEntry{Action: action, Target: strconv.FormatInt(id, 10), After: queueView(e)})
		return c.Resource(queueView(e))
	}
}

// --- bulletins -----------------------------------------------------------------

func (a *API) bulletinRoutes() []Route {
	return []Route{
		{Method: http.MethodPost, Path: "/bulletins", Scope: "bulletins:write", Domain: BodyDomain("domain"), Idempotent: true, Handle: a.createBulletin},
		{Method: http.MethodGet, Path: "/bulletins/{id}", Scope: "bulletins:read", Domain: Global(), Handle: a.getBulletin},
	}
}

type bulletinBody struct {
	Domain  string `json:"domain"`
	Plan    string `json:"plan"`
	All     bool   `json:"all"`
	From    string `json:"from"`
	Subject string `json:"subject"`
	Body    string `json:"body"`
}

// BulletinView is a bulletin and how far its delivery got.
type BulletinView struct {
	ID        int64  `json:"id"`
	Scope     string `json:"scope"`
	From      string `json:"from"`
	State     string `json:"state"`
	Total     int64  `json:"total"`
	Delivered int64  `json:"delivered"`
	Failed    int64  `json:"failed"`
	LastError string `json:"lastError"`
	CreatedAt int64  `json:"createdAt"`
}

func bulletinView(b store.Bulletin) BulletinView {
	return BulletinView{ID: b.ID, Scope: string(b.Scope), From: b.From, State: b.State, Total: b.Total, Delivered: b.Delivered,
		Failed: b.Failed, LastError: b.LastError, CreatedAt: b.CreatedAt}
}

// bulletinMessage builds the bulletin's message: one copy for everyone,
// to an undisclosed group (RFC 5322 3.4), marked bulk so auto-replies
// leave it alone (RFC 3834 2).
func bulletinMessage(from, subject, body string, now time.Time, id string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: undisclosed-recipients:;\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s>\r\n", from,
		mime.QEncoding.Encode("utf-8", subject), now.UTC().Format(time.RFC1123Z), id)
	b.WriteString("Precedence: bulk\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	for line := range strings.Lines(body) {
		b.WriteString(strings.TrimRight(line, "\r\n") + "\r\n")
	}
	return []byte(b.String())
}

func (a *API) createBulletin(c *Ctx) error {
	var in bulletinBody
	if err := c.Decode(&in); err != nil {
		return err
	}
	var err error
	if in.Domain, err = bodyDomain(in.Domain); err != nil {
		return err
	}
	n := 0
	var scope store.BulletinScope
	var name string
	if in.Domain != "" {
		n, scope, name = n+1, store.BulletinDomain, in.Domain
	}
	if in.Plan != "" {
		n, scope, name = n+1, store.BulletinPlan, in.Plan
	}
	if in.All {
		n, scope = n+1, store.BulletinAll
	}
	if n != 1 {
		return Invalid("domain", "give exactly one of domain, plan, all")
	}
	if scope != store.BulletinDomain {
		// A plan's users or all users span domains: only a key over every
		// domain (the locator passed a body with no domain).
		if _, all := c.Domains(); !all {
			return Forbidden("A bulletin to a plan or to all users needs bulletins:write over every domain.")
		}
	}
	from, err := store.NormalizeAddress(in.From)
	if err != nil {
		return Invalid("from", "not an address")
	}
	// The sender is one of the key's domains: a key of one customer's
	// domain does not write to its users in another customer's name.
	if err := c.CheckDomain(domainOf(from)); err != nil {
		return err
	}
	if strings.TrimSpace(in.Subject) == "" || strings.ContainsAny(in.Subject, "\r\n") {
		return Invalid("subject", "one line, not empty")
	}
	if in.Body == "" {
		return Invalid("body", "required")
	}
	if a.deps.Agent == nil {
		return NewProblem(http.StatusServiceUnavailable, "unavailable", "Service unavailable", "This server delivers no mail.")
	}
	now := time.Now()
	raw := bulletinMessage(from, in.Subject, in.Body, now, fmt.Sprintf("bulletin.%d@%s", now.UnixNano(), domainOf(from)))
	b, err := a.st.CreateBulletin(c.Context(), scope, name, from, raw)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) && scope == store.BulletinPlan {
			return Invalid("plan", "no such plan")
		}
		if errors.Is(err, store.ErrInvalid) {
			return Invalid("body", err.Error())
		}
		return err
	}
	c.Audit(store.AuditEntry{Action: "bulletin.create", Target: strconv.FormatInt(b.ID, 10), Domain: in.Domain, After: bulletinView(b)})
	return c.StartJob(jobBulletin, in.Domain, map[string]int64{"bulletin": b.ID})
}

func (a *API) getBulletin(c *Ctx) error {
	id, err := c.ID("id")
	if err != nil {
		return err
	}
	b, _, err := a.st.BulletinByID(c.Context(), id)
	if err != nil {
		return err
	}
	return c.Resource(bulletinView(b))
}

// bulletinJob delivers a bulletin; run again, it resumes.
func (a *API) bulletinJob(ctx context.Context, j jobRun) (any, error) {
	var params struct {
		Bulletin int64 `json:"bulletin"`
	}
	if err := decodeStrict([]byte(j.job.Params), &params); err != nil {
		return nil, fmt.Errorf("job params: %w", err)
	}
	if a.deps.Agent == nil {
		return nil, errors.New("no delivery agent")
	}
	b, err := a.deps.Agent.SendBulletin(ctx, params.Bulletin, func(b store.Bulletin) error {
		return j.progress.Set(b.Delivered+b.Failed, b.Total)
	})
	if err != nil {
		return nil, err
	}
	return bulletinView(b), nil
}

// --- maintenance -----------------------------------------------------------------

func (a *API) maintenanceRoutes() []Route {
	return []Route{
		{Method: http.MethodPost, Path: "/maintenance/inactive-users", Scope: "maintenance:write", Domain: BodyDomain("domain"), Handle: a.inactiveUsers},
		{Method: http.MethodPost, Path: "/maintenance/recalculate-usage", Scope: "maintenance:write", Domain: BodyDomainOrAddress("domain", "user"), Handle: a.recalculateUsage},
	}
}

type inactiveBody struct {
	Since  time.Time `json:"since"`
	Domain string    `json:"domain"`
	DryRun bool      `json:"dryRun"`
}

// InactiveView is a user an inactive-user cleanup takes.
type InactiveView struct {
	Address   string `json:"address"`
	LastLogin int64  `json:"lastLogin"`
	CreatedAt int64  `json:"createdAt"`
}

// maxDryRun bounds the users a dry run lists.
const maxDryRun = 1000

// inactiveUsers is vdeloldusers: users created before since who have not
// logged in since. dryRun lists them (the first maxDryRun); otherwise a
// job deletes them.
func (a *API) inactiveUsers(c *Ctx) error {
	var in inactiveBody
	if err := c.Decode(&in); err != nil {
		return err
	}
	var err error
	if in.Domain, err = bodyDomain(in.Domain); err != nil {
		return err
	}
	if in.Since.IsZero() || in.Since.After(time.Now()) {
		return Invalid("since", "a time in the past")
	}
	if in.Domain != "" {
		if _, err := a.st.DomainByName(c.Context(), in.Domain); err != nil {
			return err
		}
	}
	if !in.DryRun {
		return c.StartJob(jobInactiveUsers, in.Domain, map[string]any{"since": in.Since.Unix(), "domain": in.Domain})
	}
	var items []InactiveView
	more := false
	err = a.eachInactive(c.Context(), in.Since, in.Domain, func(u store.User) (bool, error) {
		if len(items) == maxDryRun {
			more = true
			return false, nil
		}
		ls, err := a.st.Logins(c.Context(), u.ID)
		if err != nil {
			return false, err
		}
		v := InactiveView{Address: u.Address, CreatedAt: u.CreatedAt}
		for _, l := range ls {
			v.LastLogin = max(v.LastLogin, l.At)
		}
		items = append(items, v)
		return true, nil
	})
	if err != nil {
		return err
	}
	if items == nil {
		items = []InactiveView{}
	}
	return c.JSON(http.StatusOK, map[string]any{"dryRun": true, "users": items, "truncated": more})
}

// eachInactive calls fn for each inactive user (of domain, when not ""),
// in id order, until it returns false.
func (a *API) eachInactive(ctx context.Context, since time.Time, domain string, fn func(store.User) (bool, error)) error {
	after := int64(0)
	for {
		us, err := a.st.InactiveUsers(ctx, since, after, 200)
		if err != nil {
			return err
		}
		if len(us) == 0 {
			return nil
		}
		for _, u := range us {
			after = u.ID
			if domain != "" && domainOf(u.Address) != domain {
				continue
			}
			if ok, err := fn(u); err != nil || !ok {
				return err
			}
		}
	}
}

// inactiveJob deletes the inactive users; run again, it deletes those
// still left.
func (a *API) inactiveJob(ctx context.Context, j jobRun) (any, error) {
	var params struct {
		Since  int64  `json:"since"`
		Domain string `json:"domain"`
	}
	if err := decodeStrict([]byte(j.job.Params), &params); err != nil {
		return nil, fmt.Errorf("job params: %w", err)
	}
	deleted := j.job.Progress
	err := a.eachInactive(ctx, time.Unix(params.Since, 0), params.Domain, func(u store.User) (bool, error) {
		if err := a.st.DeleteUser(ctx, u.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			j.progress.Fail(u.Address, err)
			return true, nil
		}
		deleted++
		return true, j.progress.Set(deleted, 0)
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"deleted": deleted}, nil
}

type recountBody struct {
	Domain string `json:"domain"`
	User   string `json:"user"`
}

// recalculateUsage counts a user's usage again from its stored messages
// (at once), or every user's of a domain or of the server (a job).
func (a *API) recalculateUsage(c *Ctx) error {
	var in recountBody
	if err := c.Decode(&in); err != nil {
		return err
	}
	var err error
	if in.Domain, err = bodyDomain(in.Domain); err != nil {
		return err
	}
	if in.Domain != "" && in.User != "" {
		return Invalid("user", "give domain or user, not both")
	}
	if in.User != "" {
		u, err := a.st.UserByAddress(c.Context(), in.User)
		if errors.Is(err, store.ErrInvalid) {
			return Invalid("user", "not an address")
		}
		if err != nil {
			return err
		}
		before, after, err := a.st.RecalculateUsage(c.Context(), u.ID)
		if err != nil {
			return err
		}
		c.Audit(store.AuditEntry{Action: "user.recount", Target: u.Address, Domain: domainOf(u.Address), Before: before, After: after})
		return c.JSON(http.StatusOK, map[string]any{"address": u.Address, "before": before, "after": after})
	}
	if in.Domain != "" {
		if _, err := a.st.DomainByName(c.Context(), in.Domain); err != nil {
			return err
		}
	}
	return c.StartJob(jobRecount, in.Domain, map[string]string{"domain": in.Domain})
}

// recountJob recounts every user (of a domain); run again, it recounts
// them all again, which is harmless.
func (a *API) recountJob(ctx context.Context, j jobRun) (any, error) {
	var params struct {
		Domain string `json:"domain"`
	}
	if err := decodeStrict([]byte(j.job.Params), &params); err != nil {
		return nil, fmt.Errorf("job params: %w", err)
	}
	var done, changed int64
	after := int64(0)
	for {
		var ids []int64
		var err error
		if params.Domain != "" {
			ids, err = a.st.DomainUserIDs(ctx, params.Domain, after, 200)
		} else {
			ids, err = a.st.UserIDs(ctx, after, 200)
		}
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			return map[string]int64{"users": done, "changed": changed}, nil
		}
		for _, id := range ids {
			after = id
			before, now, err := a.st.RecalculateUsage(ctx, id)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			done++
			if before != now {
				changed++
			}
		}
		if err := j.progress.Set(done, 0); err != nil {
			return nil, err
		}
	}
}
