package listener

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
)

func tcp(s string) net.Addr { return net.TCPAddrFromAddrPort(mustAddrPort(s)) }

func TestLimiter(t *testing.T) {
	type step struct {
		addr    string // "" releases the first connection admitted
		wantErr error
	}
	for _, tc := range []struct {
		name       string
		max, perIP int
		steps      []step
	}{
		{"per address", 0, 2, []step{
			{"192.0.2.1:1", nil}, {"192.0.2.1:2", nil}, {"192.0.2.1:3", ErrTooManyFromIP},
			{"192.0.2.2:1", nil}, {"", nil}, {"192.0.2.1:4", nil},
		}},
		{"IPv6 per /64", 0, 2, []step{
			{"[2001:db8::1]:1", nil}, {"[2001:db8::2]:1", nil}, {"[2001:db8::3]:1", ErrTooManyFromIP},
			{"[2001:db8:0:1::1]:1", nil},
		}},
		{"total", 2, 0, []step{
			{"192.0.2.1:1", nil}, {"192.0.2.2:1", nil}, {"192.0.2.3:1", ErrTooMany},
			{"", nil}, {"192.0.2.3:1", nil},
		}},
		{"zero value", 0, 0, []step{
			{"192.0.2.1:1", nil}, {"192.0.2.1:2", nil}, {"192.0.2.1:3", nil},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &Limiter{Max: tc.max, PerIP: tc.perIP}
			var releases []func()
			for i, s := range tc.steps {
				if s.addr == "" {
					releases[0]()
					releases[0]() // a second call gives nothing back twice
					releases = releases[1:]
					continue
				}
				r, err := l.Admit(tcp(s.addr))
				if !errors.Is(err, s.wantErr) || (err == nil) != (s.wantErr == nil) {
					t.Fatalf("step %d (%s): err %v, want %v", i, s.addr, err, s.wantErr)
				}
				if err == nil {
					releases = append(releases, r)
				}
			}
			if got := l.Open(); got != len(releases) {
				t.Fatalf("Open() = %d, want %d", got, len(releases))
			}
		})
	}

	u := &Limiter{PerIP: 1}
	for range 3 {
		if _, err := u.Admit(&net.UnixAddr{Name: "@", Net: "unix"}); err != nil {
			t.Fatalf("unix sockets have no per-address count: %v", err)
		}
	}
}

func TestSecure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !Secure(c) {
		t.Error("loopback TCP not secure")
	}
	if !Secure(tls.Client(c, &tls.Config{})) {
		t.Error("TLS not secure")
	}

	sock := filepath.Join(t.TempDir(), "s")
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	uc, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if !Secure(uc) {
		t.Error("unix socket not secure")
	}

	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:5", true},
		{"[::1]:5", true},
		{"[::ffff:127.0.0.1]:5", true},
		{"192.0.2.7:5", false},
		{"[2001:db8::7]:5", false},
	} {
		if got := LocalAddr(tcp(tc.addr)); got != tc.want {
			t.Errorf("LocalAddr(%s) = %v", tc.addr, got)
		}
		if got := Secure(fakeConn{remote: tcp(tc.addr)}); got != tc.want {
			t.Errorf("Secure(plain conn from %s) = %v", tc.addr, got)
		}
	}
}

// fakeConn is a connection from a remote address no test can dial from.
type fakeConn struct {
	net.Conn
	remote net.Addr
}

func (f fakeConn) RemoteAddr() net.Addr { return f.remote }

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
