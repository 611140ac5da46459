package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/session"
	"basalt/store/admin"
)

// TestProvisioningWithCurl is a provisioning run as a hosting panel would
// make it, with curl against the HTTP core on 127.0.0.1: a domain, a
// plan, 100 users, aliases and a catch-all; then suspend and unsuspend,
// a change of plan, a new password, the usage read back after mail came
// in, and deletes. Every step is checked by its status and body, and by
// what the store and the session service then do.
func TestProvisioningWithCurl(t *testing.T) {
	curl := testsupport.NeedCommand(t, "curl")
	cfgPath := writeConfig(t, "[auth]\nargon2_time = 1\nargon2_memory_kib = 64\nargon2_threads = 1\n[smtp]\nhostname = \"mx.test\"\n")
	cfg, err := LoadConfig(cfgPath, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	svc, err := Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	jobsDone := make(chan struct{})
	go func() { defer close(jobsDone); svc.Jobs.Run(ctx) }()
	defer func() { cancel(); <-jobsDone }()
	ad, err := svc.Admin.CreateAdmin(ctx, nil, "panel")
	if err != nil {
		t.Fatal(err)
	}
	auth := admin.Authority{Scopes: []string{"*"}}
	if _, err := svc.Admin.AddGrant(ctx, nil, ad.ID, auth); err != nil {
		t.Fatal(err)
	}
	_, key, err := svc.Admin.CreateKey(ctx, nil, admin.NewKey{AdminID: ad.ID, Name: "whmcs", Authority: auth})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: svc.Router(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	base := "http://" + ln.Addr().String() + "/api/v1"

	// call runs curl once and returns the status and body.
	type result struct {
		code int
		body []byte
	}
	call := func(method, path string, body any, header ...string) result {
		t.Helper()
		args := []string{"-sS", "--max-time", "20", "-X", method, "-H", "Authorization: Bearer " + key, "-w", "\n%{http_code}"}
		if body != nil {
			b, err := json.Marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			ct := "application/json"
			if method == http.MethodPatch {
				ct = "application/merge-patch+json"
			}
			args = append(args, "-H", "Content-Type: "+ct, "--data-binary", string(b))
		}
		for _, h := range header {
			args = append(args, "-H", h)
		}
		args = append(args, base+path)
		out, err := exec.CommandContext(ctx, curl, args...).Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("curl %s %s: %v: %s", method, path, err, ee.Stderr)
		}
		if err != nil {
			t.Fatalf("curl %s %s: %v", method, path, err)
		}
		i := bytes.LastIndexByte(out, '\n')
		code, err := strconv.Atoi(string(out[i+1:]))
		if err != nil {
			t.Fatalf("curl %s %s: status %q", method, path, out[i+1:])
		}
		return result{code, out[:i]}
	}
	want := func(r result, status int, what string) []byte {
		t.Helper()
		if r.code != status {
			t.Fatalf("%s: %d, want %d: %s", what, r.code, status, r.body)
		}
		return r.body
	}
	var m map[string]any
	decode := func(b []byte) map[string]any {
		t.Helper()
		m = nil
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		return m
	}

	start := time.Now()
	want(call("POST", "/domains", map[string]any{"name": "panel.test", "limits": map[string]any{"maxUsers": 200}}), 201, "create domain")
	want(call("POST", "/plans", map[string]any{"name": "basic", "limits": map[string]any{"quotaBytes": 1 << 20}}), 201, "create plan basic")
	want(call("POST", "/plans", map[string]any{"name": "premium", "limits": map[string]any{"quotaBytes": 10 << 20}}), 201, "create plan premium")
	for i := range 100 {
		addr := fmt.Sprintf("user%03d@panel.test", i)
		want(call("POST", "/users", map[string]any{"address": addr, "password": "initial password " + strconv.Itoa(i), "plan": "basic"},
			"Idempotency-Key: create-"+addr), 201, "create "+addr)
	}
	// A panel retrying a create after a timeout makes nothing twice.
	want(call("POST", "/users", map[string]any{"address": "user000@panel.test", "password": "initial password 0", "plan": "basic"}, "Idempotency-Key: create-user000@panel.test"), 201, "replayed create")
	for i := range 10 {
		want(call("POST", "/aliases", map[string]any{"pattern": fmt.Sprintf("alias%d@panel.test", i),
			"targets": []string{fmt.Sprintf("user%03d@panel.test", i), fmt.Sprintf("user%03d@panel.test", i+10)}}), 201, "create alias")
	}
	want(call("POST", "/aliases", map[string]any{"pattern": "*@panel.test", "targets": []string{"user099@panel.test"}}), 201, "catch-all")
	decode(want(call("GET", "/domains/panel.test", nil), 200, "read domain"))
	usage := m["usage"].(map[string]any)
	if usage["users"] != float64(100) || usage["aliases"] != float64(21) {
		t.Fatalf("domain usage after provisioning: %v", usage)
	}
	t.Logf("domain, plans, 100 users and 11 aliases made with curl in %v", time.Since(start))

	// Mail to an alias reaches both its users; usage reads back.
	if err := svc.Agent.DeliverLocal(ctx, "someone@example.com", "alias1@panel.test", []byte("Subject: hi\r\n\r\nhello there\r\n")); err != nil {
		t.Fatal(err)
	}
	decode(want(call("GET", "/users/user011@panel.test/quota", nil), 200, "read usage"))
	if m["messages"] != float64(1) || m["usedBytes"].(float64) < 20 || m["effectiveQuotaBytes"] != float64(1<<20) {
		t.Fatalf("usage of user011: %v", m)
	}

	// Suspend: no login, status reads suspended; unsuspend.
	decode(want(call("POST", "/users/user001@panel.test/suspend", map[string]any{"reason": "invoice overdue"}), 200, "suspend"))
	if m["status"] != "suspended" {
		t.Fatalf("after suspend: %v", m["status"])
	}
	if _, err := svc.Session.Authenticate(ctx, "user001@panel.test", "initial password 1", "127.0.0.1"); !errors.Is(err, session.ErrSuspended) {
		t.Fatalf("login while suspended: %v", err)
	}
	if body := want(call("GET", "/users?status=suspended", nil), 200, "list suspended"); !strings.Contains(string(body), "user001@panel.test") || strings.Count(string(body), `"address"`) != 1 {
		t.Fatalf("suspended users: %s", body)
	}
	decode(want(call("POST", "/users/user001@panel.test/unsuspend", nil), 200, "unsuspend"))
	if m["status"] != "active" {
		t.Fatalf("after unsuspend: %v", m["status"])
	}
	if _, err := svc.Session.Authenticate(ctx, "user001@panel.test", "initial password 1", "127.0.0.1"); err != nil {
		t.Fatalf("login after unsuspend: %v", err)
	}

	// Change of plan (the panel's "change package"), under If-Match.
	want(call("GET", "/users/user002@panel.test", nil), 200, "read user")
	etag := etagOf(t, curl, base+"/users/user002@panel.test", key)
	want(call("PATCH", "/users/user002@panel.test", map[string]any{"plan": "premium"}, "If-Match: \"stale\""), 412, "patch with a stale ETag")
	decode(want(call("PATCH", "/users/user002@panel.test", map[string]any{"plan": "premium"}, "If-Match: "+etag), 200, "change plan"))
	if m["plan"] != "premium" || m["usage"].(map[string]any)["quotaBytes"] != float64(10<<20) {
		t.Fatalf("after the change of plan: %v", m)
	}

	// New password: the old one stops working.
	want(call("POST", "/users/user003@panel.test/password", map[string]any{"password": "a brand new password"}), 204, "change password")
	if _, err := svc.Session.Authenticate(ctx, "user003@panel.test", "initial password 3", "127.0.0.1"); err == nil {
		t.Fatal("the old password still works")
	}
	if _, err := svc.Session.Authenticate(ctx, "user003@panel.test", "a brand new password", "127.0.0.1"); err != nil {
		t.Fatalf("the new password: %v", err)
	}

	// Failures are problems, with their status.
	if body := want(call("POST", "/users", map[string]any{"address": "bad address", "password": "whatever long"}), 422, "bad address"); !strings.Contains(string(body), `"type":"/api/v1/problems/validation"`) {
		t.Fatalf("bad address: %s", body)
	}
	want(call("GET", "/users/nobody@panel.test", nil), 404, "missing user")

	// Terminate: users deleted, an alias deleted, the domain then refuses
	// deletion while users remain.
	want(call("DELETE", "/users/user004@panel.test", nil), 204, "delete user")
	want(call("GET", "/users/user004@panel.test", nil), 404, "deleted user")
	want(call("DELETE", "/aliases/alias4@panel.test", nil), 204, "delete alias")
	want(call("DELETE", "/domains/panel.test", nil), 409, "delete a domain with users")
	decode(want(call("GET", "/domains/panel.test", nil), 200, "read domain"))
	if u := m["usage"].(map[string]any); u["users"] != float64(99) || u["aliases"] != float64(19) {
		t.Fatalf("domain usage at the end: %v", u)
	}
}

// etagOf reads a resource's ETag with curl -I-style output.
func etagOf(t *testing.T, curl, url, key string) string {
	t.Helper()
	out, err := exec.Command(curl, "-sS", "-D", "-", "-o", "/dev/null", "-H", "Authorization: Bearer "+key, url).Output()
	if err != nil {
		t.Fatalf("curl -D: %v", err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Etag: "); ok {
			return v
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "ETag: "); ok {
			return v
		}
	}
	t.Fatalf("no ETag in %s", out)
	return ""
}
