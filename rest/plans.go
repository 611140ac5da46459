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

// Plan is a class of limits users are put on (0 unlimited).
type Plan struct {
	Name   string       `json:"name"`
	Limits store.Limits `json:"limits"`
}

func planView(p store.Plan) Plan { return Plan{Name: p.Name, Limits: p.Limits} }

func (a *API) planRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/plans", Scope: "plans:read", Domain: Shared(), Handle: a.listPlans},
		{Method: http.MethodPost, Path: "/plans", Scope: "plans:write", Domain: Global(), Idempotent: true, Handle: a.createPlan},
		{Method: http.MethodGet, Path: "/plans/{plan}", Scope: "plans:read", Domain: Shared(), Handle: a.getPlan},
		{Method: http.MethodPatch, Path: "/plans/{plan}", Scope: "plans:write", Domain: Global(), Handle: a.patchPlan},
		{Method: http.MethodDelete, Path: "/plans/{plan}", Scope: "plans:write", Domain: Global(), Handle: a.deletePlan},
		// Applying a plan changes users: users:write over their domain.
		{Method: http.MethodPost, Path: "/plans/{plan}/apply", Scope: "users:write", Domain: BodyDomainOrAddress("domain", "user"), Handle: a.applyPlan},
	}
}

func (a *API) listPlans(c *Ctx) error {
	var pos string
	limit, after, err := c.Paging(&pos)
	if err != nil {
		return err
	}
	ps, err := a.st.Plans(c.Context())
	if err != nil {
		return err
	}
	// Plans are few (classes of service, not accounts): the listing is
	// paged for the API's one shape, over the whole sorted list.
	rows := make([]store.Plan, 0, limit+1)
	for _, p := range ps {
		if (!after || p.Name > pos) && len(rows) <= limit {
			rows = append(rows, p)
		}
	}
	return Page(c, rows, limit, func(p store.Plan) any { return p.Name }, planView)
}

func checkPlanName(n string) error {
	if n == "" || len(n) > 64 || strings.ContainsAny(n, " \t\r\n/") {
		return Invalid("name", "1 to 64 characters, no spaces or slashes")
	}
	return nil
}

func checkLimits(l store.Limits) error {
	var fe []FieldError
	for _, f := range []struct {
		n string
		v int64
	}{{"quotaBytes", l.QuotaBytes}, {"maxRecvSize", l.MaxRecvSize}, {"maxSendSize", l.MaxSendSize},
		{"dailySendBytes", l.DailySendBytes}, {"dailyRecvBytes", l.DailyRecvBytes}, {"dailyRecvPerIP", l.DailyRecvPerIP}} {
		if f.v < 0 {
			fe = append(fe, FieldError{Field: "limits." + f.n, Message: "must not be negative"})
		}
	}
	if fe != nil {
		return Validation(fe...)
	}
	return nil
}

