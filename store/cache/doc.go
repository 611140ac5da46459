// Package cache is Basalt's shared cache and change-event bus: Redis when
// one is configured, an in-process implementation otherwise, both behind the
// Cache interface.
//
// It has two jobs. First, a cache whose entries carry the serial they were
// read at: the store keeps a current serial per scope (per user, say) and a
// reader whose entry is older than its scope's serial refetches, so several
// nodes never serve each other's stale data (magma did the same with
// memcached). Second, a publish/subscribe bus of change events, which with
// Redis reaches every process sharing it. Small windowed counters for login
// throttling live here too, and expiring locks that hold across nodes (the
// throttle's bans). Nothing here may be needed once lost: Redis runs
// without persistence, so what must survive its restart (web sessions,
// POP3 maildrop locks) is kept in SQL by the store.
//
// A subscriber that falls behind never slows publishers or other
// subscribers: it loses events and is then sent one Event of Kind
// KindResync, meaning "re-read whatever you were following". The Redis bus
// sends the same after its connection drops and comes back, because events
// published meanwhile are lost.
package cache
