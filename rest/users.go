package rest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"basalt/session"
	"basalt/store"
)

// The users resource: IndiMail's vadduser, vuserinfo, vmoduser, vdeluser,
// vrenameuser, vpasswd, vsetuserquota, vlimit (per user), vacation and
// vmoveuser, by address: /users/{address}.

// UserView is a user as the API shows it.
type UserView struct {
	ID          int64                `json:"id"`
	Address     string               `json:"address"`
	Domain      string               `json:"domain"`
	Plan        string               `json:"plan"`
	Secure      bool                 `json:"secure"`
	Status      string               `json:"status"`
	SuspendedAt int64                `json:"suspendedAt"`
	SuspendNote string               `json:"suspendReason"`
	LockedUntil int64                `json:"lockedUntil"`
	LockReason  string               `json:"lockReason"`
	Access      Access               `json:"access"`
	Limits      store.LimitOverrides `json:"limits"`
	Effective   store.Limits         `json:"effectiveLimits"`
	Usage       Usage                `json:"usage"`
	LastLogins  []LoginView          `json:"lastLogins"`
	Identifiers []string             `json:"identifiers"`
	Partition   string               `json:"partition"`
	CreatedAt   int64                `json:"createdAt"`
	UpdatedAt   int64                `json:"updatedAt"`
}

// UserSummary is a user in a listing.
type UserSummary struct {
	ID        int64  `json:"id"`
	Address   string `json:"address"`
	Domain    string `json:"domain"`
	Plan      string `json:"plan"`
	Status    string `json:"status"`
	Usage     Usage  `json:"usage"`
	CreatedAt int64  `json:"createdAt"`
}

// Usage is what a user's quota counts, against its quota (0 unlimited).
type Usage struct {
	Bytes      int64 `json:"bytes"`
	Messages   int64 `json:"messages"`
	QuotaBytes int64 `json:"quotaBytes"`
}

// LoginView is a user's last login over one protocol.
type LoginView struct {
	Protocol string `json:"protocol"`
	At       int64  `json:"at"`
	IP       string `json:"ip"`
}

// Access says which protocols a user may log in over.
type Access struct {
	IMAP    bool `json:"imap"`
	POP3    bool `json:"pop3"`
	SMTP    bool `json:"smtp"`
	Webmail bool `json:"webmail"`
}

func accessOf(denied store.ProtocolSet) Access {
	return Access{IMAP: !denied.Has(store.ProtoIMAP), POP3: !denied.Has(store.ProtoPOP3),
		SMTP: !denied.Has(store.ProtoSMTP), Webmail: !denied.Has(store.ProtoWebmail)}
}

func (a Access) denied() store.ProtocolSet {
	var s store.ProtocolSet
	s = s.With(store.ProtoIMAP, !a.IMAP)
	s = s.With(store.ProtoPOP3, !a.POP3)
	s = s.With(store.ProtoSMTP, !a.SMTP)
	return s.With(store.ProtoWebmail, !a.Webmail)
}

func statusOf(u store.User, now time.Time) string {
	switch {
	case u.Suspended():
		return string(store.StatusSuspended)
	case u.Locked(now):
		return string(store.StatusLocked)
	}
	return string(store.StatusActive)
}