func (a *API) createPlan(c *Ctx) error {
	var in Plan
	if err := c.Decode(&in); err != nil {
		return err
	}
	if err := checkPlanName(in.Name); err != nil {
		return err
	}
	if err := checkLimits(in.Limits); err != nil {
		return err
	}
	p, err := a.st.SavePlanAudited(c.Context(), in.Name, in.Limits, func(cur *store.Plan) error {
		if cur != nil {
			return Conflict("exists", "A plan of this name exists.")
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.Created("/plans/"+p.Name, planView(p))
}

func (a *API) getPlan(c *Ctx) error {
	p, err := a.st.PlanByName(c.Context(), c.Param("plan"))
	if err != nil {
		return err
	}
	return c.Resource(planView(p))
}

type planPatch struct {
	Limits store.Limits `json:"limits"`
}

func (a *API) patchPlan(c *Ctx) error {
	p, err := a.st.PlanByName(c.Context(), c.Param("plan"))
	if err != nil {
		return err
	}
	if err := c.IfMatch(planView(p)); err != nil {
		return err
	}
	edit := planPatch{Limits: p.Limits}
	if err := c.Patch(&edit); err != nil {
		return err
	}
	if err := checkLimits(edit.Limits); err != nil {
		return err
	}
	same := stillAsRead("plan", p, planView)
	p, err = a.st.SavePlanAudited(c.Context(), p.Name, edit.Limits, func(cur *store.Plan) error {
		if cur == nil {
			return NotFound("The plan was deleted.")
		}
		return same(*cur)
	})
	if err != nil {
		return err
	}
	return c.Resource(planView(p))
}

func (a *API) deletePlan(c *Ctx) error {
	p, err := a.st.PlanByName(c.Context(), c.Param("plan"))
	if err != nil {
		return err
	}
	if err := c.IfMatch(planView(p)); err != nil {
		return err
	}
	if err := a.st.DeletePlan(c.Context(), p.Name, func(cur store.Plan) error { return c.IfMatch(planView(cur)) }); err != nil {
		return err
	}
	return c.NoContent()
}

type applyBody struct {
	// Domain puts all of a domain's users on the plan; User one of them.
	Domain string `json:"domain"`
	User   string `json:"user"`
}

func (a *API) applyPlan(c *Ctx) error {
	var in applyBody
	if err := c.Decode(&in); err != nil {
		return err
	}
	p, err := a.st.PlanByName(c.Context(), c.Param("plan"))
	if err != nil {
		return err
	}
	if (in.Domain == "") == (in.User == "") {
		return Invalid("domain", "give either domain (every user of it) or user (one address)")
	}
	if in.User != "" {
		// The locator found no domain in the body: the user's is checked
		// here, as the route's scope over the user's domain.
		addr, err := store.NormalizeAddress(in.User)
		if err != nil {
			return Invalid("user", "not an address")
		}
		if err := c.CheckDomain(domainOf(addr)); err != nil {
			return err
		}
		u, err := a.st.UserByAddress(c.Context(), addr)
		if err != nil {
			return err
		}
		if err := a.st.SetUserPlan(c.Context(), u.ID, p.Name); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"plan": p.Name, "applied": 1})
	}
	d, err := a.st.DomainInfo(c.Context(), in.Domain)
	if err != nil {
		return err
	}
	if d.Users > a.cfg.InlineUsers {
		return c.StartJob(jobApplyPlan, d.Name, map[string]string{"domain": d.Name, "plan": p.Name})
	}
	n, err := a.applyPlanToDomain(c.Context(), d.Name, p.Name, nil)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"plan": p.Name, "applied": n})
}

// applyPlanToDomain puts the domain's users not on the plan on it, a batch
// at a time; run again it does what is left.
func (a *API) applyPlanToDomain(ctx context.Context, domain, plan string, p admin.Progress) (int64, error) {
	var done, after int64
	for {
		ids, err := a.st.DomainUsersNotOnPlan(ctx, domain, plan, after, 100)
		if err != nil {
			return done, err
		}
		if len(ids) == 0 {
			return done, nil
		}
		for _, id := range ids {
			after = id
			if err := a.st.SetUserPlan(ctx, id, plan); err != nil {
				if p == nil || errors.Is(err, store.ErrDomainLimit) {
					return done, err
				}
				p.Fail(fmt.Sprint("user ", id), err)
				continue
			}
			done++
		}
		if p != nil {
			if err := p.Set(done, done+int64(len(ids))); err != nil {
				return done, err
			}
		}
	}
}

func (a *API) applyPlanJob(ctx context.Context, j admin.Job, p admin.Progress) (any, error) {
	var params struct {
		Domain string `json:"domain"`
		Plan   string `json:"plan"`
	}
	if err := decodeStrict([]byte(j.Params), &params); err != nil {
		return nil, fmt.Errorf("job params: %w", err)
	}
	ctx = store.WithActor(ctx, store.Actor{AdminID: j.AdminID, KeyID: j.KeyID, Name: fmt.Sprint("job:", j.ID)})
	n, err := a.applyPlanToDomain(ctx, params.Domain, params.Plan, p)
	if err != nil {
		return nil, err
	}
	return map[string]any{"domain": params.Domain, "plan": params.Plan, "applied": n}, nil
}
