package rest

import (
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"basalt/store"
	"basalt/store/signup"
)

// The site's registration guard (store/signup): the networks banned from
// registering, the invite codes, and the accounts waiting for an
// administrator's approval. Bans and invites are the whole site's
// (Global); a pending account is in a domain, so a domain-limited key
// sees and approves its own domains' (Listed, PathAddress).

func (a *API) signupRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/banned-networks", Scope: "signup:read", Domain: Global(), Handle: a.listBans},
		{Method: http.MethodPost, Path: "/banned-networks", Scope: "signup:write", Domain: Global(), Idempotent: true, Handle: a.createBan},
		{Method: http.MethodDelete, Path: "/banned-networks/{ban}", Scope: "signup:write", Domain: Global(), Handle: a.deleteBan},
		{Method: http.MethodGet, Path: "/invites", Scope: "signup:read", Domain: Global(), Handle: a.listInvites},
		{Method: http.MethodPost, Path: "/invites", Scope: "signup:write", Domain: Global(), Idempotent: true, Handle: a.createInvite},
		{Method: http.MethodDelete, Path: "/invites/{code}", Scope: "signup:write", Domain: Global(), Handle: a.deleteInvite},
		{Method: http.MethodGet, Path: "/signups/pending", Scope: "signup:read", Domain: Listed(), Handle: a.listPending},
		{Method: http.MethodPost, Path: "/signups/pending/{user}/approve", Scope: "signup:write", Domain: PathAddress("user"), Handle: a.approveSignup},
	}
}

// signups is the store's registration guard (a view over the store; cheap
// to make).
func (a *API) signups() *signup.Signup { return signup.New(a.st) }

// BanView is a banned network.
type BanView struct {
	ID        int64   `json:"id"`
	Network   string  `json:"network"`
	Reason    string  `json:"reason"`
	CreatedAt string  `json:"createdAt"`
	ExpiresAt *string `json:"expiresAt"`
}

func banView(b signup.Ban) BanView {
	return BanView{ID: b.ID, Network: b.Network, Reason: b.Reason, CreatedAt: *stamp(b.Created), ExpiresAt: stamp(b.Expires)}
}

// InviteView is an invite code.
type InviteView struct {
	Code      string  `json:"code"`
	UsesLeft  int     `json:"usesLeft"`
	Note      string  `json:"note"`
	CreatedAt string  `json:"createdAt"`
	ExpiresAt *string `json:"expiresAt"`
}

func inviteView(i signup.Invite) InviteView {
	return InviteView{Code: i.Code, UsesLeft: i.UsesLeft, Note: i.Note, CreatedAt: *stamp(i.Created), ExpiresAt: stamp(i.Expires)}
}

// PendingView is an account waiting for approval.
type PendingView struct {
	ID        int64  `json:"id"`
	Address   string `json:"address"`
	Domain    string `json:"domain"`
	CreatedAt string `json:"createdAt"`
}

func pendingView(u store.User) PendingView {
	return PendingView{ID: u.ID, Address: u.Address, Domain: domainOf(u.Address), CreatedAt: *stamp(u.CreatedAt)}
}

// maxText bounds a reason or a note (the store clips longer ones
// silently; the API says so instead).
const maxText = 255

// expiry reads an optional RFC 3339 expiry that must be in the future.
func expiry(field string, s *string) (time.Time, *FieldError) {
	if s == nil || *s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, *s)
	if err != nil {
		return time.Time{}, &FieldError{Field: field, Message: "an RFC 3339 date-time"}
	}
	if !t.After(time.Now()) {
		return time.Time{}, &FieldError{Field: field, Message: "a time in the future"}
	}
	return t, nil
}

// parseNetwork reads a CIDR network, or one address as the network of
// that address alone (/32, /128).
func parseNetwork(s string) (netip.Prefix, bool) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p, true
	}
	if ip, err := netip.ParseAddr(s); err == nil && ip.Zone() == "" {
		return netip.PrefixFrom(ip, ip.BitLen()), true
	}
	return netip.Prefix{}, false
}

func (a *API) listBans(c *Ctx) error {
	var pos string
	limit, _, err := c.Paging(&pos)
	if err != nil {
		return err
	}
	rows, err := a.signups().BansAfter(c.Context(), pos, limit+1)
	if err != nil {
		return err
	}
	return Page(c, rows, limit, func(b signup.Ban) any { return b.Network }, banView)
}

type banCreate struct {
	Network   string  `json:"network"`
	Reason    string  `json:"reason"`
	ExpiresAt *string `json:"expiresAt"`
}

// createBan bans a network from registering: 201 for a new ban, 200 when
// the network was banned already (its reason and expiry replaced), as
// the site's table holds one ban per network.
func (a *API) createBan(c *Ctx) error {
	var in banCreate
	if err := c.Decode(&in); err != nil {
		return err
	}
	var errs []FieldError
	network, ok := parseNetwork(in.Network)
	if !ok {
		errs = append(errs, FieldError{Field: "network", Message: "a network in CIDR form (192.0.2.0/24, 2001:db8::/48) or one address"})
	}
	if strings.TrimSpace(in.Reason) == "" {
		errs = append(errs, FieldError{Field: "reason", Message: "required"})
	} else if len(in.Reason) > maxText {
		errs = append(errs, FieldError{Field: "reason", Message: "at most 255 characters"})
	}
	exp, fe := expiry("expiresAt", in.ExpiresAt)
	if fe != nil {
		errs = append(errs, *fe)
	}
	if len(errs) > 0 {
		return Validation(errs...)
	}
	g := a.signups()
	prev, existed, err := g.BanOn(c.Context(), network)
	if err != nil {
		return err
	}
	b, err := g.Ban(c.Context(), network, strings.TrimSpace(in.Reason), exp)
	if err != nil {
		return err
	}
	v := banView(b)
	e := store.AuditEntry{Action: "signup.ban", Target: b.Network, After: v}
	if existed {
		e.Before = banView(prev)
	}
	c.Audit(e)
	if existed {
		return c.Resource(v)
	}
	return c.Created("/banned-networks/"+strconv.FormatInt(b.ID, 10), v)
}

