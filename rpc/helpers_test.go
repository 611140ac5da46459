package rpc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"basalt/delivery"
	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/session"
	"basalt/store"
)

// fixture is the API served over real HTTP on 127.0.0.1, mounted under
// /rpc on a chi router as the HTTP core mounts it.
type fixture struct {
	env   *storetest.Env
	h     *Handler
	srv   *httptest.Server
	agent *delivery.Agent
	// queue is not run unless a test runs it (runQueue).
	queue *delivery.Queue
}

type fixtureOptions struct {
	cfg     Config
	session session.Config
	limits  store.Limits
	tls     bool
	redis   bool
	search  store.SearchTuning
}

func newFixture(t testing.TB, db testsupport.Database, o fixtureOptions) *fixture {
	t.Helper()
	so := storetest.Options{Session: o.session, Limits: o.limits, Search: o.search}
	if o.redis {
		so.RedisAddr, so.RedisPrefix = testsupport.Redis(t)
	}
	env := storetest.Open(t, db, so)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	// The queue is never run: a message for another domain stays in it,
	// where the tests look for it.
	queue := delivery.NewQueue(delivery.QueueConfig{Smarthost: "127.0.0.1:9"}, env.Store, nil, log)
	agent := delivery.New(delivery.Config{Hostname: "mail.example.org"}, env.Store, queue, log)
	cfg := o.cfg
	cfg.Hostname = "mail.example.org"
	if cfg.UndoSendSeconds == 0 {
		// Sends leave at once unless a test asks for the wait
		// (sendlater_test.go).
		cfg.UndoSendSeconds = -1
	}
	h := New(cfg, Deps{Store: env.Store, Session: env.Session, Agent: agent, Log: log})
	r := chi.NewRouter()
	r.Mount("/rpc", h)
	var srv *httptest.Server
	if o.tls {
		srv = httptest.NewTLSServer(r)
	} else {
		srv = httptest.NewServer(r)
	}
	t.Cleanup(srv.Close)
	return &fixture{env: env, h: h, srv: srv, agent: agent, queue: queue}
}

type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// forEachBackend runs f on SQLite with the in-process cache and on
// MariaDB with Redis.
func forEachBackend(t *testing.T, o fixtureOptions, f func(t *testing.T, fx *fixture)) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		oo := o
		oo.redis = db.Driver == "mysql"
		f(t, newFixture(t, db, oo))
	})
}

func sqlite(t testing.TB) testsupport.Database {
	return testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}
}

// client is a browser: a cookie jar, the CSRF token it was given, and
// the Origin it sends.
type client struct {
	t      testing.TB
	fx     *fixture
	hc     *http.Client
	csrf   string
	origin string
}

func (fx *fixture) client(t testing.TB) *client {
	jar, _ := cookiejar.New(nil)
	hc := *fx.srv.Client() // each browser its own jar
	hc.Jar = jar
	return &client{t: t, fx: fx, hc: &hc, origin: fx.srv.URL}
}

// user creates addr and returns a client logged in as it.
func (fx *fixture) user(t testing.TB, addr string, secure bool) (*client, *session.Auth) {
	t.Helper()
	auth := fx.env.NewUser(t, addr, secure)
	c := fx.client(t)
	c.login(addr, storetest.Password)
	return c, auth
}

func (c *client) login(user, pass string) authResult {
	c.t.Helper()
	var res authResult
	c.must("auth", map[string]any{"username": user, "password": pass}, &res)
	if res.Auth != "success" {
		c.t.Fatalf("login %s: %+v", user, res)
	}
	c.csrf = res.CSRF
	return res
}

// post sends a raw body to POST /rpc with the client's headers.
func (c *client) post(body string, hdr map[string]string) (*http.Response, []byte) {
	c.t.Helper()
	req, err := http.NewRequest("POST", c.fx.srv.URL+"/rpc", strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	if c.origin != "" {
		req.Header.Set("Origin", c.origin)
	}
	setHeaders(req, hdr)
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp, b
}

// declared POSTs to path a body of the given type declared to be size
// bytes, of which it sends none, and returns the HTTP status: a server
// that waits for the body before it answers fails the call.
func (c *client) declared(path, ctype string, size int64) int {
	c.t.Helper()
	pr, pw := io.Pipe()
	// A server still waiting for the body after a while gets it cut
	// short, so the call ends (with what that server then answers)
	// rather than hangs.
	cut := time.AfterFunc(5*time.Second, func() { pw.CloseWithError(errors.New("no body")) })
	defer cut.Stop()
	defer pw.Close()
	req, err := http.NewRequest("POST", c.fx.srv.URL+path, pr)
	if err != nil {
		c.t.Fatal(err)
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("X-CSRF-Token", c.csrf)
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("no answer before the body: %v", err)
	}
	resp.Body.Close()
	if d := time.Since(start); d > 4*time.Second {
		c.t.Errorf("answered after %v: the server waited for the body", d)
	}
	return resp.StatusCode
}

// setHeaders sets the headers of hdr on req, deleting those given as "".
func setHeaders(req *http.Request, hdr map[string]string) {
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
}

type testResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	Result  json.RawMessage `json:"result"`
	Error   *testError      `json:"error"`
	ID      json.RawMessage `json:"id"`
}

