package listener

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync"
)

var (
	// ErrTooMany refuses a connection beyond the listener's total.
	ErrTooMany = errors.New("too many connections")
	// ErrTooManyFromIP refuses a connection beyond the per-client limit.
	ErrTooManyFromIP = errors.New("too many connections from your address")
)

// Limiter counts open connections, in all and per client. Its zero value
// admits everything; Max and PerIP (0: unlimited) must be set before the
// first Admit. A Limiter must not be copied after first use.
type Limiter struct {
	Max   int
	PerIP int

	mu    sync.Mutex
	open  int
	perIP map[netip.Prefix]int
}

// Admit counts a new connection from a, or refuses it. release gives the
// place back; it is safe to call more than once.
func (l *Limiter) Admit(a net.Addr) (release func(), err error) {
	_, key := ClientKey(a)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.Max > 0 && l.open >= l.Max:
		return nil, ErrTooMany
	case key.IsValid() && l.PerIP > 0 && l.perIP[key] >= l.PerIP:
		return nil, ErrTooManyFromIP
	}
	l.open++
	if key.IsValid() {
		if l.perIP == nil {
			l.perIP = map[netip.Prefix]int{}
		}
		l.perIP[key]++
	}
	var once sync.Once
	return func() { once.Do(func() { l.release(key) }) }, nil
}

func (l *Limiter) release(key netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if key.IsValid() {
		if l.perIP[key]--; l.perIP[key] <= 0 {
			delete(l.perIP, key)
		}
	}
}

// Open returns the number of connections admitted and not yet released.
func (l *Limiter) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// ClientKey returns a TCP client's address and what it is counted under:
// the address for IPv4, its /64 for IPv6 (a host usually holds a whole
// /64). Unix sockets have neither.
func ClientKey(a net.Addr) (netip.Addr, netip.Prefix) {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}, netip.Prefix{}
	}
	ip := tcp.AddrPort().Addr().Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return ip, p
}

// Secure reports whether a password may be sent over c in the clear: c
// is TLS, or its peer is on this machine (a loopback address or a unix
// socket), where nobody can listen in that could not also read the
// server's memory. Dovecot draws the line in the same place, which is
// what lets a default setup serve local clients without certificates.
// A wrapper with a NetConn method (as *tls.Conn has) is looked through.
func Secure(c net.Conn) bool {
	for {
		switch v := c.(type) {
		case *tls.Conn:
			return true
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
			continue
		}
		break
	}
	return LocalAddr(c.RemoteAddr())
}

// LocalAddr reports whether a names a peer on this machine: a loopback
// TCP address or a unix socket.
func LocalAddr(a net.Addr) bool {
	switch v := a.(type) {
	case *net.TCPAddr:
		return v.AddrPort().Addr().Unmap().IsLoopback()
	case *net.UnixAddr:
		return true
	}
	return false
}
