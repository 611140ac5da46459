package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"basalt/internal/testsupport"
)

// TestUnavailableAndNoSpace: which errors say the database is away or
// the disk full, the two conditions front ends answer "try again later"
// for, and which are the request's own.
func TestUnavailableAndNoSpace(t *testing.T) {
	// A MariaDB that is not there, as the driver reports it.
	db, err := sql.Open("mysql", fmt.Sprintf("root@tcp(%s)/x?timeout=2s", testsupport.FreePort(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	refused := db.PingContext(ctx)
	if refused == nil {
		t.Fatal("ping of a closed port succeeded")
	}
	wrap := func(err error) error { return fmt.Errorf("append to mailbox 3: %w", err) }
	for _, tc := range []struct {
		name               string
		err                error
		unavailable, space bool
	}{
		{"connection refused", wrap(refused), true, false},
		{"bad connection", wrap(driver.ErrBadConn), true, false},
		{"invalid connection", wrap(mysql.ErrInvalidConn), true, false},
		{"server shutdown", wrap(&mysql.MySQLError{Number: 1053}), true, false},
		{"too many connections", wrap(&mysql.MySQLError{Number: 1040}), true, false},
		{"read-only after a failover", wrap(&mysql.MySQLError{Number: 1290}), true, false},
		{"disk full", wrap(&mysql.MySQLError{Number: 1021}), false, true},
		{"table full", wrap(&mysql.MySQLError{Number: 1114}), false, true},
		{"ENOSPC writing a file", wrap(&fs.PathError{Op: "write", Path: "/x", Err: syscall.ENOSPC}), false, true},
		{"disk quota", wrap(&fs.PathError{Op: "write", Path: "/x", Err: syscall.EDQUOT}), false, true},
		{"duplicate key", wrap(&mysql.MySQLError{Number: 1062}), false, false},
		{"syntax error", wrap(&mysql.MySQLError{Number: 1064}), false, false},
		{"no rows", wrap(sql.ErrNoRows), false, false},
		{"other", errors.New("something else"), false, false},
		{"nil", nil, false, false},
	} {
		if got := IsUnavailable(tc.err); got != tc.unavailable {
			t.Errorf("%s: IsUnavailable = %v", tc.name, got)
		}
		if got := IsNoSpace(tc.err); got != tc.space {
			t.Errorf("%s: IsNoSpace = %v", tc.name, got)
		}
	}
}
