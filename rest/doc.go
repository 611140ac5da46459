// Package rest is the admin REST API under /api/v1, for provisioning
// systems; openapi.yaml at the repository's root is its contract (served
// at /api/v1/openapi.yaml, rendered at /api/docs) and its tests check
// every request and response against it.
//
// One route table (routes.go, and routes_ops.go for the users', aliases',
// shares', sessions', queue's, bulletins' and maintenance resources,
// signup.go for the site's banned networks, invites and approvals) says
// for each route its method, path, the scope it needs and how to find the
// domains it touches (a Locator). Everything but the handler happens in
// one place (API.serve): the bearer key is authenticated, its rate spent,
// its scope and domains checked, an Idempotency-Key honoured; the handler
// then gets a Ctx.
//
// Adding a resource:
//
//	func (a *API) opsRoutes() []Route {
//		return []Route{
//			{Method: http.MethodGet, Path: "/users", Scope: "users:read", Domain: Listed(), Handle: a.listUsers},
//			{Method: http.MethodPost, Path: "/users", Scope: "users:write", Domain: BodyAddress("address"), Idempotent: true, Handle: a.createUser},
//			{Method: http.MethodGet, Path: "/users/{address}", Scope: "users:read", Domain: PathAddress("address"), Handle: a.getUser},
//			{Method: http.MethodDelete, Path: "/queue/{id}", Scope: "queue:write", Domain: Target("queue", a.queueDomains), Handle: a.deleteQueued},
//		}
//	}
//
// Locators: Global (server-wide; domain-limited keys refused), Listed (a
// collection, no path parameter: filter rows by Ctx.Domains; a ?domain=
// outside the key is refused), Shared (reading plans, which belong to no
// domain), PathDomain/PathAddress (a path parameter), BodyDomain,
// BodyAddress, BodyDomainOrAddress, BodyDomains (a body member), Target
// (the row the path names, looked up by a function; its kind needs a
// fixture in scopes_test.go; a key short of every domain gets the same
// 403 for a row outside its domains as for one that does not exist, so it
// cannot probe ids). A second domain the handler learns of
// (a rename's new name, an alias's target domain) is checked with
// Ctx.CheckDomain. A name that is a domain alias needs the domain it
// stands for as well (the store reads the one as the other). A body that
// names a member twice, even in another case, is refused (400) before a
// locator reads it, so the locator and the handler read the same value.
//
// A handler returns an error: a *Problem (NewProblem, Validation, Invalid,
// BadRequest, NotFound, Conflict, Forbidden), or a store error, mapped to
// its status (ErrNotFound 404, ErrExists/ErrNotEmpty/ErrDomainLimit 409,
// ErrInvalid 422, admin.ErrForbidden/ErrWider and store.ErrForbidden 403,
// unavailable 503, else 500, logged). Bodies: Ctx.Decode (strict: 400
// malformed or a member named twice, even in another case; 422 unknown
// field or wrong type; 413 too large; 415 not application/json),
// Ctx.Patch (RFC 7396 merge patch over the editable members). Answers:
// Ctx.Resource (200 + ETag), Ctx.Created (201 + Location + ETag),
// Ctx.NoContent, Ctx.JSON; Ctx.IfMatch(current) before a PATCH or DELETE
// (412). Lists: Ctx.Paging(&position) then Page(c, rows, limit,
// position, view) with rows fetched limit+1 on an indexed keyset; the
// cursor is opaque and MAC'd over the route, key and filters. Changes:
// the store's methods audit themselves in their transaction with the
// actor Ctx.Context carries (store.WithActor); what they do not audit,
// Ctx.Audit does. Long operations: Ctx.StartJob(kind, domain, params)
// answers 202 with the job, whose handler (an admin.Handler, registered in
// opsJobs) must be safe to rerun after a crash. Ctx.RateLimit spends an
// extra budget for an expensive route.
package rest
