package testsupport

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// NeedCommand returns the path of the program name, looked up in PATH and
// then in /usr/sbin and /sbin, where Debian puts Postfix's smtp-sink and
// smtp-source and where an unprivileged user's PATH often does not reach.
// A missing program fails the test under CI=true (scripts/testenv.sh
// installs the packages) and skips it elsewhere.
func NeedCommand(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required under CI but is not installed (run the tests with `make test`, which installs it)", name)
	}
	t.Skipf("%s is not installed: run `make test` to install it, or install it by hand", name)
	return ""
}
