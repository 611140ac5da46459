package rest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"basalt/store"
	"basalt/store/admin"
)

// Domain is a domain as the API shows it.
type Domain struct {
	Name      string       `json:"name"`
	Aliases   []string     `json:"aliases"`
	Limits    DomainLimits `json:"limits"`
	Usage     DomainUsage  `json:"usage"`
	CreatedAt int64        `json:"createdAt"`
	UpdatedAt int64        `json:"updatedAt"`
}

// DomainLimits are a domain's limits (0 unlimited).
type DomainLimits struct {
	MaxUsers      int64  `json:"maxUsers"`
	MaxAliases    int64  `json:"maxAliases"`
	MaxQuotaBytes int64  `json:"maxQuotaBytes"`
	DefaultPlan   string `json:"defaultPlan"`
}

// DomainUsage is what a domain holds.
type DomainUsage struct {
	Users     int64 `json:"users"`
	Aliases   int64 `json:"aliases"`
	UsedBytes int64 `json:"usedBytes"`
}

func domainView(d store.DomainInfo) Domain {
	return Domain{Name: d.Name, Aliases: d.Names, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
		Limits: DomainLimits(d.DomainLimits),
		Usage:  DomainUsage{Users: d.Users, Aliases: d.Aliases, UsedBytes: d.UsedBytes}}
}

const (
	jobPurgeDomain = "domain.purge"
	jobApplyPlan   = "plan.apply"
)

func (a *API) domainRoutes() []Route {
	d := PathDomain("domain")
	return []Route{
		{Method: http.MethodGet, Path: "/domains", Scope: "domains:read", Domain: Listed(), Handle: a.listDomains},
		{Method: http.MethodPost, Path: "/domains", Scope: "domains:write", Domain: BodyDomain("name"), Idempotent: true, Handle: a.createDomain},
		{Method: http.MethodGet, Path: "/domains/{domain}", Scope: "domains:read", Domain: d, Handle: a.getDomain},
		{Method: http.MethodPatch, Path: "/domains/{domain}", Scope: "domains:write", Domain: d, Handle: a.patchDomain},
		{Method: http.MethodDelete, Path: "/domains/{domain}", Scope: "domains:write", Domain: d, Handle: a.deleteDomain},
		{Method: http.MethodPost, Path: "/domains/{domain}/rename", Scope: "domains:write", Domain: d, Handle: a.renameDomain},
		{Method: http.MethodPost, Path: "/domains/{domain}/aliases", Scope: "domains:write", Domain: d, Idempotent: true, Handle: a.addDomainAlias},
		{Method: http.MethodDelete, Path: "/domains/{domain}/aliases/{alias}", Scope: "domains:write", Domain: d, Handle: a.deleteDomainAlias},
		{Method: http.MethodGet, Path: "/domains/{domain}/catchall", Scope: "domains:read", Domain: d, Handle: a.getCatchAll},
		{Method: http.MethodPut, Path: "/domains/{domain}/catchall", Scope: "domains:write", Domain: d, Handle: a.putCatchAll},
		{Method: http.MethodDelete, Path: "/domains/{domain}/catchall", Scope: "domains:write", Domain: d, Handle: a.deleteCatchAll},
		{Method: http.MethodGet, Path: "/domains/{domain}/dns", Scope: "domains:read", Domain: d, Handle: a.domainDNS},
	}
}

type domainPos struct {
	Name string `json:"n,omitempty"`
	ID   int64  `json:"i,omitempty"`
}

func (a *API) listDomains(c *Ctx) error {
	var pos domainPos
	limit, after, err := c.Paging(&pos)
	if err != nil {
		return err
	}
	sort := store.DomainSort(c.Query("sort"))
	switch sort {
	case "", store.DomainByName, store.DomainByNameDesc, store.DomainByCreated, store.DomainByCreatedDesc:
	default:
		return Invalid("sort", "one of name, -name, createdAt, -createdAt")
	}
	q := store.DomainQuery{Sort: sort, After: after, AfterName: pos.Name, AfterID: pos.ID, Q: c.Query("q"), Limit: limit + 1}
	if ds, all := c.Domains(); !all {
		q.Only = append([]string{}, ds...)
	}
	if d := c.Query("domain"); d != "" {
		q.Only = []string{strings.ToLower(d)}
	}
	rows, err := a.st.DomainPage(c.Context(), q)
	if err != nil {
		return err
	}
	return Page(c, rows, limit, func(d store.DomainInfo) any { return domainPos{Name: d.Name, ID: d.ID} }, domainView)
}

