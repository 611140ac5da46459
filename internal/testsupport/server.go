package testsupport

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// ServerHarness is what the protocol servers' test harnesses share: the
// server's log, a certificate for the test host with a client
// configuration and a PEM file trusting it, and the listeners the server
// serves on 127.0.0.1, checked and shut down when the test ends.
type ServerHarness struct {
	t testing.TB
	// Logs holds what Log wrote, at debug level and above; it is shown
	// when the test fails.
	Logs *LogBuffer
	Log  *slog.Logger
	// TLS is the server's configuration, Client a client's trusting it,
	// and CAFile the certificate in PEM, for clients that read a file.
	TLS    *tls.Config
	Client *tls.Config
	CAFile string

	serving sync.WaitGroup
}

// NewServerHarness returns a harness for a server named host.
func NewServerHarness(t testing.TB, host string) *ServerHarness {
	t.Helper()
	logs := &LogBuffer{}
	cert, pool, pemBytes := TestCert(t, host)
	h := &ServerHarness{
		t: t, Logs: logs,
		Log:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		TLS:    &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		Client: &tls.Config{RootCAs: pool, ServerName: host},
		CAFile: filepath.Join(t.TempDir(), "ca.pem"),
	}
	if err := os.WriteFile(h.CAFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return h
}

// Listen returns a listener on a free port of 127.0.0.1.
func (h *ServerHarness) Listen() net.Listener {
	h.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	return ln
}

// Serve runs serve (a server's Serve on a listener) on a goroutine of its
// own; an error it returns fails the test when it ends.
func (h *ServerHarness) Serve(serve func() error) {
	h.serving.Add(1)
	go func() {
		defer h.serving.Done()
		if err := serve(); err != nil {
			h.Logs.Write([]byte("SERVE ERROR: " + err.Error() + "\n"))
		}
	}()
}

// StopAtEnd has the test's end call stop (the server's Close or
// Shutdown), wait for every Serve to return, fail if one failed, and show
// the server's log if the test failed.
func (h *ServerHarness) StopAtEnd(stop func()) {
	h.t.Cleanup(func() {
		stop()
		h.serving.Wait()
		if strings.Contains(h.Logs.String(), "SERVE ERROR") {
			h.t.Errorf("a listener failed:\n%s", h.Logs.String())
		}
		if h.t.Failed() {
			h.t.Logf("server log:\n%s", h.Logs.String())
		}
	})
}

// WaitOpen waits until open (a server's count of its connections)
// reports n.
func (h *ServerHarness) WaitOpen(n int, open func() int) {
	h.t.Helper()
	WaitFor(h.t, 10*time.Second, fmt.Sprintf("the server to hold %d connections", n), func() bool { return open() == n })
}
