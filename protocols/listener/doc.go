// Package listener is what every mail listener (SMTP, LMTP, IMAP, POP3)
// shares about the connections it serves, from accept to close: one
// connection Set per server.
//
// A Set accepts (waiting out accept errors that pass, as net/http does),
// admits within the limits in all and per client network (Limiter) and
// answers the connections it refuses with one line (Refuser); it tracks
// every connection it admitted, which the protocol marks busy while a
// command or transaction runs and idle between them; and it ends them:
// Shutdown stops accepting, wakes the idle connections to be closed at
// once, lets the busy ones finish until its context ends and then aborts
// the rest; Close aborts at once. Each connection has a context, derived
// from the Set's, that ends when the client goes away (a read fails, or
// Watch sees it leave during a command), when the connection is closed or
// when the Set aborts: the store calls a command makes run on it. The
// servers give their Sets a context of their own rather than the daemon's
// run context, as net/http's BaseContext is: the end of the run starts a
// Shutdown, which must let busy commands finish before it aborts them,
// and a context cancelled with the run would cut them at once. Work a
// connection starts that outlives it (SMTP's deliveries in flight) is
// waited for through the Drain hook. The shape is net/http.Server's
// (trackConn, closeIdleConns, StateActive/StateIdle), for line protocols
// whose libraries (go-smtp, go-imap) run their own accept loops: a Set
// gives them a net.Listener (Set.Listener).
//
// The package was connlimit, which held the limits alone; it is named for
// what it now is, the listeners' one lifecycle, so that the protocols
// write none of their own. Secure (may a password be sent in the clear
// over a connection) lives here too, as a property of the connection.
package listener
