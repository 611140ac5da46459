package session_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"basalt/crypt"
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
				if got, err := e.Session.ProtocolSessions(ctx, u.ID); err != nil || len(got) != left {
					t.Fatalf("%d sessions listed (%v), want %d", len(got), err, left)
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

// TestProtocolSessionsAcrossNodes: two services sharing a cache are two
// nodes. Each lists the other's connections as well as its own, revokes
// one of them by its id (a listed id counts, an unknown one does not),
// and the connections of a node that stops without closing them drop out
// of the listing once their lease runs out, while a live node's renewals
// keep its own listed past it.
func TestProtocolSessionsAcrossNodes(t *testing.T) {
	testsupport.ForEachCache(t, func(t *testing.T, kind, addr, prefix string) {
		o := storetest.Options{}
		if kind == "redis" {
			o.RedisAddr, o.RedisPrefix = addr, prefix
		}
		e := storetest.Open(t, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}, o)
		ctx := context.Background()
		if _, err := e.Store.AddDomain(ctx, "example.org"); err != nil {
			t.Fatal(err)
		}
		u, err := e.Session.CreateUser(ctx, session.NewUser{Address: "al@example.org", Password: "password one"})
		if err != nil {
			t.Fatal(err)
		}
		const lease = 600 * time.Millisecond
		node := func() *session.Service {
			s := session.New(e.Store, e.Cache, session.Config{KDF: crypt.TestKDF(), ConnLease: lease}, nil)
			t.Cleanup(s.Close)
			return s
		}
		a, b := node(), node()
		open := func(s *session.Service, p store.Protocol, remote string) (*session.Conn, chan string) {
			t.Helper()
			f := s.For(p)
			au, err := f.Authenticate(ctx, u.Address, "password one", remote)
			if err != nil {
				t.Fatal(err)
			}
			ch := make(chan string, 1)
			c := f.Open(au, remote, func(why string) { ch <- why })
			t.Cleanup(c.Close)
			return c, ch
		}
		ids := func(s *session.Service) []string {
			t.Helper()
			ps, err := s.ProtocolSessions(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, p := range ps {
				out = append(out, p.ID+" "+p.Remote+" "+p.Node)
			}
			slices.Sort(out)
			return out
		}
		ai, aiEnd := open(a, store.ProtoIMAP, "192.0.2.1:1")
		ap, _ := open(a, store.ProtoPOP3, "192.0.2.2:2")
		bs, _ := open(b, store.ProtoSMTP, "192.0.2.3:3")
		all := []string{ai.ID + " 192.0.2.1:1 " + ai.Node, ap.ID + " 192.0.2.2:2 " + ap.Node, bs.ID + " 192.0.2.3:3 " + bs.Node}
		slices.Sort(all)
		if ai.Node == bs.Node || ai.Node == "" {
			t.Fatalf("nodes %q and %q", ai.Node, bs.Node)
		}
		// Past the lease, the renewals keep them listed, on both nodes.
		time.Sleep(lease + lease/2)
		if got := ids(b); !slices.Equal(got, all) {
			t.Fatalf("b lists %q, want %q", got, all)
		}
		if got := ids(a); !slices.Equal(got, all) {
			t.Fatalf("a lists %q, want %q", got, all)
		}

		// An id listed nowhere is not revoked; a's IMAP connection,
		// revoked from b, ends on a and leaves the listing.
		if n, err := b.RevokeProtocol(ctx, u.ID, "imap-0123456789abcdef"); err != nil || n != 0 {
			t.Fatalf("revoke of an unknown id: %d, %v", n, err)
		}
		if n, err := b.RevokeProtocol(ctx, u.ID, ai.ID); err != nil || n != 1 {
			t.Fatalf("revoke of a's connection from b: %d, %v", n, err)
		}
		select {
		case why := <-aiEnd:
			if why != "session revoked" {
				t.Fatalf("ended: %q", why)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a's connection was not ended")
		}
		ai.Close() // what the protocol does as the connection ends
		left := []string{ap.ID + " 192.0.2.2:2 " + ap.Node, bs.ID + " 192.0.2.3:3 " + bs.Node}
		slices.Sort(left)
		if got := ids(b); !slices.Equal(got, left) {
			t.Fatalf("b lists %q after the revoke, want %q", got, left)
		}

		// a stops renewing without closing its connections (as a node
		// that dies): they drop out of b's listing with their lease.
		a.Close()
		want := []string{bs.ID + " 192.0.2.3:3 " + bs.Node}
		testsupport.WaitFor(t, 5*time.Second, "a's listing to run out", func() bool { return slices.Equal(ids(b), want) })
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
