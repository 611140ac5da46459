package rest

import "basalt/store/admin"

// The users, aliases, shared folders, sessions, queue, bulletins and
// maintenance resources (i-restops) add their routes and jobs here; the
// rest of the table is in routes.go.

// opsRoutes are their routes.
func (a *API) opsRoutes() []Route { return nil }

// opsJobs are their jobs' handlers, by kind.
func (a *API) opsJobs() map[string]admin.Handler { return nil }
