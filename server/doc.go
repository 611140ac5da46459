// Package server is Basalt's composition root: it reads the configuration,
// opens the database, blob store and cache, builds the store and session
// services over them, serves the HTTP core (chi) and the protocol
// listeners, runs the periodic maintenance, and shuts all of it down in
// order. Nothing but cmd/basalt imports it.
package server
