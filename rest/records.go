package rest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"basalt/store"
	"basalt/store/admin"
)

func (a *API) recordRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/audit", Scope: "audit:read", Domain: Listed(), Handle: a.listAudit},
		{Method: http.MethodGet, Path: "/jobs", Scope: "jobs:read", Domain: Listed(), Handle: a.listJobs},
		{Method: http.MethodGet, Path: "/jobs/{job}", Scope: "jobs:read", Domain: Target("job", a.jobDomains), Handle: a.getJob},
		{Method: http.MethodGet, Path: "/stats", Scope: "stats:read", Domain: Global(), Handle: a.serverStats},
		{Method: http.MethodGet, Path: "/stats/domains/{domain}", Scope: "stats:read", Domain: PathDomain("domain"), Handle: a.domainStats},
		{Method: http.MethodGet, Path: "/stats/users/{address}", Scope: "stats:read", Domain: PathAddress("address"), Handle: a.userStats},
	}
}

// AuditView is one audit record.
type AuditView struct {
	ID     int64           `json:"id"`
	At     string          `json:"at"`
	Actor  string          `json:"actor"`
	Admin  int64           `json:"adminId"`
	Key    int64           `json:"keyId"`
	Action string          `json:"action"`
	Target string          `json:"target"`
	Domain string          `json:"domain"`
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
	Client string          `json:"client"`
}

func rawOrNull(s string) json.RawMessage {
	if s == "" || !json.Valid([]byte(s)) {
		return json.RawMessage("null")
	}
	return json.RawMessage(s)
}

func auditView(r admin.AuditRecord) AuditView {
	return AuditView{ID: r.ID, At: *stamp(r.At), Actor: r.Actor, Admin: r.AdminID, Key: r.KeyID, Action: r.Action,
		Target: r.Target, Domain: r.Domain, Before: rawOrNull(r.Before), After: rawOrNull(r.After), Client: r.Client}
}

// timeParam reads an RFC 3339 query parameter as Unix seconds.
func timeParam(c *Ctx, name string) (int64, error) {
	s := c.Query(name)
	if s == "" {
		return 0, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return 0, Invalid(name, "an RFC 3339 date-time")
	}
	return t.Unix(), nil
}

func intParam(c *Ctx, name string) (int64, error) {
	s := c.Query(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, Invalid(name, "a positive integer")
	}
	return n, nil
}

func (a *API) listAudit(c *Ctx) error {
	var pos int64
	limit, _, err := c.Paging(&pos)
	if err != nil {
		return err
	}
	q := admin.AuditQuery{Before: pos, Limit: limit + 1, Action: c.Query("action"), Target: c.Query("target"), Domain: c.Query("domain")}
	if q.AdminID, err = intParam(c, "adminId"); err != nil {
		return err
	}
	if q.KeyID, err = intParam(c, "keyId"); err != nil {
		return err
	}
	if q.Since, err = timeParam(c, "since"); err != nil {
		return err
	}
	if q.Until, err = timeParam(c, "until"); err != nil {
		return err
	}
	if ds, all := c.Domains(); !all {
		q.Domains = append([]string{}, ds...)
	}
	rows, err := a.adm.Audit(c.Context(), q)
	if err != nil {
		return err
	}
	return Page(c, rows, limit, func(r admin.AuditRecord) any { return r.ID }, auditView)
}

// JobView is a job to poll.
type JobView struct {
	ID         int64           `json:"id"`
	Kind       string          `json:"kind"`
	State      string          `json:"state"`
	Domain     string          `json:"domain"`
	Params     json.RawMessage `json:"params"`
	Progress   int64           `json:"progress"`
	Total      int64           `json:"total"`
	Result     json.RawMessage `json:"result"`
	Errors     []string        `json:"errors"`
	Attempts   int             `json:"attempts"`
	CreatedAt  string          `json:"createdAt"`
	StartedAt  *string         `json:"startedAt"`
	FinishedAt *string         `json:"finishedAt"`
}

func jobView(j admin.Job) JobView {
	return JobView{ID: j.ID, Kind: j.Kind, State: j.State, Domain: j.Domain, Params: rawOrNull(string(j.Params)),
		Progress: j.Progress, Total: j.Total, Result: rawOrNull(j.Result), Errors: j.ErrorList(), Attempts: j.Attempts,
		CreatedAt: *stamp(j.CreatedAt), StartedAt: stamp(j.StartedAt), FinishedAt: stamp(j.FinishedAt)}
}

func (a *API) jobDomains(c *Ctx) ([]string, error) {
	id, err := c.ID("job")
	if err != nil {
		return nil, err
	}
	j, err := a.adm.Job(c.Context(), id)
	if err != nil {
		return nil, err
	}
	return []string{j.Domain}, nil
}

func (a *API) listJobs(c *Ctx) error {
	var pos int64
	limit, _, err := c.Paging(&pos)
	if err != nil {
		return err
	}
	state := c.Query("state")
	switch state {
	case "", admin.JobQueued, admin.JobRunning, admin.JobDone, admin.JobFailed:
	default:
		return Invalid("state", "one of queued, running, done, failed")
	}
	q := admin.JobQuery{Before: pos, Limit: limit + 1, Kind: c.Query("kind"), State: state, Domain: c.Query("domain")}
	if ds, all := c.Domains(); !all {
		q.Domains = append([]string{}, ds...)
	}
	rows, err := a.adm.Jobs(c.Context(), q)
	if err != nil {
		return err
	}
	return Page(c, rows, limit, func(j admin.Job) any { return j.ID }, jobView)
}

func (a *API) getJob(c *Ctx) error {
	id, err := c.ID("job")
	if err != nil {
		return err
	}
	j, err := a.adm.Job(c.Context(), id)
	if err != nil {
		return err
	}
	return c.Resource(jobView(j))
}

// statsDays is how many days of mail volume the stats give.
const statsDays = 7

// Volume is one day's mail.
type Volume struct {
	Day           string `json:"day"`
	ReceivedBytes int64  `json:"receivedBytes"`
	SentBytes     int64  `json:"sentBytes"`
}

func volumeView(vs []store.DayVolume) []Volume {
	out := make([]Volume, 0, len(vs))
	for _, v := range vs {
		out = append(out, Volume{Day: time.Unix(v.Day*86400, 0).UTC().Format(time.DateOnly), ReceivedBytes: v.ReceivedBytes, SentBytes: v.SentBytes})
	}
	return out
}

func (a *API) serverStats(c *Ctx) error {
	cs, vol, err := a.st.Stats(c.Context(), "", statsDays)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"counts": cs, "volume": volumeView(vol)})
}

func (a *API) domainStats(c *Ctx) error {
	cs, vol, err := a.st.Stats(c.Context(), c.Param("domain"), statsDays)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"domain": c.Param("domain"), "counts": cs, "volume": volumeView(vol)})
}

func (a *API) userStats(c *Ctx) error {
	u, vol, err := a.st.UserStats(c.Context(), c.Param("address"), statsDays)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"address": u.Address, "messages": u.MessageCount, "usedBytes": u.UsedBytes, "volume": volumeView(vol)})
}
