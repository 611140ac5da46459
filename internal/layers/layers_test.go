package layers

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestCheck: the rules, on a table of edges; the upward ones are planted
// here, not in code.
func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		ok       bool
	}{
		{"basalt/cmd/basalt", "basalt/server", true},
		{"basalt/server", "basalt/protocols/imap", true},
		{"basalt/server", "basalt/store/sqldb", true},
		{"basalt/rpc", "basalt/store", true},
		{"basalt/rpc", "basalt/message", true},
		{"basalt/protocols/imap", "basalt/protocols/listener", true},
		{"basalt/templates", "basalt/static", true},
		{"basalt/static", "basalt/rpc", false},
		{"basalt/protocols/smtp", "basalt/delivery", true},
		{"basalt/delivery", "basalt/session", true},
		{"basalt/session", "basalt/store/cache", true},
		{"basalt/store", "basalt/message", true},
		{"basalt/store/outbound", "basalt/store", true},
		{"basalt/store", "basalt/crypt", true},
		{"basalt/internal/testsupport/storetest", "basalt/store/sqldb", true},
		{"basalt/store", "github.com/jmoiron/sqlx", true},

		{"basalt/store", "basalt/session", false},      // up
		{"basalt/delivery", "basalt/server", false},    // nothing imports server
		{"basalt/rpc", "basalt/cmd/basalt", false},     // nor cmd
		{"basalt/protocols/imap", "basalt/rpc", false}, // front end to front end
		{"basalt/protocols/pop3", "basalt/protocols/imap", false},
		{"basalt/protocols/listener", "basalt/protocols/smtp", false}, // up
		{"basalt/rpc", "basalt/store/sqldb", false},                   // front end to a backend
		{"basalt/protocols/imap", "basalt/crypt", false},
		{"basalt/protocols/listener", "basalt/store", true},
		{"basalt/protocols/listener", "basalt/store/sqldb", false}, // what front ends share, to a backend
		{"basalt/protocols/saslserver", "basalt/crypt", false},
		{"basalt/static", "basalt/store/blob", false},
		{"basalt/static", "basalt/store/cache", false},
		{"basalt/message", "basalt/store", false}, // message stands alone
		{"basalt/message", "basalt/crypt", false},
		{"basalt/crypt", "basalt/store", false},
		{"basalt/store", "basalt/internal/testsupport", false}, // tests only
		{"basalt/newthing", "basalt/store", false},             // not placed
	} {
		err := Check(tc.from, tc.to)
		if (err == nil) != tc.ok {
			t.Errorf("%s -> %s: %v, want ok %v", tc.from, tc.to, err, tc.ok)
		}
	}
}

// TestLayers checks the module's import graph (non-test imports, as `go
// list` gives them).
func TestLayers(t *testing.T) {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := exec.LookPath(gobin); err != nil {
		gobin = "go"
	}
	cmd := exec.Command(gobin, "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", Module+"/...")
	cmd.Dir = filepath.Join("..", "..")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		pkgs++
		if _, ok := RankOf(f[0]); !ok {
			t.Errorf("%s has no layer: place it in internal/layers", f[0])
			continue
		}
		for _, imp := range f[1:] {
			if err := Check(f[0], imp); err != nil {
				t.Error(err)
			}
		}
	}
	if pkgs < 10 {
		t.Fatalf("go list gave %d packages:\n%s", pkgs, out)
	}
}