type domainCreate struct {
	Name   string        `json:"name"`
	Limits *DomainLimits `json:"limits"`
}

func (a *API) createDomain(c *Ctx) error {
	var in domainCreate
	if err := c.Decode(&in); err != nil {
		return err
	}
	if _, err := store.NormalizeDomain(in.Name); err != nil {
		return Invalid("name", "not a domain name")
	}
	var l store.DomainLimits
	if in.Limits != nil {
		l = store.DomainLimits(*in.Limits)
	}
	d, err := a.st.CreateDomain(c.Context(), in.Name, l)
	if err != nil {
		return limitsProblem(err)
	}
	return c.Created("/domains/"+d.Name, domainView(d))
}

// limitsProblem names the field of a refused limit.
func limitsProblem(err error) error {
	if errors.Is(err, store.ErrInvalid) && strings.Contains(err.Error(), "plan") {
		return Invalid("limits.defaultPlan", "no such plan")
	}
	if errors.Is(err, store.ErrInvalid) && strings.Contains(err.Error(), "negative") {
		return Invalid("limits", "limits must not be negative")
	}
	return err
}

func (a *API) getDomain(c *Ctx) error {
	d, err := a.st.DomainInfo(c.Context(), c.Param("domain"))
	if err != nil {
		return err
	}
	return c.Resource(domainView(d))
}

// domainPatch is what a PATCH of a domain may change.
type domainPatch struct {
	Limits DomainLimits `json:"limits"`
}

func (a *API) patchDomain(c *Ctx) error {
	d, err := a.st.DomainInfo(c.Context(), c.Param("domain"))
	if err != nil {
		return err
	}
	if err := c.IfMatch(domainView(d)); err != nil {
		return err
	}
	edit := domainPatch{Limits: DomainLimits(d.DomainLimits)}
	if err := c.Patch(&edit); err != nil {
		return err
	}
	// The patch was applied to what was read; the store checks, under the
	// row's lock, that it is still what is there.
	after, err := a.st.SetDomainLimitsIf(c.Context(), d.Name, store.DomainLimits(edit.Limits), stillAsRead("domain", d, domainView))
	if err != nil {
		return limitsProblem(err)
	}
	return c.Resource(domainView(after))
}

func (a *API) deleteDomain(c *Ctx) error {
	d, err := a.st.DomainInfo(c.Context(), c.Param("domain"))
	if err != nil {
		return err
	}
	if err := c.IfMatch(domainView(d)); err != nil {
		return err
	}
	purge := c.Query("purge")
	if purge != "" && purge != "true" && purge != "false" {
		return Invalid("purge", "true or false")
	}
	if d.Users > 0 {
		if purge != "true" {
			return Conflict("not-empty", fmt.Sprintf("The domain has %d users; delete them first, or ask for ?purge=true.", d.Users))
		}
		return c.StartJob(jobPurgeDomain, d.Name, map[string]string{"domain": d.Name})
	}
	if err := a.st.DeleteDomainAuditedIf(c.Context(), d.Name, c.ifMatchDomain); err != nil {
		return err
	}
	return c.NoContent()
}

// ifMatchDomain is IfMatch on a domain as the store has it locked.
func (c *Ctx) ifMatchDomain(d store.DomainInfo) error { return c.IfMatch(domainView(d)) }

