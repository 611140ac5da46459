// Package testsupport holds the helpers every Basalt test shares: the
// MariaDB and Redis servers that `make test` starts (scripts/testenv.sh),
// a private database or key prefix per test, and SQLite files in a
// temporary directory. Tests that break the services start private ones
// (StartMariaDB, StartRedis) that they may stop and start again, and run
// a daemon as a child process (Daemon) that they may kill.
//
// With CI=true a service that is not configured fails the test; elsewhere
// the test is skipped with a note saying how to run it.
package testsupport
