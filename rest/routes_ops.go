package rest

import "basalt/store/admin"

// The users, aliases, shared folders, sessions, queue, bulletins and
// maintenance resources (users.go, ops.go); the rest of the table is in
// routes.go.

// opsRoutes are their routes.
func (a *API) opsRoutes() []Route {
	var rs []Route
	rs = append(rs, a.userRoutes()...)
	rs = append(rs, a.aliasRoutes()...)
	rs = append(rs, a.queueRoutes()...)
	rs = append(rs, a.bulletinRoutes()...)
	rs = append(rs, a.maintenanceRoutes()...)
	return rs
}

// opsJobs are their jobs' handlers, by kind.
func (a *API) opsJobs() map[string]admin.Handler {
	return map[string]admin.Handler{
		jobMoveUser:      a.runJob(a.moveUserJob),
		jobBulletin:      a.runJob(a.bulletinJob),
		jobInactiveUsers: a.runJob(a.inactiveJob),
		jobRecount:       a.runJob(a.recountJob),
	}
}