// purgeDomain deletes a domain's users a batch at a time, then the
// domain. Run again after an interruption it deletes what is left.
func (a *API) purgeDomain(ctx context.Context, j admin.Job, p admin.Progress) (any, error) {
	var params struct {
		Domain string `json:"domain"`
	}
	if err := decodeStrict([]byte(j.Params), &params); err != nil {
		return nil, fmt.Errorf("job params: %w", err)
	}
	ctx = store.WithActor(ctx, store.Actor{AdminID: j.AdminID, KeyID: j.KeyID, Name: "job:" + fmt.Sprint(j.ID)})
	d, err := a.st.DomainInfo(ctx, params.Domain)
	if errors.Is(err, store.ErrNotFound) {
		return map[string]any{"domain": params.Domain, "deletedUsers": j.Progress}, nil
	}
	if err != nil {
		return nil, err
	}
	total, done := j.Progress+d.Users, j.Progress
	for {
		ids, err := a.st.DomainUserIDs(ctx, d.Name, 0, 100)
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			break
		}
		for _, id := range ids {
			if err := a.st.DeleteUser(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			done++
		}
		if err := p.Set(done, total); err != nil {
			return nil, err
		}
	}
	if err := a.st.DeleteDomainAudited(ctx, d.Name); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	return map[string]any{"domain": d.Name, "deletedUsers": done}, nil
}

type renameBody struct {
	NewName string `json:"newName"`
}

func (a *API) renameDomain(c *Ctx) error {
	var in renameBody
	if err := c.Decode(&in); err != nil {
		return err
	}
	to, err := store.NormalizeDomain(in.NewName)
	if err != nil {
		return Invalid("newName", "not a domain name")
	}
	if err := c.CheckDomain(to); err != nil {
		return err
	}
	d, err := a.st.RenameDomain(c.Context(), c.Param("domain"), to)
	if err != nil {
		return err
	}
	c.W.Header().Set("Content-Location", "/api/v1/domains/"+d.Name)
	return c.Resource(domainView(d))
}

type aliasBody struct {
	Name string `json:"name"`
}

func (a *API) addDomainAlias(c *Ctx) error {
	var in aliasBody
	if err := c.Decode(&in); err != nil {
		return err
	}
	n, err := store.NormalizeDomain(in.Name)
	if err != nil {
		return Invalid("name", "not a domain name")
	}
	// Mail to the alias's name becomes the domain's: the key must reach
	// that name too, or a domain-limited key could claim anyone's domain.
	if err := c.CheckDomain(n); err != nil {
		return err
	}
	d, err := a.st.DomainInfo(c.Context(), c.Param("domain"))
	if err != nil {
		return err
	}
	if err := a.st.AddDomainAlias(c.Context(), n, d.Name); err != nil {
		return err
	}
	d, err = a.st.DomainInfo(c.Context(), d.Name)
	if err != nil {
		return err
	}
	return c.Created("/domains/"+d.Name, domainView(d))
}

func (a *API) deleteDomainAlias(c *Ctx) error {
	d, err := a.st.DomainInfo(c.Context(), c.Param("domain"))
	if err != nil {
		return err
	}
	n, err := store.NormalizeDomain(c.Param("alias"))
	if err != nil {
		return NotFound("No such domain alias.")
	}
	found := false
	for _, x := range d.Names {
		found = found || x == n
	}
	if !found {
		return NotFound("No such domain alias of " + d.Name + ".")
	}
	if err := a.st.DeleteDomainAlias(c.Context(), n); err != nil {
		return err
	}
	return c.NoContent()
}

// CatchAll is where mail to unknown addresses of a domain goes.
type CatchAll struct {
	Targets []string `json:"targets"`
}

func (a *API) catchAll(ctx context.Context, domain string) (store.DomainInfo, CatchAll, error) {
	d, err := a.st.DomainInfo(ctx, domain)
	if err != nil {
		return d, CatchAll{}, err
	}
	as, err := a.st.Aliases(ctx, d.Name)
	if err != nil {
		return d, CatchAll{}, err
	}
	ca := CatchAll{Targets: []string{}}
	for _, al := range as {
		if al.Pattern == "*@"+d.Name {
			ca.Targets = append(ca.Targets, al.Target)
		}
	}
	return d, ca, nil
}

func (a *API) getCatchAll(c *Ctx) error {
	_, ca, err := a.catchAll(c.Context(), c.Param("domain"))
	if err != nil {
		return err
	}
	return c.Resource(ca)
}

