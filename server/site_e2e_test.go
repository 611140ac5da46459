package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestSiteBrowser runs the site in headless Chromium against a whole
// Basalt (HTTP core with the site, the webmail and its API; SQLite):
// e2e/site.mjs runs axe-core on every page at desktop and phone width in
// both themes and takes their screenshots, shows a wrong answer under its
// field, registers an account in three steps (the captcha's answer comes
// from the site's test hook through this test's control server, never
// from Basalt over HTTP), logs in on the site and finds the welcome
// message in the webmail.
func TestSiteBrowser(t *testing.T) {
	node, chromium, dir := browserEnv(t)
	cfgPath := writeConfig(t, "[auth]\nargon2_time = 1\nargon2_memory_kib = 64\nargon2_threads = 1\n"+
		"[smtp]\nhostname = \"mx.test\"\n[rpc]\nrate_limit = 100000\n"+
		"[site]\nadmins = [\"postmaster@example.org\"]\n[[site.footer]]\ntitle = \"Terms\"\nurl = \"/terms\"\n"+
		"[site.register]\nmode = \"open\"\ndomain = \"example.org\"\n")
	cfg, err := LoadConfig(cfgPath, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	svc, err := Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	if _, err := svc.Store.AddDomain(ctx, "example.org"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	answers := map[string]string{}
	svc.captchaHook = func(id, answer string) {
		mu.Lock()
		answers[id] = answer
		mu.Unlock()
	}
	web := httptest.NewServer(svc.Router())
	t.Cleanup(web.Close)
	control := http.NewServeMux()
	control.HandleFunc("GET /captcha", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		a, ok := answers[r.URL.Query().Get("id")]
		mu.Unlock()
		if !ok {
			http.Error(w, "no such captcha", http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"answer": a})
	})
	ctl := httptest.NewServer(control)
	t.Cleanup(ctl.Close)

	shots := os.Getenv("E2E_SHOTS")
	if shots == "" {
		shots = filepath.Join(t.TempDir(), "shots")
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, node, filepath.Join(dir, "site.mjs"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BASE_URL="+web.URL, "CONTROL_URL="+ctl.URL, "SHOTS="+shots, "CHROMIUM="+chromium)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		t.Log(sc.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("site.mjs: %v", err)
	}
	t.Logf("screenshots in %s", shots)
}
