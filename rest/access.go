package rest

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"basalt/store/admin"
)

// AdminView is an admin with its grants.
type AdminView struct {
	ID        int64       `json:"id"`
	Name      string      `json:"name"`
	Grants    []GrantView `json:"grants"`
	CreatedAt int64       `json:"createdAt"`
}

// GrantView is a grant of scopes over domains (none: every domain).
type GrantView struct {
	ID        int64    `json:"id"`
	Scopes    []string `json:"scopes"`
	Domains   []string `json:"domains"`
	CreatedAt int64    `json:"createdAt"`
}

// KeyView is an API key, never its secret.
type KeyView struct {
	ID         int64    `json:"id"`
	Admin      string   `json:"admin"`
	Name       string   `json:"name"`
	Prefix     string   `json:"prefix"`
	Scopes     []string `json:"scopes"`
	Domains    []string `json:"domains"`
	Networks   []string `json:"networks"`
	ExpiresAt  *string  `json:"expiresAt"`
	LastUsedAt *string  `json:"lastUsedAt"`
	RevokedAt  *string  `json:"revokedAt"`
	CreatedAt  string   `json:"createdAt"`
}

func stamp(unix int64) *string {
	if unix == 0 {
		return nil
	}
	s := time.Unix(unix, 0).UTC().Format(time.RFC3339)
	return &s
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func grantView(g admin.Grant) GrantView {
	return GrantView{ID: g.ID, Scopes: orEmpty(g.Scopes), Domains: orEmpty(g.Domains), CreatedAt: g.CreatedAt}
}

func adminView(a admin.Admin) AdminView {
	gs := make([]GrantView, 0, len(a.Grants))
	for _, g := range a.Grants {
		gs = append(gs, grantView(g))
	}
	return AdminView{ID: a.ID, Name: a.Name, Grants: gs, CreatedAt: a.CreatedAt}
}

func keyView(k admin.Key) KeyView {
	nets := []string{}
	for _, n := range k.Authority.Networks {
		nets = append(nets, n.String())
	}
	return KeyView{ID: k.ID, Admin: k.Admin, Name: k.Name, Prefix: k.Prefix, Scopes: orEmpty(k.Authority.Scopes),
		Domains: orEmpty(k.Authority.Domains), Networks: nets, ExpiresAt: stamp(k.Authority.Expires),
		LastUsedAt: stamp(k.LastUsedAt), RevokedAt: stamp(k.RevokedAt), CreatedAt: *stamp(k.CreatedAt)}
}

func (a *API) accessRoutes() []Route {
	key := Target("key", a.keyDomains)
	return []Route{
		{Method: http.MethodGet, Path: "/admins", Scope: "admins:read", Domain: Global(), Handle: a.listAdmins},
		{Method: http.MethodPost, Path: "/admins", Scope: "admins:write", Domain: Global(), Idempotent: true, Handle: a.createAdmin},
		{Method: http.MethodGet, Path: "/admins/{admin}", Scope: "admins:read", Domain: Global(), Handle: a.getAdmin},
		{Method: http.MethodDelete, Path: "/admins/{admin}", Scope: "admins:write", Domain: Global(), Handle: a.deleteAdmin},
		{Method: http.MethodPost, Path: "/admins/{admin}/grants", Scope: "admins:write", Domain: BodyDomains("domains"), Idempotent: true, Handle: a.addGrant},
		{Method: http.MethodDelete, Path: "/admins/{admin}/grants/{grant}", Scope: "admins:write", Domain: Target("grant", a.grantDomains), Handle: a.revokeGrant},
		{Method: http.MethodGet, Path: "/keys", Scope: "keys:read", Domain: Global(), Handle: a.listKeys},
		{Method: http.MethodPost, Path: "/keys", Scope: "keys:write", Domain: BodyDomains("domains"), Idempotent: true, Handle: a.createKey},
		{Method: http.MethodGet, Path: "/keys/{key}", Scope: "keys:read", Domain: key, Handle: a.getKey},
		{Method: http.MethodDelete, Path: "/keys/{key}", Scope: "keys:write", Domain: key, Handle: a.revokeKey},
	}
}

// keyDomains is a key's domains ("" for a key over every domain).
func (a *API) keyDomains(c *Ctx) ([]string, error) {
	id, err := c.ID("key")
	if err != nil {
		return nil, err
	}
	k, err := a.adm.KeyByID(c.Context(), id)
	if err != nil {
		return nil, err
	}
	if len(k.Authority.Domains) == 0 {
		return []string{""}, nil
	}
	return k.Authority.Domains, nil
}

func (a *API) grantDomains(c *Ctx) ([]string, error) {
	adm, err := a.adminParam(c)
	if err != nil {
		return nil, err
	}
	id, err := c.ID("grant")
	if err != nil {
		return nil, err
	}
	for _, g := range adm.Grants {
		if g.ID == id {
			if len(g.Domains) == 0 {
				return []string{""}, nil
			}
			return g.Domains, nil
		}
	}
	return nil, NotFound("No such grant.")
}

// adminParam is the admin the path names, by name.
func (a *API) adminParam(c *Ctx) (admin.Admin, error) {
	return a.adm.AdminByName(c.Context(), c.Param("admin"))
}

func (a *API) listAdmins(c *Ctx) error {
	var pos int64
	limit, _, err := c.Paging(&pos)
	if err != nil {
		return err
	}
	rows, err := a.adm.Admins(c.Context(), pos, limit+1)
	if err != nil {
		return err
	}
	return Page(c, rows, limit, func(x admin.Admin) any { return x.ID }, adminView)
}

type adminCreate struct {
	Name string `json:"name"`
}

func (a *API) createAdmin(c *Ctx) error {
	var in adminCreate
	if err := c.Decode(&in); err != nil {
		return err
	}
	if admin.CheckName(in.Name) != nil {
		return Invalid("name", "1 to 128 characters, no spaces or slashes")
	}
	x, err := a.adm.CreateAdmin(c.Context(), c.P, in.Name)
	if err != nil {
		return err
	}
	return c.Created("/admins/"+x.Name, adminView(x))
}

func (a *API) getAdmin(c *Ctx) error {
	x, err := a.adminParam(c)
	if err != nil {
		return err
	}
	return c.Resource(adminView(x))
}

func (a *API) deleteAdmin(c *Ctx) error {
	x, err := a.adminParam(c)
	if err != nil {
		return err
	}
	if err := c.IfMatch(adminView(x)); err != nil {
		return err
	}
	if x.ID == c.P.Admin.ID {
		return Conflict("self", "An admin cannot delete itself through its own key.")
	}
	if err := a.adm.DeleteAdmin(c.Context(), c.P, x.ID); err != nil {
		return err
	}
	return c.NoContent()
}

type grantCreate struct {
	Scopes  []string `json:"scopes"`
	Domains []string `json:"domains"`
}

func checkScopes(field string, ss []string) error {
	if len(ss) == 0 {
		return Invalid(field, "at least one scope")
	}
	var fe []FieldError
	for i, s := range ss {
		if err := admin.CheckScope(s); err != nil {
			fe = append(fe, FieldError{Field: field + "[" + strconv.Itoa(i) + "]", Message: err.Error()})
		}
	}
	if fe != nil {
		return Validation(fe...)
	}
	return nil
}

func normDomains(ds []string) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, strings.ToLower(strings.TrimSpace(d)))
	}
	return out
}

