package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"
)

// PairConfig is what the configuration of a protocol served on a pair of
// listeners, plaintext (upgraded by STARTTLS or STLS) and implicit TLS,
// holds for both: POP3 and IMAP.
type PairConfig struct {
	// Addresses to listen on; "off" turns a listener off.
	Listen    string `toml:"listen"`
	TLSListen string `toml:"tls_listen"`
	// AllowPlaintextAuth takes passwords without TLS from clients other
	// than loopback ones.
	AllowPlaintextAuth  bool          `toml:"allow_plaintext_auth"`
	MaxConnections      int           `toml:"max_connections"`
	MaxConnectionsPerIP int           `toml:"max_connections_per_ip"`
	MaxBadCommands      int           `toml:"max_bad_commands"`
	MaxLineLength       int           `toml:"max_line_length"`
	LoginTimeout        time.Duration `toml:"login_timeout"`
	IdleTimeout         time.Duration `toml:"idle_timeout"`
}

// frontEnd is a mail protocol's bound listeners and the server over them,
// as Run starts and stops them.
type frontEnd interface {
	// addrs lists the listeners for the start-up log line.
	addrs() []string
	// count is the number of listeners, each of which may report an error.
	count() int
	// serve runs every listener until shutdown, reporting failures on errc.
	serve(wg *sync.WaitGroup, errc chan<- error)
	// shutdown lets the work in flight finish until ctx ends.
	shutdown(ctx context.Context) error
	// close releases the listeners of a front end that never served.
	close()
}

// tlsServer is a protocol server with two ways in: plaintext, upgraded by
// the protocol's STARTTLS, and TLS from the first byte (RFC 8314).
type tlsServer interface {
	Serve(net.Listener) error
	ServeTLS(net.Listener) error
	Shutdown(context.Context) error
}

// pairListeners are a protocol's plaintext and implicit-TLS listeners.
type pairListeners struct {
	proto string // "pop3", "imap"; the implicit-TLS one is logged as proto+"s"
	srv   tlsServer
	lns   []boundListener
}

type boundListener struct {
	ln  net.Listener
	tls bool
}

// listenPair binds a protocol's listeners at plain and tlsAddr ("off" or
// "" leaves one out, and there is no implicit TLS without a TLS
// configuration), or none: on an error the ones already bound are closed.
func listenPair(proto string, srv tlsServer, plain, tlsAddr string, tlsCfg *tls.Config) (*pairListeners, error) {
	p := &pairListeners{proto: proto, srv: srv}
	for _, l := range []boundListener{{tls: false}, {tls: true}} {
		addr := plain
		if l.tls {
			addr = tlsAddr
		}
		if addr == listenOff || addr == "" || l.tls && tlsCfg == nil {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("listen %s on %s: %w", proto, addr, err)
		}
		l.ln = ln
		p.lns = append(p.lns, l)
	}
	return p, nil
}

func (p *pairListeners) close() {
	for _, l := range p.lns {
		l.ln.Close()
	}
}

func (p *pairListeners) count() int { return len(p.lns) }

func (p *pairListeners) addrs() []string {
	var out []string
	for _, l := range p.lns {
		name := p.proto
		if l.tls {
			name += "s"
		}
		out = append(out, name+"="+l.ln.Addr().String())
	}
	return out
}

func (p *pairListeners) serve(wg *sync.WaitGroup, errc chan<- error) {
	for _, l := range p.lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			serve := p.srv.Serve
			if l.tls {
				serve = p.srv.ServeTLS
			}
			if err := serve(l.ln); err != nil {
				errc <- err
			}
		}()
	}
}

func (p *pairListeners) shutdown(ctx context.Context) error { return p.srv.Shutdown(ctx) }
