package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/go-chi/chi/v5"

	"basalt/delivery"
	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/rest"
	"basalt/store/admin"
)

// env is an API over a real store, behind a test server, with a key over
// everything (root) and the spec every request and response is checked
// against.
type env struct {
	t      *testing.T
	e      *storetest.Env
	adm    *admin.Store
	api    *rest.API
	srv    *httptest.Server
	doc    *openapi3.T
	router routers.Router
	root   string
	rootP  *admin.Principal
	agent  *delivery.Agent
	queue  *delivery.Queue
}

func loadSpec(t testing.TB) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(rest.Spec())
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not valid: %v", err)
	}
	return doc
}

var specOnce struct {
	sync.Once
	doc *openapi3.T
}

// sharedSpec is loadSpec, once for the package's tests (never written
// after).
func sharedSpec(t *testing.T) *openapi3.T {
	specOnce.Do(func() { specOnce.doc = loadSpec(t) })
	if specOnce.doc == nil {
		t.Fatal("openapi.yaml did not load")
	}
	return specOnce.doc
}

func newEnv(t *testing.T, db testsupport.Database, cfg rest.Config) *env {
	t.Helper()
	return newEnvWith(t, db, cfg, storetest.Options{})
}

// newEnvWith is newEnv over a store built with o, with a delivery agent
// and an outbound queue (not running: what is queued stays) as the
// server wires them.
func newEnvWith(t *testing.T, db testsupport.Database, cfg rest.Config, o storetest.Options) *env {
	t.Helper()
	e := storetest.Open(t, db, o)
	adm := admin.New(e.Store)
	jobs := adm.NewRunner(admin.RunnerConfig{Poll: 20 * time.Millisecond, Lease: 2 * time.Second})
	var agent *delivery.Agent
	queue := delivery.NewQueue(delivery.QueueConfig{Hostname: "mx.test"}, e.Store, delivery.LocalDeliveryFunc(func(ctx context.Context, from, to string, raw []byte) error {
		return agent.DeliverLocal(ctx, from, to, raw)
	}), nil)
	agent = delivery.New(delivery.Config{Hostname: "mx.test"}, e.Store, queue, nil)
	api, err := rest.New(cfg, rest.Deps{Store: e.Store, Admin: adm, Jobs: jobs, Session: e.Session, Agent: agent, Queue: queue})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); jobs.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	// Mounted as server/http.go mounts it.
	mux := chi.NewRouter()
	mux.Mount("/api", api.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	// The spec is loaded and checked once; each env routes a copy aimed
	// at its own server.
	doc := *sharedSpec(t)
	doc.Servers = openapi3.Servers{{URL: srv.URL + "/api/v1"}}
	router, err := gorillamux.NewRouter(&doc)
	if err != nil {
		t.Fatal(err)
	}
	v := &env{t: t, e: e, adm: adm, api: api, srv: srv, doc: &doc, router: router, agent: agent, queue: queue}
	v.root = v.mint("root", admin.Authority{Scopes: []string{"*"}})
	v.rootP, err = adm.Authenticate(context.Background(), v.root, netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// mint makes an admin with a grant of a and a key of a (as the command
// line does) and returns the key's secret.
func (v *env) mint(name string, a admin.Authority) string {
	v.t.Helper()
	ctx := context.Background()
	ad, err := v.adm.CreateAdmin(ctx, nil, name)
	if err != nil {
		v.t.Fatal(err)
	}
	if _, err := v.adm.AddGrant(ctx, nil, ad.ID, admin.Authority{Scopes: a.Scopes, Domains: a.Domains}); err != nil {
		v.t.Fatal(err)
	}
	_, secret, err := v.adm.CreateKey(ctx, nil, admin.NewKey{AdminID: ad.ID, Name: name, Authority: a})
	if err != nil {
		v.t.Fatal(err)
	}
	return secret
}

// req is one request to the API.
type req struct {
	method, path, key string
	body              any    // marshalled as JSON unless a string or []byte
	ctype             string // default application/json (merge-patch for PATCH)
	header            map[string]string
	// badRequest: the request breaks the spec on purpose; the validator
	// must agree that it does.
	badRequest bool
	// anyRequest: the request is not checked against the spec (the scope
	// test sends the least that reaches the check); the response is.
	anyRequest bool
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r resp) problem(t testing.TB) rest.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("status %d with Content-Type %q, want a problem: %s", r.status, ct, r.body)
	}
	var p rest.Problem
	r.decode(t, &p)
	return p
}

