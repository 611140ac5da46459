package session

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"basalt/store/cache"
)

// Throttle counts login attempts per client address and per network in
// fixed windows, in the shared cache so that every node sees the same
// counts. magma blocked a subnet after 16 failures a day.
//
// An attempt is counted before its password is checked and the count is
// given back only when it succeeds: parallel attempts cannot all slip in
// under the limit while their hashes are being computed.
//
// IPv4 is counted per address and per /24. An IPv6 host usually holds a
// whole /64, so there the "address" is the /64 and the network the /48.
type Throttle struct {
	Cache cache.Cache
	// Failures allowed in a window before attempts from there are refused;
	// 0 disables that check.
	PerIP     int64
	PerSubnet int64
	Window    time.Duration
}

type throttleKey struct {
	key   string
	limit int64
}

func (t *Throttle) keys(ip netip.Addr) []throttleKey {
	ip = ip.Unmap()
	hostBits, netBits := 32, 24
	if ip.Is6() {
		hostBits, netBits = 64, 48
	}
	host, _ := ip.Prefix(hostBits)
	network, _ := ip.Prefix(netBits)
	var ks []throttleKey
	if t.PerIP > 0 {
		ks = append(ks, throttleKey{"authfail:ip:" + host.String(), t.PerIP})
	}
	if t.PerSubnet > 0 {
		ks = append(ks, throttleKey{"authfail:net:" + network.String(), t.PerSubnet})
	}
	return ks
}

// Begin counts an attempt from ip and returns ErrThrottled when ip or its
// network has no failures left in the window.
func (t *Throttle) Begin(ctx context.Context, ip netip.Addr) error {
	throttled := false
	for _, k := range t.keys(ip) {
		n, err := t.Cache.Incr(ctx, k.key, 1, t.Window)
		if err != nil {
			return fmt.Errorf("login throttle: %w", err)
		}
		if n > k.limit {
			throttled = true
		}
	}
	if throttled {
		return ErrThrottled
	}
	return nil
}

// Succeeded gives back the count of an attempt that succeeded.
func (t *Throttle) Succeeded(ctx context.Context, ip netip.Addr) error {
	for _, k := range t.keys(ip) {
		if _, err := t.Cache.Incr(ctx, k.key, -1, t.Window); err != nil {
			return fmt.Errorf("login throttle: %w", err)
		}
	}
	return nil
}

// ParseClientIP reads a client address as front ends have it: an IP
// address, or host:port as net.Conn.RemoteAddr().String() gives it.
func ParseClientIP(s string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("client address %q: %w", s, err)
	}
	return a.Unmap(), nil
}
