package rest

import (
	"context"
	"maps"
	"net/http"
	"time"

	basalt "basalt"
	"basalt/store/admin"
)

// table is the API's one route table.
func (a *API) table() []Route {
	rs := []Route{
		{Method: http.MethodGet, Path: "/health", Handle: a.health},
		{Method: http.MethodGet, Path: "/openapi.yaml", Handle: a.spec},
	}
	rs = append(rs, a.domainRoutes()...)
	rs = append(rs, a.planRoutes()...)
	rs = append(rs, a.accessRoutes()...)
	rs = append(rs, a.recordRoutes()...)
	rs = append(rs, a.opsRoutes()...)
	rs = append(rs, a.signupRoutes()...)
	return rs
}

// jobHandlers are the handlers of every kind of job the API starts.
func (a *API) jobHandlers() map[string]admin.Handler {
	hs := map[string]admin.Handler{
		jobPurgeDomain: a.purgeDomain,
		jobApplyPlan:   a.applyPlanJob,
	}
	maps.Copy(hs, a.opsJobs())
	return hs
}

// Spec returns openapi.yaml, the API's contract.
func Spec() []byte { return basalt.OpenAPI() }

func (a *API) spec(c *Ctx) error {
	c.W.Header().Set("Content-Type", "application/yaml")
	c.W.Header().Set("Cache-Control", "public, max-age=300")
	c.W.WriteHeader(http.StatusOK)
	c.W.Write(Spec())
	return nil
}

// health answers whether the database and the cache answer; open to
// anyone, it says no more than that.
func (a *API) health(c *Ctx) error {
	ctx, cancel := context.WithTimeout(c.Context(), 3*time.Second)
	defer cancel()
	db, cache := "ok", "ok"
	status := http.StatusOK
	if err := a.st.PingDatabase(ctx); err != nil {
		db, status = "unavailable", http.StatusServiceUnavailable
		a.log.Warn("health: database", "err", err)
	}
	if err := a.st.PingCache(ctx); err != nil {
		cache, status = "unavailable", http.StatusServiceUnavailable
		a.log.Warn("health: cache", "err", err)
	}
	word := "ok"
	if status != http.StatusOK {
		word = "degraded"
	}
	return c.JSON(status, map[string]any{"status": word, "checks": map[string]string{"database": db, "cache": cache}})
}