// do sends r, checking the request (unless badRequest) and the response
// against openapi.yaml.
func (v *env) do(r req) resp {
	v.t.Helper()
	var body []byte
	switch b := r.body.(type) {
	case nil:
	case string:
		body = []byte(b)
	case []byte:
		body = b
	default:
		var err error
		if body, err = json.Marshal(b); err != nil {
			v.t.Fatal(err)
		}
	}
	hr, err := http.NewRequest(r.method, v.srv.URL+"/api/v1"+r.path, bytes.NewReader(body))
	if err != nil {
		v.t.Fatal(err)
	}
	if body != nil {
		ct := r.ctype
		if ct == "" {
			ct = "application/json"
			if r.method == http.MethodPatch {
				ct = "application/merge-patch+json"
			}
		}
		hr.Header.Set("Content-Type", ct)
	}
	if r.key != "" {
		hr.Header.Set("Authorization", "Bearer "+r.key)
	}
	for k, val := range r.header {
		hr.Header.Set(k, val)
	}
	route, params, err := v.router.FindRoute(hr)
	if err != nil {
		v.t.Fatalf("%s %s: not in openapi.yaml: %v", r.method, r.path, err)
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.RequestValidationInput{Request: hr, PathParams: params, Route: route, Options: opts}
	// The validator reads the body: give it a copy.
	hr.Body = io.NopCloser(bytes.NewReader(body))
	verr := openapi3filter.ValidateRequest(context.Background(), in)
	if r.anyRequest {
		verr = nil
	} else if r.badRequest && verr == nil {
		v.t.Errorf("%s %s: the spec accepts a request the test sends as invalid", r.method, r.path)
	}
	if !r.badRequest && verr != nil {
		v.t.Errorf("%s %s: request breaks openapi.yaml: %v", r.method, r.path, verr)
	}
	hr.Body = io.NopCloser(bytes.NewReader(body))
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		v.t.Fatal(err)
	}
	defer res.Body.Close()
	rb, err := io.ReadAll(res.Body)
	if err != nil {
		v.t.Fatal(err)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: res.StatusCode, Header: res.Header, Options: opts}
	out.SetBodyBytes(rb)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		v.t.Errorf("%s %s: response %d breaks openapi.yaml: %v\n%s", r.method, r.path, res.StatusCode, err, rb)
	}
	// Every failure is a problem, but for health, whose 503 is its report.
	if res.StatusCode >= 400 && r.path != "/health" && !strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json") {
		v.t.Errorf("%s %s: failure %d is not a problem: %s", r.method, r.path, res.StatusCode, rb)
	}
	return resp{status: res.StatusCode, header: res.Header, body: rb}
}

// want fails unless r has the status.
func (r resp) want(t testing.TB, status int) resp {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

// do2 sends r where the spec has no such path, checking only that the
// answer is a problem.
func (v *env) do2(r req) resp {
	v.t.Helper()
	hr, err := http.NewRequest(r.method, v.srv.URL+"/api/v1"+r.path, nil)
	if err != nil {
		v.t.Fatal(err)
	}
	hr.Header.Set("Authorization", "Bearer "+r.key)
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		v.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := resp{status: res.StatusCode, header: res.Header, body: b}
	out.problem(v.t)
	return out
}