func userView(info store.UserInfo) UserView {
	u := info.User
	v := UserView{ID: u.ID, Address: u.Address, Domain: domainOf(u.Address), Plan: info.Plan, Secure: u.Secure,
		Status: statusOf(u, time.Now()), SuspendedAt: u.SuspendedAt, SuspendNote: u.SuspendReason,
		LockedUntil: u.LockedUntil, LockReason: u.LockReason, Access: accessOf(u.DeniedProtocols), Limits: u.Overrides,
		Effective: info.Limits, Usage: Usage{Bytes: u.UsedBytes, Messages: u.MessageCount, QuotaBytes: info.Limits.QuotaBytes},
		LastLogins: []LoginView{}, Identifiers: info.Identifiers, Partition: u.BlobPartition, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
	if v.Identifiers == nil {
		v.Identifiers = []string{}
	}
	for _, l := range info.Logins {
		v.LastLogins = append(v.LastLogins, LoginView{Protocol: string(l.Protocol), At: l.At, IP: l.IP})
	}
	return v
}

const (
	jobMoveUser      = "user.move"
	jobBulletin      = "bulletin.send"
	jobInactiveUsers = "maintenance.inactive-users"
	jobRecount       = "maintenance.recalculate-usage"
)

func (a *API) userRoutes() []Route {
	u := PathAddress("address")
	r := func(method, path, scope string, h func(*Ctx) error) Route {
		return Route{Method: method, Path: "/users/{address}" + path, Scope: scope, Domain: u, Handle: h}
	}
	return []Route{
		{Method: http.MethodGet, Path: "/users", Scope: "users:read", Domain: Listed(), Handle: a.listUsers},
		{Method: http.MethodPost, Path: "/users", Scope: "users:write", Domain: BodyAddress("address"), Idempotent: true, Handle: a.createUser},
		r(http.MethodGet, "", "users:read", a.getUser),
		r(http.MethodPatch, "", "users:write", a.patchUser),
		r(http.MethodDelete, "", "users:write", a.deleteUser),
		r(http.MethodPost, "/rename", "users:write", a.renameUser),
		r(http.MethodPost, "/password", "users:write", a.setPassword),
		r(http.MethodGet, "/quota", "users:read", a.getQuota),
		r(http.MethodPut, "/quota", "users:write", a.putQuota),
		r(http.MethodGet, "/limits", "users:read", a.getLimits),
		r(http.MethodPut, "/limits", "users:write", a.putLimits),
		r(http.MethodGet, "/access", "users:read", a.getAccess),
		r(http.MethodPut, "/access", "users:write", a.putAccess),
		r(http.MethodPost, "/suspend", "users:write", a.suspendUser),
		r(http.MethodPost, "/unsuspend", "users:write", a.unsuspendUser),
		r(http.MethodPost, "/lock", "users:write", a.lockUser),
		r(http.MethodDelete, "/lock", "users:write", a.unlockUser),
		r(http.MethodGet, "/vacation", "users:read", a.getVacation),
		r(http.MethodPut, "/vacation", "users:write", a.putVacation),
		r(http.MethodGet, "/forwarding", "users:read", a.getForwarding),
		r(http.MethodPut, "/forwarding", "users:write", a.putForwarding),
		r(http.MethodGet, "/sessions", "sessions:read", a.listSessions),
		r(http.MethodDelete, "/sessions", "sessions:write", a.revokeSessions),
		r(http.MethodDelete, "/sessions/{session}", "sessions:write", a.revokeSession),
		r(http.MethodPost, "/move", "users:write", a.moveUser),
		r(http.MethodGet, "/shares", "shares:read", a.listShares),
		r(http.MethodPut, "/shares", "shares:write", a.putShare),
		r(http.MethodDelete, "/shares", "shares:write", a.deleteShare),
	}
}

// user finds the user the path names.
func (a *API) user(c *Ctx) (store.UserInfo, error) {
	u, err := a.st.UserByAddress(c.Context(), c.Param("address"))
	if err != nil {
		if errors.Is(err, store.ErrInvalid) {
			return store.UserInfo{}, NotFound("No such user.")
		}
		return store.UserInfo{}, err
	}
	return a.st.Info(c.Context(), u.ID)
}

// answerUser reads the user again and answers it.
func (a *API) answerUser(c *Ctx, id int64) error {
	info, err := a.st.Info(c.Context(), id)
	if err != nil {
		return err
	}
	return c.Resource(userView(info))
}

type userPos struct {
	C string `json:"c"`
}

func (a *API) listUsers(c *Ctx) error {
	var pos userPos
	limit, _, err := c.Paging(&pos)
	if err != nil {
		return err
	}
	f := store.UserFilter{Q: c.Query("q"), Domain: c.Query("domain"), Plan: c.Query("plan"),
		Status: store.UserStatus(c.Query("status")), Sort: store.UserSort(c.Query("sort")), Cursor: pos.C, Limit: limit + 1}
	switch f.Status {
	case store.StatusAny, store.StatusActive, store.StatusSuspended, store.StatusLocked:
	default:
		return Invalid("status", "one of active, suspended, locked")
	}
	switch f.Sort {
	case "", store.SortAddress, store.SortAddressDesc, store.SortCreated, store.SortCreatedDesc:
	default:
		return Invalid("sort", "one of address, -address, created, -created")
	}
	if ds, all := c.Domains(); !all && f.Domain == "" {
		f.Only = ds
	}
	page, err := a.st.ListUsers(c.Context(), f)
	if err != nil {
		return err
	}
	plans, err := a.plansByID(c.Context())
	if err != nil {
		return err
	}
	now := time.Now()
	return Page(c, page.Users, limit, func(u store.User) any { return userPos{C: f.CursorOf(u)} }, func(u store.User) UserSummary {
		s := UserSummary{ID: u.ID, Address: u.Address, Domain: domainOf(u.Address), Status: statusOf(u, now),
			Usage: Usage{Bytes: u.UsedBytes, Messages: u.MessageCount, QuotaBytes: a.st.LimitsAmong(u, plans).QuotaBytes}, CreatedAt: u.CreatedAt}
		if u.PlanID.Valid {
			s.Plan = plans[u.PlanID.Int64].Name
		}
		return s
	})
}

// plansByID maps plan ids to plans (plans are few).
func (a *API) plansByID(ctx context.Context) (map[int64]store.Plan, error) {
	ps, err := a.st.Plans(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[int64]store.Plan, len(ps))
	for _, p := range ps {
		m[p.ID] = p
	}
	return m, nil
}

type userCreate struct {
	Address          string                `json:"address"`
	Password         string                `json:"password"`
	PasswordHash     string                `json:"passwordHash"`
	GeneratePassword bool                  `json:"generatePassword"`
	Secure           bool                  `json:"secure"`
	Plan             string                `json:"plan"`
	Limits           *store.LimitOverrides `json:"limits"`
	Access           *Access               `json:"access"`
}

// UserCreated is a new user, with the password made for it when one was
// asked for: shown this once.
type UserCreated struct {
	UserView
	GeneratedPassword string `json:"generatedPassword,omitempty"`
}

func (a *API) createUser(c *Ctx) error {
	var in userCreate
	if err := c.Decode(&in); err != nil {
		return err
	}
	if _, err := store.NormalizeAddress(in.Address); err != nil {
		return Invalid("address", "not an address")
	}
	ways := 0
	for _, b := range []bool{in.Password != "", in.PasswordHash != "", in.GeneratePassword} {
		if b {
			ways++
		}
	}
	if ways != 1 {
		return Invalid("password", "give exactly one of password, passwordHash, generatePassword")
	}
	if in.Limits != nil {
		if fe := checkOverrides("limits.", *in.Limits); fe != nil {
			return fe
		}
	}
	ctx := c.Context()
	var o store.LimitOverrides
	if in.Limits != nil {
		o = *in.Limits
	}
	var (
		u   store.User
		gen string
		err error
	)
	switch {
	case in.PasswordHash != "":
		if in.Secure {
			return Invalid("passwordHash", "a secure user's keys are sealed by its password: give the password, not a hash")
		}
		if err := session.CheckImportedHash(in.PasswordHash); err != nil {
			return Invalid("passwordHash", err.Error())
		}
		u, err = a.deps.Session.ImportUser(ctx, session.ImportedUser{Address: in.Address, Hash: in.PasswordHash, Plan: in.Plan, Overrides: o})
	case in.GeneratePassword:
		u, gen, err = a.deps.Session.CreateUserRandom(ctx, session.NewUser{Address: in.Address, Secure: in.Secure, Plan: in.Plan, Overrides: o})
	default:
		u, err = a.deps.Session.CreateUser(ctx, session.NewUser{Address: in.Address, Password: in.Password, Secure: in.Secure, Plan: in.Plan, Overrides: o})
	}
	if errors.Is(err, session.ErrWeakPass) {
		return Invalid("password", err.Error())
	}
	if err != nil {
		return planProblem(err, "plan")
	}
	if in.Access != nil {
		if err := a.st.SetDeniedProtocols(ctx, u.ID, in.Access.denied()); err != nil {
			return err
		}
	}
	info, err := a.st.Info(ctx, u.ID)
	if err != nil {
		return err
	}
	return c.Created("/users/"+u.Address, UserCreated{UserView: userView(info), GeneratedPassword: gen})
}

// planProblem names the field of a plan that does not exist.
func planProblem(err error, field string) error {
	// The store names the plan it did not find ("plan gold: not found").
	if errors.Is(err, store.ErrNotFound) && strings.Contains(err.Error(), "plan ") {
		return Invalid(field, "no such plan")
	}
	return err
}

// checkOverrides refuses negative limits; prefix ("limits.", or "" for a
// body that is the limits) starts each field's name.
func checkOverrides(prefix string, o store.LimitOverrides) *Problem {
	var fe []FieldError
	for _, l := range []struct {
		name string
		v    *int64
	}{{"quotaBytes", o.QuotaBytes}, {"maxRecvSize", o.MaxRecvSize}, {"maxSendSize", o.MaxSendSize},
		{"dailySendBytes", o.DailySendBytes}, {"dailyRecvBytes", o.DailyRecvBytes}, {"dailyRecvPerIP", o.DailyRecvPerIP}} {
		if l.v != nil && *l.v < 0 {
			fe = append(fe, FieldError{Field: prefix + l.name, Message: "must not be negative"})
		}
	}
	if fe != nil {
		return Validation(fe...)
	}
	return nil
}

func (a *API) getUser(c *Ctx) error {
	info, err := a.user(c)
	if err != nil {
		return err
	}
	return c.Resource(userView(info))
}

// userPatch is what a PATCH of a user may change.
type userPatch struct {
	Plan   string               `json:"plan"`
	Limits store.LimitOverrides `json:"limits"`
	Access Access               `json:"access"`
}

func (a *API) patchUser(c *Ctx) error {
	info, err := a.user(c)
	if err != nil {
		return err
	}
	before := userView(info)
	if err := c.IfMatch(before); err != nil {
		return err
	}
	edit := userPatch{Plan: info.Plan, Limits: info.Overrides, Access: before.Access}
	if err := c.Patch(&edit); err != nil {
		return err
	}
	if fe := checkOverrides("limits.", edit.Limits); fe != nil {
		return fe
	}
	ctx := c.Context()
	plan := edit.Plan
	if plan == info.Plan {
		plan = ""
	}
	// The patch was applied to what was read; the store checks, under the
	// user's row lock, that no administrative change came in between.
	err = a.st.UpdateUser(ctx, info.ID, store.UserUpdate{Plan: plan, Overrides: edit.Limits, Denied: edit.Access.denied()}, unchanged(info.User))
	if err != nil {
		return planProblem(err, "plan")
	}
	after, err := a.st.Info(ctx, info.ID)
	if err != nil {
		return err
	}
	c.Audit(store.AuditEntry{Action: "user.update", Target: info.Address, Domain: domainOf(info.Address), Before: editable(before), After: editable(userView(after))})
	return c.Resource(userView(after))
}

// adminState is what administration changes of a user (not its mail,
// which changes its usage and serial all the time).
type adminState struct {
	Address       string
	Plan          int64
	Limits        store.LimitOverrides
	Denied        store.ProtocolSet
	Suspended     int64
	SuspendReason string
	LockedUntil   int64
	LockReason    string
	Partition     string
	Updated       int64
}

func adminStateOf(u store.User) adminState {
	return adminState{Address: u.Address, Plan: u.PlanID.Int64, Limits: u.Overrides, Denied: u.DeniedProtocols, Suspended: u.SuspendedAt,
		SuspendReason: u.SuspendReason, LockedUntil: u.LockedUntil, LockReason: u.LockReason, Partition: u.BlobPartition, Updated: u.UpdatedAt}
}

// unchanged is the precondition of a change made on the strength of
// having read read: the user, as the store finds it with its row locked,
// has not been changed by anyone meanwhile (412 otherwise).
func unchanged(read store.User) func(store.User) error {
	return stillAsRead("user", read, adminStateOf)
}

// editable is the editable part of a user, for the audit log.
func editable(v UserView) userPatch {
	return userPatch{Plan: v.Plan, Limits: v.Limits, Access: v.Access}
}

func (a *API) deleteUser(c *Ctx) error {
	info, err := a.user(c)
	if err != nil {
		return err
	}
	if err := c.IfMatch(userView(info)); err != nil {
		return err
	}
	if err := a.st.DeleteUserIf(c.Context(), info.ID, unchanged(info.User)); err != nil {
		return err
	}
	return c.NoContent()
}

type renameUserBody struct {
	NewAddress string `json:"newAddress"`
}

func (a *API) renameUser(c *Ctx) error {
	var in renameUserBody
	if err := c.Decode(&in); err != nil {
		return err
	}
	to, err := store.NormalizeAddress(in.NewAddress)
	if err != nil {
		return Invalid("newAddress", "not an address")
	}
	if err := c.CheckDomain(domainOf(to)); err != nil {
		return err
	}
	info, err := a.user(c)
	if err != nil {
		return err
	}
	u, err := a.st.RenameUser(c.Context(), info.ID, to)
	if err != nil {
		return err
	}
	c.W.Header().Set("Content-Location", "/api/v1/users/"+u.Address)
	return a.answerUser(c, u.ID)
}

type passwordBody struct {
	Password    string `json:"password"`
	Generate    bool   `json:"generate"`
	OldPassword string `json:"oldPassword"`
	NewKeys     bool   `json:"newKeys"`
}

// setPassword is vpasswd. A secure user's private key is sealed by the
// password: with oldPassword it is re-sealed (old mail stays readable);
// without, only newKeys (a new key pair; old mail unreadable) will do.
func (a *API) setPassword(c *Ctx) error {
	var in passwordBody
	if err := c.Decode(&in); err != nil {
		return err
	}
	if (in.Password == "") == !in.Generate {
		return Invalid("password", "give a password or generate: true")
	}
	info, err := a.user(c)
	if err != nil {
		return err
	}
	pw := in.Password
	if in.Generate {
		if pw, err = session.RandomPassword(20); err != nil {
			return err
		}
	}
	ctx := c.Context()
	switch {
	case in.OldPassword != "":
		err = a.deps.Session.ChangePassword(ctx, info.ID, in.OldPassword, pw)
		if errors.Is(err, session.ErrAuthFailed) {
			return Invalid("oldPassword", "not the user's password")
		}
	case info.Secure && !in.NewKeys:
		return Invalid("newKeys", "the user has secure storage: give oldPassword to re-seal its key, or newKeys: true to make a new key pair (old mail becomes unreadable)")
	default:
		err = a.deps.Session.ResetPassword(ctx, info.ID, pw, in.NewKeys)
	}
	if errors.Is(err, session.ErrWeakPass) {
		return Invalid("password", err.Error())
	}
	if err != nil {
		return err
	}
	c.Audit(store.AuditEntry{Action: "user.password", Target: info.Address, Domain: domainOf(info.Address),
		After: map[string]bool{"newKeys": info.Secure && in.OldPassword == "", "generated": in.Generate}})
	if in.Generate {
		return c.JSON(http.StatusOK, map[string]string{"address": info.Address, "generatedPassword": pw})
	}
	return c.NoContent()
}

// Quota is a user's own quota, the one in force and what it uses.
type Quota struct {
	QuotaBytes  *int64 `json:"quotaBytes"`
	Effective   int64  `json:"effectiveQuotaBytes"`
	UsedBytes   int64  `json:"usedBytes"`
	Messages    int64  `json:"messages"`
	PercentUsed int64  `json:"percentUsed"`
	Unlimited   bool   `json:"unlimited"`
}

func quotaView(info store.UserInfo) Quota {
	q := Quota{QuotaBytes: info.Overrides.QuotaBytes, Effective: info.Limits.QuotaBytes, UsedBytes: info.UsedBytes,
		Messages: info.MessageCount, Unlimited: info.Limits.QuotaBytes == 0}
	if q.Effective > 0 {
		q.PercentUsed = info.UsedBytes * 100 / q.Effective
	}
	return q
}

func (a *API) getQuota(c *Ctx) error {
	info, err := a.user(c)
	if err != nil {
		return err
	}
	return c.Resource(quotaView(info))
}

type quotaBody struct {
	QuotaBytes *int64 `json:"quotaBytes"`
}

// putQuota is vsetuserquota: the user's own quota (null: the plan's).
func (a *API) putQuota(c *Ctx) error {
	var in quotaBody
	if err := c.Decode(&in); err != nil {
		return err
	}
	if in.QuotaBytes != nil && *in.QuotaBytes < 0 {
		return Invalid("quotaBytes", "must not be negative")
	}
	info, err := a.user(c)
	if err != nil {
		return err
	}
	if err := c.IfMatch(quotaView(info)); err != nil {
		return err
	}
	o := info.Overrides
	o.QuotaBytes = in.QuotaBytes
	if err := a.st.SetLimits(c.Context(), info.ID, "", o); err != nil {
		return err
	}
	after, err := a.st.Info(c.Context(), info.ID)
	if err != nil {
		return err
	}
	c.Audit(store.AuditEntry{Action: "user.quota", Target: info.Address, Domain: domainOf(info.Address), Before: quotaView(info), After: quotaView(after)})
	return c.Resource(quotaView(after))
}

// LimitsView is a user's own limits (absent: its plan's) and those in force.
type LimitsView struct {
	Plan      string               `json:"plan"`
	Own       store.LimitOverrides `json:"own"`
	Effective store.Limits         `json:"effective"`
}

func limitsView(info store.UserInfo) LimitsView {
	return LimitsView{Plan: info.Plan, Own: info.Overrides, Effective: info.Limits}
}

func (a *API) getLimits(c *Ctx) error {
	info, err := a.user(c)
	if err != nil {
		return err
	}
	return c.Resource(limitsView(info))
}

// putLimits replaces the user's own limits: a member left out falls
// through to the plan.
func (a *API) putLimits(c *Ctx) error {
	var in store.LimitOverrides
	if err := c.Decode(&in); err != nil {
		return err
	}
	if fe := checkOverrides("", in); fe != nil {
		return fe
	}
	info, err := a.user(c)
	if err != nil {
		return err
	}
	if err := c.IfMatch(limitsView(info)); err != nil {
		return err
	}
	if err := a.st.SetLimits(c.Context(), info.ID, "", in); err != nil {
		return err
	}
	after, err := a.st.Info(c.Context(), info.ID)
	if err != nil {
		return err
	}
	c.Audit(store.AuditEntry{Action: "user.limits", Target: info.Address, Domain: domainOf(info.Address), Before: info.Overrides, After: after.Overrides})
	return c.Resource(limitsView(after))
}

func (a *API) getAccess(c *Ctx) error {
	info, err := a.user(c)
	if err != nil {
		return err
	}
	return c.Resource(accessOf(info.DeniedProtocols))
}

func (a *API) putAccess(c *Ctx) error {
	var in struct {
		IMAP    *bool `json:"imap"`
		POP3    *bool `json:"pop3"`
		SMTP    *bool `json:"smtp"`
		Webmail *bool `json:"webmail"`
	}
	if err := c.Decode(&in); err != nil {
		return err
	}
	if in.IMAP == nil || in.POP3 == nil || in.SMTP == nil || in.Webmail == nil {
		return Invalid("imap", "give all of imap, pop3, smtp and webmail")
	}
	info, err := a.user(c)
	if err != nil {
		return err
	}
	before := accessOf(info.DeniedProtocols)
	if err := c.IfMatch(before); err != nil {
		return err
	}
	after := Access{IMAP: *in.IMAP, POP3: *in.POP3, SMTP: *in.SMTP, Webmail: *in.Webmail}
	if err := a.st.SetDeniedProtocols(c.Context(), info.ID, after.denied()); err != nil {
		return err
	}
	c.Audit(store.AuditEntry{Action: "user.access", Target: info.Address, Domain: domainOf(info.Address), Before: before, After: after})
	return c.Resource(after)
}

type reasonBody struct {
	Reason string `json:"reason"`
}

// suspendUser: no login anywhere; mail is still received.
func (a *API) suspendUser(c *Ctx) error {
	var in reasonBody
	if b, err := c.rawBody(); err != nil {
		return err
	} else if len(b) > 0 {
		if err := c.Decode(&in); err != nil {
			return err
		}
	}
	info, err := a.user(c)
	if err != nil {
		return err
	}
	if err := a.st.Suspend(c.Context(), info.ID, in.Reason); err != nil {
		return err
	}
	c.Audit(store.AuditEntry{Action: "user.suspend", Target: info.Address, Domain: domainOf(info.Address),
		Before: map[string]int64{"suspendedAt": info.SuspendedAt}, After: map[string]string{"reason": in.Reason}})
	return a.answerUser(c, info.ID)
}

func (a *API) unsuspendUser(c *Ctx) error {
	info, err := a.user(c)
	if err != nil {
		return err
	}
	if err := a.st.Unsuspend(c.Context(), info.ID); err != nil {
		return err
	}
	c.Audit(store.AuditEntry{Action: "user.unsuspend", Target: info.Address, Domain: domainOf(info.Address),
		Before: map[string]any{"suspendedAt": info.SuspendedAt, "reason": info.SuspendReason}})
	return a.answerUser(c, info.ID)
}

type lockBody struct {
	Until  time.Time `json:"until"`
	Reason string    `json:"reason"`
}

// lockUser locks a user out until a time, with a reason.
func (a *API) lockUser(c *Ctx) error {
	var in lockBody
	if err := c.Decode(&in); err != nil {
		return err
	}
	if !in.Until.After(time.Now()) {
		return Invalid("until", "a time in the future")
	}
	if len(in.Reason) > 255 {
		return Invalid("reason", "at most 255 characters")
	}
	info, err := a.user(c)
	if err != nil {
		return err
	}
	if err := a.st.Lock(c.Context(), info.ID, in.Until, in.Reason); err != nil {
		return err
	}
	c.Audit(store.AuditEntry{Action: "user.lock", Target: info.Address, Domain: domainOf(info.Address),
		Before: map[string]any{"lockedUntil": info.LockedUntil}, After: map[string]any{"lockedUntil": in.Until.Unix(), "reason": in.Reason}})
	return a.answerUser(c, info.ID)
}

func (a *API) unlockUser(c *Ctx) error {
	info, err := a.user(c)
	if err != nil {
		return err
	}
	if err := a.st.Lock(c.Context(), info.ID, time.Time{}, ""); err != nil {
		return err
	}
	c.Audit(store.AuditEntry{Action: "user.unlock", Target: info.Address, Domain: domainOf(info.Address),
		Before: map[string]any{"lockedUntil": info.LockedUntil, "reason": info.LockReason}})
	return a.answerUser(c, info.ID)
}

// VacationView is a user's auto-reply.
type VacationView struct {
	Enabled         bool       `json:"enabled"`
	Subject         string     `json:"subject"`
	Body            string     `json:"body"`
	Start           *time.Time `json:"start"`
	End             *time.Time `json:"end"`
	IntervalSeconds int64      `json:"intervalSeconds"`
}

func vacationView(v store.Vacation) VacationView {
	out := VacationView{Enabled: v.Enabled, Subject: v.Subject, Body: v.Body, IntervalSeconds: int64(v.Interval / time.Second)}
	if !v.Start.IsZero() {
		t := v.Start.UTC()
		out.Start = &t
	}
	if !v.End.IsZero() {
		t := v.End.UTC()
		out.End = &t
	}
	return out
}

// ForwardingView is where a user's mail is forwarded.
type ForwardingView struct {
	To       []string `json:"to"`
	KeepCopy bool     `json:"keepCopy"`
}

func forwardingView(f store.Forwarding) ForwardingView {
	v := ForwardingView{To: f.To, KeepCopy: f.KeepCopy}
	if v.To == nil {
		v.To = []string{}
	}
	return v
}

// rules reads the user's delivery rules.
func (a *API) rules(c *Ctx) (store.UserInfo, store.Vacation, store.Forwarding, error) {
	info, err := a.user(c)
	if err != nil {
		return info, store.Vacation{}, store.Forwarding{}, err
	}
	v, f, err := a.st.Account(info.ID, nil).Rules(c.Context())
	return info, v, f, err
}

func (a *API) getVacation(c *Ctx) error {
	_, v, _, err := a.rules(c)
	if err != nil {
		return err
	}
	return c.Resource(vacationView(v))
}

func (a *API) putVacation(c *Ctx) error {
	var in VacationView
	if err := c.Decode(&in); err != nil {
		return err
	}
	if in.IntervalSeconds < 0 {
		return Invalid("intervalSeconds", "must not be negative")
	}
	nv := store.Vacation{Enabled: in.Enabled, Subject: in.Subject, Body: in.Body, Interval: time.Duration(in.IntervalSeconds) * time.Second}
	if in.Start != nil {
		nv.Start = *in.Start
	}
	if in.End != nil {
		nv.End = *in.End
	}
	if !nv.End.IsZero() && nv.End.Before(nv.Start) {
		return Invalid("end", "before start")
	}
	info, v, f, err := a.rules(c)
	if err != nil {
		return err
	}
	if err := c.IfMatch(vacationView(v)); err != nil {
		return err
	}
	if err := a.st.Account(info.ID, nil).SaveRules(c.Context(), nv, f); err != nil {
		return err
	}
	c.Audit(store.AuditEntry{Action: "user.vacation", Target: info.Address, Domain: domainOf(info.Address), Before: vacationView(v), After: vacationView(nv)})
	return c.Resource(vacationView(nv))
}

func (a *API) getForwarding(c *Ctx) error {
	_, _, f, err := a.rules(c)
	if err != nil {
		return err
	}
	return c.Resource(forwardingView(f))
}

func (a *API) putForwarding(c *Ctx) error {
	var in ForwardingView
	if err := c.Decode(&in); err != nil {
		return err
	}
	var fe []FieldError
	for i, t := range in.To {
		n, err := store.NormalizeAddress(t)
		if err != nil {
			fe = append(fe, FieldError{Field: "to[" + strconv.Itoa(i) + "]", Message: "not an address"})
			continue
		}
		in.To[i] = n
	}
	if fe != nil {
		return Validation(fe...)
	}
	info, v, f, err := a.rules(c)
	if err != nil {
		return err
	}
	if err := c.IfMatch(forwardingView(f)); err != nil {
		return err
	}
	nf := store.Forwarding{To: in.To, KeepCopy: in.KeepCopy}
	if err := a.st.Account(info.ID, nil).SaveRules(c.Context(), v, nf); err != nil {
		if errors.Is(err, store.ErrInvalid) {
			return Invalid("to", err.Error())
		}
		return err
	}
	c.Audit(store.AuditEntry{Action: "user.forwarding", Target: info.Address, Domain: domainOf(info.Address), Before: forwardingView(f), After: forwardingView(nf)})
	return c.Resource(forwardingView(nf))
}

// SessionView is one of a user's sessions: a web session, or a live
// protocol connection (IMAP, POP3, SMTP submission) on any node.
type SessionView struct {
	ID string `json:"id"`
	// Protocol is "webmail" for a web session, else the connection's.
	Protocol string `json:"protocol"`
	// CreatedAt is when the session began: the login.
	CreatedAt int64 `json:"createdAt"`
	// ExpiresAt and IdleUntil are a web session's.
	ExpiresAt int64 `json:"expiresAt,omitempty"`
	IdleUntil int64 `json:"idleUntil,omitempty"`
	// RemoteAddress is a protocol connection's client (host:port).
	RemoteAddress string `json:"remoteAddress,omitempty"`
	// Node is the node a protocol connection is open on.
	Node string `json:"node,omitempty"`
}

func (a *API) listSessions(c *Ctx) error {
	info, err := a.user(c)
	if err != nil {
		return err
	}
	ws, err := a.st.WebSessions(c.Context(), info.ID)
	if err != nil {
		return err
	}
	ps, err := a.deps.Session.ProtocolSessions(c.Context(), info.ID)
	if err != nil {
		return err
	}
	items := make([]SessionView, 0, len(ws)+len(ps))
	for _, w := range ws {
		items = append(items, SessionView{ID: w.ID, Protocol: string(store.ProtoWebmail), CreatedAt: w.Created, ExpiresAt: w.Expires, IdleUntil: w.IdleUntil})
	}
	for _, p := range ps {
		items = append(items, SessionView{ID: p.ID, Protocol: string(p.Protocol), CreatedAt: p.Started.Unix(), RemoteAddress: p.Remote, Node: p.Node})
	}
	// Newest first, as each list comes.
	slices.SortStableFunc(items, func(x, y SessionView) int { return cmp.Compare(y.CreatedAt, x.CreatedAt) })
	return c.JSON(http.StatusOK, map[string]any{"items": items})
}

// revokeSessions ends every session of the user: its web sessions, and its
// protocol connections on every node.
func (a *API) revokeSessions(c *Ctx) error {
	info, err := a.user(c)
	if err != nil {
		return err
	}
	n, err := a.st.RevokeWebSessions(c.Context(), info.ID, "")
	if err != nil {
		return err
	}
	p, err := a.deps.Session.RevokeProtocol(c.Context(), info.ID, "")
	c.Audit(store.AuditEntry{Action: "user.sessions.revoke", Target: info.Address, Domain: domainOf(info.Address), After: map[string]int{"revoked": n, "protocolRevoked": p}})
	if err != nil {
		return err
	}
	return c.NoContent()
}

// revokeSession ends one session. A protocol connection is ended where it
// is open, through the bus when that is another node: 204 when it is
// listed on any node, 404 when on none.
func (a *API) revokeSession(c *Ctx) error {
	info, err := a.user(c)
	if err != nil {
		return err
	}
	id := c.Param("session")
	if session.IsProtocolSessionID(id) {
		n, err := a.deps.Session.RevokeProtocol(c.Context(), info.ID, id)
		switch {
		case err != nil:
			return err
		case n == 0:
			return NotFound("No such session.")
		}
		c.Audit(store.AuditEntry{Action: "user.sessions.revoke", Target: info.Address, Domain: domainOf(info.Address), After: map[string]any{"session": id}})
		return c.NoContent()
	}
	if _, err := a.st.RevokeWebSessions(c.Context(), info.ID, id); err != nil {
		return err
	}
	c.Audit(store.AuditEntry{Action: "user.sessions.revoke", Target: info.Address, Domain: domainOf(info.Address), After: map[string]string{"session": id}})
	return c.NoContent()
}

type moveBody struct {
	Partition string `json:"partition"`
}

// moveUser is vmoveuser: the user's message files move to another
// partition in a job.
func (a *API) moveUser(c *Ctx) error {
	var in moveBody
	if err := c.Decode(&in); err != nil {
		return err
	}
	ok := false
	for _, p := range a.st.Partitions() {
		ok = ok || p == in.Partition
	}
	if !ok {
		return Invalid("partition", fmt.Sprintf("not a configured partition (%v)", a.st.Partitions()))
	}
	info, err := a.user(c)
	if err != nil {
		return err
	}
	return c.StartJob(jobMoveUser, domainOf(info.Address), map[string]any{"user": info.ID, "address": info.Address, "partition": in.Partition})
}

// moveUserJob runs a move; run again, it moves what is left.
func (a *API) moveUserJob(ctx context.Context, j jobRun) (any, error) {
	var params struct {
		User      int64  `json:"user"`
		Address   string `json:"address"`
		Partition string `json:"partition"`
	}
	if err := decodeStrict([]byte(j.job.Params), &params); err != nil {
		return nil, fmt.Errorf("job params: %w", err)
	}
	p, err := a.st.MoveUser(ctx, params.User, params.Partition, func(p store.MoveProgress) {
		j.progress.Set(int64(p.Moved+p.Skipped), 0)
	})
	if err != nil {
		return nil, err
	}
	a.st.Audit(ctx, store.AuditEntry{Action: "user.move", Target: params.Address, Domain: domainOf(params.Address), After: map[string]any{"partition": params.Partition, "moved": p.Moved}})
	return map[string]any{"address": params.Address, "partition": params.Partition, "moved": p.Moved, "bytes": p.Bytes, "skipped": p.Skipped}, nil
}
