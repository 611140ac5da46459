// Package faults holds no code: its tests run the real daemon (server.Run,
// in a child process) under a mixed load of SMTP ingest, IMAP and webmail
// JSON-RPC calls, and break what it depends on while the load runs:
//
//   - MariaDB stopped and started again: mail is answered 4xx, IMAP
//     NO [UNAVAILABLE] and JSON-RPC the unavailable code meanwhile, and
//     Basalt works again within seconds of the database's return, without
//     a restart of its own;
//   - Redis restarted: the cache and the change bus reconnect, and IDLE
//     sessions and the webmail's event stream see what changed;
//   - the disk full (a small tmpfs as the data directory): mail is
//     answered 452 4.3.1, APPEND and webmail sends fail temporarily, and
//     everything works again once there is room;
//   - the daemon killed with SIGKILL twenty times under the load, on
//     SQLite and on MariaDB.
//
// After each, every message a client was told was stored is in the store,
// whole: the tests send each with a unique Message-ID and compare its
// bytes with what IMAP FETCH returns.
//
// The tests need MariaDB's and Redis's programs (scripts/testenv.sh
// installs them) and root, for mount(2); they fail under CI=true when
// either is missing and are skipped elsewhere.
package faults