func (a *API) putCatchAll(c *Ctx) error {
	d, cur, err := a.catchAll(c.Context(), c.Param("domain"))
	if err != nil {
		return err
	}
	if err := c.IfMatch(cur); err != nil {
		return err
	}
	var in CatchAll
	if err := c.Decode(&in); err != nil {
		return err
	}
	if len(in.Targets) == 0 {
		return Invalid("targets", "at least one address (DELETE removes the catch-all)")
	}
	var fe []FieldError
	want := map[string]bool{}
	for i, t := range in.Targets {
		n, err := store.NormalizeAddress(t)
		if err != nil {
			fe = append(fe, FieldError{Field: fmt.Sprintf("targets[%d]", i), Message: "not an address"})
			continue
		}
		want[n] = true
	}
	if fe != nil {
		return Validation(fe...)
	}
	pattern := "*@" + d.Name
	have := map[string]bool{}
	for _, t := range cur.Targets {
		have[t] = true
		if !want[t] {
			if err := a.st.DeleteAlias(c.Context(), pattern, t); err != nil {
				return err
			}
		}
	}
	for t := range want {
		if !have[t] {
			if _, err := a.st.AddAlias(c.Context(), pattern, t); err != nil {
				return err
			}
		}
	}
	_, after, err := a.catchAll(c.Context(), d.Name)
	if err != nil {
		return err
	}
	return c.Resource(after)
}

func (a *API) deleteCatchAll(c *Ctx) error {
	d, cur, err := a.catchAll(c.Context(), c.Param("domain"))
	if err != nil {
		return err
	}
	if err := c.IfMatch(cur); err != nil {
		return err
	}
	if len(cur.Targets) == 0 {
		return NotFound("The domain has no catch-all.")
	}
	if err := a.st.DeleteAlias(c.Context(), "*@"+d.Name, ""); err != nil {
		return err
	}
	return c.NoContent()
}

// DNSRecord is one record a domain needs.
type DNSRecord struct {
	Type     string `json:"type"`
	Name     string `json:"name"`
	Value    string `json:"value"`
	Priority int    `json:"priority,omitempty"`
	Purpose  string `json:"purpose"`
}

func (a *API) domainDNS(c *Ctx) error {
	d, err := a.st.DomainInfo(c.Context(), c.Param("domain"))
	if err != nil {
		return err
	}
	host := a.cfg.Hostname
	if host == "" {
		host = "mail." + d.Name
	}
	names := append([]string{d.Name}, d.Names...)
	recs := []DNSRecord{}
	for _, n := range names {
		recs = append(recs,
			DNSRecord{Type: "MX", Name: n + ".", Value: host + ".", Priority: 10, Purpose: "mail for the domain is delivered to this server (RFC 5321 5.1)"},
			DNSRecord{Type: "TXT", Name: n + ".", Value: "v=spf1 mx -all", Purpose: "SPF (RFC 7208): only the domain's MX hosts send its mail"},
			DNSRecord{Type: "TXT", Name: "_dmarc." + n + ".", Value: "v=DMARC1; p=quarantine; adkim=s; aspf=s", Purpose: "DMARC (RFC 7489)"},
			DNSRecord{Type: "SRV", Name: "_submission._tcp." + n + ".", Value: "0 1 587 " + host + ".", Priority: 0, Purpose: "mail submission (RFC 6186)"},
			DNSRecord{Type: "SRV", Name: "_imaps._tcp." + n + ".", Value: "0 1 993 " + host + ".", Purpose: "IMAP over TLS (RFC 6186)"},
			DNSRecord{Type: "SRV", Name: "_pop3s._tcp." + n + ".", Value: "0 1 995 " + host + ".", Purpose: "POP3 over TLS (RFC 6186)"},
			DNSRecord{Type: "CNAME", Name: "autoconfig." + n + ".", Value: host + ".", Purpose: "Thunderbird autoconfiguration"},
			DNSRecord{Type: "SRV", Name: "_autodiscover._tcp." + n + ".", Value: "0 1 443 " + host + ".", Purpose: "Outlook autodiscover"},
		)
	}
	// No DKIM record: Basalt does not sign outgoing mail (delivery has no
	// signer), and a published key nobody signs with only misleads.
	return c.Resource(map[string]any{"domain": d.Name, "records": recs})
}
