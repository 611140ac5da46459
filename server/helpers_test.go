package server

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// testConfig starts every wired test's configuration: argon2 at its
// cheapest (the tests log in often) and the SMTP host name, in an [smtp]
// section the test's own text may go on with.
const testConfig = "[auth]\nargon2_time = 1\nargon2_memory_kib = 64\nargon2_threads = 1\n[smtp]\nhostname = \"mx.test\"\n"

// openServices opens the services as the daemon does, with testConfig
// followed by more, over the data directory (a fresh one when data is
// empty), with the domain example.org. They close when the test ends.
func openServices(t *testing.T, data, more string) (*Services, Config) {
	t.Helper()
	if data == "" {
		data = t.TempDir()
	}
	cfg, err := LoadConfig(writeConfig(t, testConfig+more), data)
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
	return svc, cfg
}

// serveFrontEnds serves the front ends until the test ends; then they
// shut down, and a failure to serve or to shut down fails the test.
func serveFrontEnds(t *testing.T, fes ...frontEnd) {
	t.Helper()
	var wg sync.WaitGroup
	n := 0
	for _, f := range fes {
		n += f.count()
	}
	errc := make(chan error, n)
	for _, f := range fes {
		f.serve(&wg, errc)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, f := range fes {
			if err := f.shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Errorf("serve: %v", err)
		}
	})
}

// runBrowserScript runs one of e2e/'s scripts in node (browserEnv finds
// node, Chromium and the directory) with BASE_URL, CONTROL_URL and the
// rest of env, and logs its output line by line; the test fails when the
// script does. The screenshots go where E2E_SHOTS says, or into a
// temporary directory, and the log says where.
func runBrowserScript(t *testing.T, node, chromium, dir, script string, timeout time.Duration, env ...string) {
	t.Helper()
	shots := os.Getenv("E2E_SHOTS")
	if shots == "" {
		shots = filepath.Join(t.TempDir(), "shots")
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, script))
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "SHOTS="+shots, "CHROMIUM="+chromium), env...)
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
		t.Fatalf("%s: %v", script, err)
	}
	t.Logf("screenshots in %s", shots)
}