type testError struct {
	Code    int       `json:"code"`
	Message string    `json:"message"`
	Data    ErrorData `json:"data"`
}

// call makes one call and returns its result or its error.
func (c *client) call(method string, params any) (json.RawMessage, *testError) {
	c.t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":` + quote(method)
	if params != nil {
		// Absent, not null: params is an object or an array when present
		// (JSON-RPC 2.0 section 4).
		p, err := json.Marshal(params)
		if err != nil {
			c.t.Fatal(err)
		}
		body += `,"params":` + string(p)
	}
	body += `}`
	resp, b := c.post(body, nil)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("%s: HTTP %d: %s", method, resp.StatusCode, b)
	}
	var r testResponse
	if err := json.Unmarshal(b, &r); err != nil {
		c.t.Fatalf("%s: response %s: %v", method, b, err)
	}
	if r.JSONRPC != "2.0" || string(r.ID) != "1" {
		c.t.Fatalf("%s: response is not JSON-RPC 2.0 for id 1: %s", method, b)
	}
	if (r.Error == nil) == (r.Result == nil) {
		c.t.Fatalf("%s: response needs exactly one of result and error: %s", method, b)
	}
	return r.Result, r.Error
}

// must makes a call that must succeed, decoding its result into out.
func (c *client) must(method string, params, out any) {
	c.t.Helper()
	res, e := c.call(method, params)
	if e != nil {
		c.t.Fatalf("%s %v: error %d %s (%+v)", method, params, e.Code, e.Message, e.Data)
	}
	if out != nil {
		if err := json.Unmarshal(res, out); err != nil {
			c.t.Fatalf("%s: result %s: %v", method, res, err)
		}
	}
}

// fail makes a call that must fail with code (and data.type, when given).
func (c *client) fail(method string, params any, code int, typ string) *testError {
	c.t.Helper()
	res, e := c.call(method, params)
	if e == nil {
		c.t.Fatalf("%s %v: succeeded with %s, want error %d %s", method, params, res, code, typ)
	}
	if e.Code != code || (typ != "" && e.Data.Type != typ) {
		c.t.Fatalf("%s %v: error %d %s (%+v), want %d %s", method, params, e.Code, e.Message, e.Data, code, typ)
	}
	return e
}

// get fetches a path under the server with the client's cookie.
func (c *client) get(path string, hdr map[string]string) (*http.Response, []byte) {
	c.t.Helper()
	req, err := http.NewRequest("GET", c.fx.srv.URL+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// deliver puts a message into a user's INBOX the way mail arrives.
func (fx *fixture) deliver(t testing.TB, auth *session.Auth, raw []byte) store.Appended {
	t.Helper()
	res, err := fx.env.Store.Deliver(context.Background(), store.Delivery{UserID: auth.User.ID, Raw: raw})
	if err != nil {
		t.Fatalf("deliver: %v", err)
	}
	return res
}

func mustParse(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// eventStream is a client's open GET /rpc/events, read as it comes.
type eventStream struct {
	t      testing.TB
	ctx    context.Context
	events chan [2]string // name, data
}

// events opens the client's event stream until ctx ends.
func (c *client) events(ctx context.Context) *eventStream {
	c.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", c.fx.srv.URL+"/rpc/events", nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		c.t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &eventStream{t: c.t, ctx: ctx, events: make(chan [2]string, 64)}
	go func() {
		sc := bufio.NewScanner(resp.Body)
		var name string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				s.events <- [2]string{name, strings.TrimPrefix(line, "data: ")}
			}
		}
		close(s.events)
	}()
	return s
}

// next waits for the stream's next event, which must be a want, and
// returns its data.
func (s *eventStream) next(want string) map[string]any {
	s.t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok || ev[0] != want {
			s.t.Fatalf("event %v, want %s", ev, want)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(ev[1]), &m); err != nil {
			s.t.Fatalf("event data %q: %v", ev[1], err)
		}
		return m
	case <-s.ctx.Done():
		s.t.Fatalf("no %s event", want)
	}
	return nil
}

// folderIDs are a change event's folders.
func folderIDs(ev map[string]any) []int64 {
	var out []int64
	for _, f := range ev["folderIDs"].([]any) {
		out = append(out, int64(f.(float64)))
	}
	return out
}
