// Package outbound keeps the outbound queue's rows and files: messages
// waiting to be relayed to a smarthost, each recipient's state, and the
// claims (leases with a fencing token) by which the nodes sharing the
// database share the work. Its one client is the delivery service, which
// runs the queue; a message for a secure local user waits in it sealed to
// the user's key (store.SealForQueue) and is delivered as it is.
//
// It writes on the store's spine (store/internal/spine): the same
// transactions, daily counters and file references as the store.
package outbound
