package session

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"basalt/store/cache"
)

// Throttle counts failed logins per IP address and per subnet (/24 for
// IPv4, /64 for IPv6) in fixed windows, in the shared cache so that every
// node sees the same counts. magma blocked a subnet after 16 failures a day.
type Throttle struct {
	Cache cache.Cache
	// Failures allowed in a window before logins from there are refused;
	// 0 disables that check.
	PerIP     int64
	PerSubnet int64
	Window    time.Duration
}

func (t *Throttle) keys(ip string) (string, string, bool) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "", "", false
	}
	a = a.Unmap()
	bits := 24
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return "authfail:ip:" + a.String(), "authfail:net:" + p.String(), true
}

// Allowed returns ErrThrottled when ip or its subnet has failed too often.
func (t *Throttle) Allowed(ctx context.Context, ip string) error {
	ipKey, netKey, ok := t.keys(ip)
	if !ok || t.Cache == nil {
		return nil
	}
	for _, c := range []struct {
		key   string
		limit int64
	}{{ipKey, t.PerIP}, {netKey, t.PerSubnet}} {
		if c.limit <= 0 {
			continue
		}
		n, err := t.Cache.Incr(ctx, c.key, 0, t.Window)
		if err != nil {
			return fmt.Errorf("check login throttle: %w", err)
		}
		if n >= c.limit {
			return ErrThrottled
		}
	}
	return nil
}

// Failed records a failed login from ip.
func (t *Throttle) Failed(ctx context.Context, ip string) error {
	ipKey, netKey, ok := t.keys(ip)
	if !ok || t.Cache == nil {
		return nil
	}
	for _, k := range []string{ipKey, netKey} {
		if _, err := t.Cache.Incr(ctx, k, 1, t.Window); err != nil {
			return fmt.Errorf("record failed login: %w", err)
		}
	}
	return nil
}
