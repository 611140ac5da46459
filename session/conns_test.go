package session_test

import (
	"context"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/session"
	"basalt/store"
	"basalt/store/cache"
)

// TestProtocolSessionChecks: a registered protocol connection is ended
// by the changes of its user that no longer allow it, and only by those;
// a change made between a login's check and its registration still
// reaches it; a revoke names one connection or all.
func TestProtocolSessionChecks(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		ctx := context.Background()
		e := storetest.Open(t, db, storetest.Options{})
		if _, err := e.Store.AddDomain(ctx, "example.org"); err != nil {
			t.Fatal(err)
		}
		n := 0
		newUser := func(t *testing.T) store.User {
			t.Helper()
			n++
			u, err := e.Session.CreateUser(ctx, session.NewUser{Address: "u" + string(rune('a'+n)) + "@example.org", Password: "password one"})
			if err != nil {
				t.Fatal(err)
			}
			return u
		}
		login := func(t *testing.T, u store.User, p store.Protocol) *session.Auth {
			t.Helper()
			a, err := e.Session.For(p).Authenticate(ctx, u.Address, "password one", "192.0.2.9:1000")
			if err != nil {
				t.Fatal(err)
			}
			return a
		}
		type conn struct {
			c     *session.Conn
			ended chan string
		}
		open := func(t *testing.T, a *session.Auth, p store.Protocol) conn {
			t.Helper()
			ch := make(chan string, 1)
			c := e.Session.For(p).Open(a, "192.0.2.9:1000", func(why string) { ch <- why })
			t.Cleanup(c.Close)
			return conn{c, ch}
		}
		// check waits for want ("" for: not ended).
		check := func(t *testing.T, c conn, want string) {
			t.Helper()
			wait := 5 * time.Second
			if want == "" {
				wait = 200 * time.Millisecond
			}
			select {
			case why := <-c.ended:
				if why != want {
					t.Fatalf("%s ended: %q, want %q", c.c.Protocol, why, want)
				}
			case <-time.After(wait):
				if want != "" {
					t.Fatalf("%s not ended, want %q", c.c.Protocol, want)
				}
			}
		}

		for _, tc := range []struct {
			name       string
			change     func(t *testing.T, u store.User)
			imap, pop3 string // why each ends; "" it stays
		}{
			{"suspend", func(t *testing.T, u store.User) { must(t, e.Store.Suspend(ctx, u.ID, "unpaid")) }, "account suspended", "account suspended"},
			{"lock", func(t *testing.T, u store.User) { must(t, e.Store.Lock(ctx, u.ID, time.Now().Add(time.Hour), "abuse")) }, "account locked", "account locked"},
			{"pop3 off", func(t *testing.T, u store.User) {
				must(t, e.Store.SetDeniedProtocols(ctx, u.ID, store.ProtocolSet(0).With(store.ProtoPOP3, true)))
			}, "", "access over pop3 turned off"},
			{"password", func(t *testing.T, u store.User) { must(t, e.Session.ResetPassword(ctx, u.ID, "a new password", false)) }, "password changed", "password changed"},
			{"rename", func(t *testing.T, u store.User) {
				_, err := e.Store.RenameUser(ctx, u.ID, "renamed"+u.Address)
				must(t, err)
			}, "account renamed", "account renamed"},
			{"delete", func(t *testing.T, u store.User) { must(t, e.Store.DeleteUser(ctx, u.ID)) }, "account deleted", "account deleted"},
			// Changes that leave the login allowed end nothing.
			{"quota", func(t *testing.T, u store.User) {
				q := int64(1 << 20)
				must(t, e.Store.UpdateUser(ctx, u.ID, store.UserUpdate{Overrides: store.LimitOverrides{QuotaBytes: &q}}, nil))
			}, "", ""},
			{"unlock", func(t *testing.T, u store.User) { must(t, e.Store.Lock(ctx, u.ID, time.Time{}, "")) }, "", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				u := newUser(t)
				im, pop := open(t, login(t, u, store.ProtoIMAP), store.ProtoIMAP), open(t, login(t, u, store.ProtoPOP3), store.ProtoPOP3)
				tc.change(t, u)
				check(t, im, tc.imap)
				check(t, pop, tc.pop3)
				left := 0
				for _, w := range []string{tc.imap, tc.pop3} {
					if w == "" {
						left++
					}
				}
				if got := len(e.Session.ProtocolSessions(u.ID)); got != left {
					t.Fatalf("%d sessions listed, want %d", got, left)
				}
			})
		}

		t.Run("change between login and registration", func(t *testing.T) {
			u := newUser(t)
			a := login(t, u, store.ProtoIMAP)
			// The announcement of this comes before the connection is
			// registered to hear it.
			must(t, e.Store.Suspend(ctx, u.ID, ""))
			time.Sleep(50 * time.Millisecond)
			check(t, open(t, a, store.ProtoIMAP), "account suspended")
		})

		t.Run("revoke one, then all", func(t *testing.T) {
			u, other := newUser(t), newUser(t)
			c1, c2 := open(t, login(t, u, store.ProtoIMAP), store.ProtoIMAP), open(t, login(t, u, store.ProtoSMTP), store.ProtoSMTP)
			if !session.IsProtocolSessionID(c1.c.ID) || session.IsProtocolSessionID("0123456789abcdef0123456789abcdef") {
				t.Fatalf("id %q", c1.c.ID)
			}
			if n, err := e.Session.RevokeProtocol(ctx, other.ID, c1.c.ID); err != nil || n != 0 {
				t.Fatalf("another user's revoke: %d, %v", n, err)
			}
			check(t, c1, "")
			if n, err := e.Session.RevokeProtocol(ctx, u.ID, c1.c.ID); err != nil || n != 1 {
				t.Fatalf("revoke one: %d, %v", n, err)
			}
			check(t, c1, "session revoked")
			check(t, c2, "")
			if n, err := e.Session.RevokeProtocol(ctx, u.ID, ""); err != nil || n != 1 {
				t.Fatalf("revoke all: %d, %v", n, err)
			}
			check(t, c2, "session revoked")
		})

		t.Run("a slow check holds up no revoke", func(t *testing.T) {
			slow, other := newUser(t), newUser(t)
			s, o := open(t, login(t, slow, store.ProtoIMAP), store.ProtoIMAP), open(t, login(t, other, store.ProtoIMAP), store.ProtoIMAP)
			time.Sleep(50 * time.Millisecond) // the logins' own checks are done
			release, blocked := make(chan struct{}), make(chan struct{}, 1)
			e.Session.SetBeforeRecheck(func(id int64) {
				if id == slow.ID {
					select {
					case blocked <- struct{}{}:
					default:
					}
					<-release
				}
			})
			defer close(release)
			// A change of slow's whose check the store is slow to answer.
			q := int64(1 << 20)
			must(t, e.Store.UpdateUser(ctx, slow.ID, store.UserUpdate{Overrides: store.LimitOverrides{QuotaBytes: &q}}, nil))
			select {
			case <-blocked:
			case <-time.After(5 * time.Second):
				t.Fatal("the change was not checked")
			}
			// Another node's revoke of other comes over the bus meanwhile.
			must(t, e.Cache.Publish(ctx, cache.Event{UserID: other.ID, Kind: cache.KindRevoke}))
			check(t, o, "session revoked")
			check(t, s, "")
		})
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