func (a *API) addGrant(c *Ctx) error {
	x, err := a.adminParam(c)
	if err != nil {
		return err
	}
	var in grantCreate
	if err := c.Decode(&in); err != nil {
		return err
	}
	if err := checkScopes("scopes", in.Scopes); err != nil {
		return err
	}
	g, err := a.adm.AddGrant(c.Context(), c.P, x.ID, admin.Authority{Scopes: in.Scopes, Domains: normDomains(in.Domains)})
	if err != nil {
		return err
	}
	return c.Created("/admins/"+x.Name, grantView(g))
}

func (a *API) revokeGrant(c *Ctx) error {
	x, err := a.adminParam(c)
	if err != nil {
		return err
	}
	id, err := c.ID("grant")
	if err != nil {
		return err
	}
	if err := a.adm.RevokeGrant(c.Context(), c.P, x.ID, id); err != nil {
		return err
	}
	return c.NoContent()
}

func (a *API) listKeys(c *Ctx) error {
	var pos int64
	limit, _, err := c.Paging(&pos)
	if err != nil {
		return err
	}
	var adminID int64
	if n := c.Query("admin"); n != "" {
		x, err := a.adm.AdminByName(c.Context(), n)
		if err != nil {
			return err
		}
		adminID = x.ID
	}
	rows, err := a.adm.Keys(c.Context(), adminID, pos, limit+1)
	if err != nil {
		return err
	}
	return Page(c, rows, limit, func(k admin.Key) any { return k.ID }, keyView)
}

type keyCreate struct {
	Admin     string   `json:"admin"`
	Name      string   `json:"name"`
	Scopes    []string `json:"scopes"`
	Domains   []string `json:"domains"`
	Networks  []string `json:"networks"`
	ExpiresAt string   `json:"expiresAt"`
}

// NewKeyView is a created key with its secret, shown this once.
type NewKeyView struct {
	KeyView
	Secret string `json:"secret"`
}

func (a *API) createKey(c *Ctx) error {
	var in keyCreate
	if err := c.Decode(&in); err != nil {
		return err
	}
	if err := checkScopes("scopes", in.Scopes); err != nil {
		return err
	}
	nets, err := admin.ParseNetworks(in.Networks)
	if err != nil {
		return Invalid("networks", err.Error())
	}
	var exp int64
	if in.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339, in.ExpiresAt)
		if err != nil {
			return Invalid("expiresAt", "an RFC 3339 date-time")
		}
		exp = t.Unix()
	}
	owner := c.P.Admin
	if in.Admin != "" && in.Admin != owner.Name {
		if owner, err = a.adm.AdminByName(c.Context(), in.Admin); err != nil {
			return Invalid("admin", "no such admin")
		}
	}
	k, secret, err := a.adm.CreateKey(c.Context(), c.P, admin.NewKey{AdminID: owner.ID, Name: in.Name,
		Authority: admin.Authority{Scopes: in.Scopes, Domains: normDomains(in.Domains), Networks: nets, Expires: exp}})
	if err != nil {
		return err
	}
	return c.Created("/keys/"+strconv.FormatInt(k.ID, 10), NewKeyView{KeyView: keyView(k), Secret: secret})
}

func (a *API) getKey(c *Ctx) error {
	id, err := c.ID("key")
	if err != nil {
		return err
	}
	k, err := a.adm.KeyByID(c.Context(), id)
	if err != nil {
		return err
	}
	return c.Resource(keyView(k))
}

func (a *API) revokeKey(c *Ctx) error {
	id, err := c.ID("key")
	if err != nil {
		return err
	}
	k, err := a.adm.KeyByID(c.Context(), id)
	if err != nil {
		return err
	}
	if err := c.IfMatch(keyView(k)); err != nil {
		return err
	}
	if _, err := a.adm.RevokeKey(c.Context(), c.P, id); err != nil {
		return err
	}
	return c.NoContent()
}
