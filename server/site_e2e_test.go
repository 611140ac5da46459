package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
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
	svc, _ := openServices(t, "", "[rpc]\nrate_limit = 100000\n"+
		"[site]\nadmins = [\"postmaster@example.org\"]\n[[site.footer]]\ntitle = \"Terms\"\nurl = \"/terms\"\n"+
		"[site.register]\nmode = \"open\"\ndomain = \"example.org\"\n")
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

	runBrowserScript(t, node, chromium, dir, "site.mjs", 3*time.Minute, "BASE_URL="+web.URL, "CONTROL_URL="+ctl.URL)
}