// deleteBan lifts a ban (an expired one too: it is still a row).
func (a *API) deleteBan(c *Ctx) error {
	id, err := c.ID("ban")
	if err != nil {
		return err
	}
	g := a.signups()
	b, err := g.BanByID(c.Context(), id)
	if err != nil {
		return err
	}
	if err := c.IfMatch(banView(b)); err != nil {
		return err
	}
	if err := g.Unban(c.Context(), id); err != nil {
		return err
	}
	c.Audit(store.AuditEntry{Action: "signup.unban", Target: b.Network, Before: banView(b)})
	return c.NoContent()
}

func (a *API) listInvites(c *Ctx) error {
	var pos string
	limit, _, err := c.Paging(&pos)
	if err != nil {
		return err
	}
	rows, err := a.signups().InvitesAfter(c.Context(), pos, limit+1)
	if err != nil {
		return err
	}
	return Page(c, rows, limit, func(i signup.Invite) any { return i.Code }, inviteView)
}

type inviteCreate struct {
	Uses      *int    `json:"uses"`
	Note      string  `json:"note"`
	ExpiresAt *string `json:"expiresAt"`
}

// maxUses bounds an invite code's uses: a code good for more is open
// registration under another name.
const maxUses = 10000

// codeHint names an invite code in the audit log without handing a
// usable code to whoever may read the log but not the invites.
func codeHint(code string) string {
	if len(code) <= 4 {
		return code
	}
	return code[:4] + "…"
}

// createInvite makes an invite code; the answer carries the code.
func (a *API) createInvite(c *Ctx) error {
	var in inviteCreate
	if err := c.Decode(&in); err != nil {
		return err
	}
	var errs []FieldError
	uses := 1
	if in.Uses != nil {
		uses = *in.Uses
	}
	if uses < 1 || uses > maxUses {
		errs = append(errs, FieldError{Field: "uses", Message: "an integer from 1 to " + strconv.Itoa(maxUses)})
	}
	if len(in.Note) > maxText {
		errs = append(errs, FieldError{Field: "note", Message: "at most 255 characters"})
	}
	exp, fe := expiry("expiresAt", in.ExpiresAt)
	if fe != nil {
		errs = append(errs, *fe)
	}
	if len(errs) > 0 {
		return Validation(errs...)
	}
	inv, err := a.signups().CreateInvite(c.Context(), uses, in.Note, exp)
	if err != nil {
		return err
	}
	v := inviteView(inv)
	logged := v
	logged.Code = codeHint(v.Code)
	c.Audit(store.AuditEntry{Action: "signup.invite.create", Target: logged.Code, After: logged})
	return c.Created("/invites/"+url.PathEscape(inv.Code), v)
}

// deleteInvite withdraws an invite code, used up or not.
func (a *API) deleteInvite(c *Ctx) error {
	g := a.signups()
	inv, err := g.InviteByCode(c.Context(), c.Param("code"))
	if errors.Is(err, store.ErrNotFound) {
		return NotFound("No such invite code.")
	}
	if err != nil {
		return err
	}
	if err := c.IfMatch(inviteView(inv)); err != nil {
		return err
	}
	if err := g.DeleteInvite(c.Context(), inv.Code); err != nil {
		return err
	}
	// Withdrawn, the code opens nothing: the log may name it whole.
	c.Audit(store.AuditEntry{Action: "signup.invite.delete", Target: inv.Code, Before: inviteView(inv)})
	return c.NoContent()
}

func (a *API) listPending(c *Ctx) error {
	var pos int64
	limit, _, err := c.Paging(&pos)
	if err != nil {
		return err
	}
	var only []string
	if ds, all := c.Domains(); !all {
		only = append(only, ds...)
	}
	if d := c.Touched(); len(d) > 0 {
		// ?domain=, checked against the key by the locator.
		only = d
	}
	rows, err := a.signups().PendingAfter(c.Context(), pos, only, limit+1)
	if err != nil {
		return err
	}
	return Page(c, rows, limit, func(u store.User) any { return u.ID }, pendingView)
}

// approveSignup lets a pending account log in; the answer is the user.
func (a *API) approveSignup(c *Ctx) error {
	u, err := a.st.UserByAddress(c.Context(), c.Param("user"))
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
		return NotFound("No such user.")
	}
	if err != nil {
		return err
	}
	until, reason := signup.PendingLock()
	if u.LockReason != reason || u.LockedUntil != until {
		return Conflict("not-pending", "The account is not waiting for approval.")
	}
	if err := a.signups().Approve(c.Context(), u.ID); err != nil {
		return err
	}
	c.Audit(store.AuditEntry{Action: "signup.approve", Target: u.Address, Domain: domainOf(u.Address),
		Before: map[string]any{"lockedUntil": u.LockedUntil, "lockReason": u.LockReason},
		After:  map[string]any{"lockedUntil": 0, "lockReason": ""}})
	return a.answerUser(c, u.ID)
}
