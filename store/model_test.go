package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/session"
	"basalt/store"
)

// each runs f on a fresh store over SQLite and over MariaDB.
func each(t *testing.T, f func(t *testing.T, e *storetest.Env)) {
	eachWith(t, storetest.Options{}, f)
}

func eachWith(t *testing.T, o storetest.Options, f func(t *testing.T, e *storetest.Env)) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		f(t, storetest.Open(t, db, o))
	})
}

func TestDomains(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		st := e.Store
		if _, err := st.AddDomain(ctx, "Example.ORG"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.AddDomain(ctx, "example.org"); !errors.Is(err, store.ErrExists) {
			t.Fatalf("duplicate domain: got %v, want ErrExists", err)
		}
		for _, bad := range []string{"", "a b", "x@y", "*.example.org", ".lead", "a..b"} {
			if _, err := st.AddDomain(ctx, bad); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("AddDomain(%q) = %v, want ErrInvalid", bad, err)
			}
		}
		if err := st.AddDomainAlias(ctx, "example.net", "example.org"); err != nil {
			t.Fatal(err)
		}
		if err := st.AddDomainAlias(ctx, "example.org", "example.org"); !errors.Is(err, store.ErrExists) {
			t.Fatalf("alias named like a domain: got %v", err)
		}
		if as, err := st.DomainAliases(ctx, "example.org"); err != nil || len(as) != 1 || as[0] != "example.net" {
			t.Fatalf("DomainAliases = %v, %v", as, err)
		}
		d, err := st.DomainByName(ctx, "EXAMPLE.net")
		if err != nil || d.Name != "example.org" {
			t.Fatalf("DomainByName(alias) = %+v, %v", d, err)
		}
		e.NewUser(t, "alice@example.org", false)
		if err := st.DeleteDomain(ctx, "example.org"); !errors.Is(err, store.ErrNotEmpty) {
			t.Fatalf("delete domain with users: got %v, want ErrNotEmpty", err)
		}
		if _, err := st.AddDomain(ctx, "empty.test"); err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteDomain(ctx, "empty.test"); err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteDomain(ctx, "empty.test"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("delete missing domain: got %v", err)
		}
		ds, err := st.Domains(ctx)
		if err != nil || len(ds) != 1 || ds[0].Name != "example.org" {
			t.Fatalf("Domains = %+v, %v", ds, err)
		}
	})
}

func TestUsers(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		st := e.Store
		auth := e.NewUser(t, "Alice@Example.org", false)
		u := auth.User
		if u.Address != "alice@example.org" {
			t.Fatalf("address not normalised: %q", u.Address)
		}
		mbs, err := st.Account(u.ID, nil).Mailboxes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, m := range mbs {
			names = append(names, m.Name+m.SpecialUse)
		}
		want := []string{`Archive\Archive`, `Drafts\Drafts`, "INBOX", `Junk\Junk`, `Sent\Sent`, `Trash\Trash`}
		if !slices.Equal(names, want) {
			t.Fatalf("default mailboxes = %v, want %v", names, want)
		}
		if _, err := e.Session.CreateUser(ctx, sessionUser("alice@example.org")); !errors.Is(err, store.ErrExists) {
			t.Fatalf("duplicate user: %v", err)
		}
		if _, err := e.Session.CreateUser(ctx, sessionUser("bob@nowhere.test")); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("user in unknown domain: %v", err)
		}
		if err := st.AddIdentifier(ctx, u.ID, "ALICE"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Session.Authenticate(ctx, "alice", storetest.Password, "127.0.0.1"); err != nil {
			t.Fatalf("log in by identifier: %v", err)
		}
		e.NewUser(t, "bob@example.org", false)
		e.NewUser(t, "carol@other.test", false)
		all, err := st.Users(ctx, store.UserQuery{})
		if err != nil || len(all) != 3 {
			t.Fatalf("Users = %d, %v", len(all), err)
		}
		page, err := st.Users(ctx, store.UserQuery{Domain: "example.org", After: "alice@example.org", Limit: 5})
		if err != nil || len(page) != 1 || page[0].Address != "bob@example.org" {
			t.Fatalf("Users page = %+v, %v", page, err)
		}

		// Limits: server default < plan < user override.
		if _, err := st.SavePlan(ctx, "small", store.Limits{QuotaBytes: 1000, MaxRecvSize: 500}); err != nil {
			t.Fatal(err)
		}
		q := int64(2000)
		if err := st.SetLimits(ctx, u.ID, "small", store.LimitOverrides{QuotaBytes: &q}); err != nil {
			t.Fatal(err)
		}
		u2, err := st.UserByID(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		lim, err := st.Limits(ctx, u2)
		if err != nil || lim.QuotaBytes != 2000 || lim.MaxRecvSize != 500 {
			t.Fatalf("limits = %+v, %v", lim, err)
		}

		if err := st.DeleteUser(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := st.UserByID(ctx, u.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted user still readable: %v", err)
		}
		if _, err := e.Session.Authenticate(ctx, "alice", storetest.Password, "127.0.0.2"); err == nil {
			t.Fatal("deleted user's identifier still logs in")
		}
	})
}

func TestResolve(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		st := e.Store
		alice := e.NewUser(t, "alice@example.org", false).User.ID
		bob := e.NewUser(t, "bob@example.org", false).User.ID
		carol := e.NewUser(t, "carol@example.org", false).User.ID
		if err := st.AddDomainAlias(ctx, "example.net", "example.org"); err != nil {
			t.Fatal(err)
		}
		for _, a := range [][2]string{
			{"sales@example.org", "alice@example.org"},
			{"sales@example.org", "bob@example.org"},
			{"team@example.org", "sales@example.org"},
			{"ext@example.org", "someone@elsewhere.test"},
			{"sales-*@example.org", "carol@example.org"},
			{"sales-eu-?@example.org", "bob@example.org"},
			{"*@example.org", "carol@example.org"},
			{"loop1@example.org", "loop2@example.org"},
			{"loop2@example.org", "loop1@example.org"},
		} {
			if _, err := st.AddAlias(ctx, a[0], a[1]); err != nil {
				t.Fatalf("AddAlias %v: %v", a, err)
			}
		}
		tests := []struct {
			addr     string
			users    []int64
			external []string
			local    bool
			err      error
		}{
			{"alice@example.org", []int64{alice}, nil, true, nil},
			{"ALICE@example.net", []int64{alice}, nil, true, nil},
			{"alice+lists@example.org", []int64{alice}, nil, true, nil},
			{"sales@example.org", []int64{alice, bob}, nil, true, nil},
			{"team@example.org", []int64{alice, bob}, nil, true, nil},
			{"ext@example.org", nil, []string{"someone@elsewhere.test"}, true, nil},
			{"sales-us@example.org", []int64{carol}, nil, true, nil},
			{"sales-eu-1@example.org", []int64{bob}, nil, true, nil}, // more specific than sales-*
			{"anything@example.org", []int64{carol}, nil, true, nil}, // catch-all
			{"loop1@example.org", nil, nil, true, store.ErrUnknownLocal},
			{"x@elsewhere.test", nil, nil, false, nil},
		}
		for _, tc := range tests {
			res, err := st.Resolve(ctx, tc.addr)
			if !errors.Is(err, tc.err) {
				t.Errorf("Resolve(%s) error = %v, want %v", tc.addr, err, tc.err)
				continue
			}
			if tc.err != nil {
				continue
			}
			slices.Sort(res.Users)
			if res.Local != tc.local || !slices.Equal(res.Users, tc.users) || !slices.Equal(res.External, tc.external) {
				t.Errorf("Resolve(%s) = %+v, want users %v external %v local %v", tc.addr, res, tc.users, tc.external, tc.local)
			}
		}
		// Without a catch-all an unknown local address is refused.
		if err := st.DeleteAlias(ctx, "*@example.org", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Resolve(ctx, "nobody@example.org"); !errors.Is(err, store.ErrUnknownLocal) {
			t.Fatalf("unknown local: %v", err)
		}
		if _, err := st.AddAlias(ctx, "x@*.org", "alice@example.org"); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("wildcard domain accepted: %v", err)
		}
		if _, err := st.AddAlias(ctx, "x@example.net", "alice@example.org"); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("alias on a domain alias accepted: %v", err)
		}
	})
}

func TestNullSenders(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		st := e.Store
		for _, p := range []string{"*.mail.example.org", "192.0.2.?"} {
			if err := st.AddNullSender(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			host, ip string
			want     bool
		}{
			{"mx1.mail.example.org", "198.51.100.1", true},
			{"MX1.Mail.Example.org.", "", true},
			{"mail.example.org", "198.51.100.1", false},
			{"", "192.0.2.7", true},
			{"", "192.0.2.17", false},
		} {
			got, err := st.NullSenderAllowed(ctx, tc.host, tc.ip)
			if err != nil || got != tc.want {
				t.Errorf("NullSenderAllowed(%q, %q) = %v, %v; want %v", tc.host, tc.ip, got, err, tc.want)
			}
		}
	})
}

func TestMailboxes(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		m, err := a.CreateMailbox(ctx, "Work/Projects/Basalt", "")
		if err != nil {
			t.Fatal(err)
		}
		parent, err := a.MailboxByName(ctx, "Work/Projects")
		if err != nil || m.ParentID != parent.ID {
			t.Fatalf("parents not created: %+v %v", parent, err)
		}
		if _, err := a.CreateMailbox(ctx, "Work/Projects/Basalt", ""); !errors.Is(err, store.ErrExists) {
			t.Fatalf("duplicate mailbox: %v", err)
		}
		// LIST's wildcards anywhere, and "." or ".." as a level, are
		// refused for a new name, created or renamed to.
		tmpBox, err := a.CreateMailbox(ctx, "Renamable", "")
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"", "a//b", "/a", "a/", "a\x01b", "*", "%", ".", "..", "a/./b", "a/..", "../a", "a*b", "Work/%", "x%y/z"} {
			if _, err := a.CreateMailbox(ctx, bad, ""); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("CreateMailbox(%q) = %v, want ErrInvalid", bad, err)
			}
			if err := a.RenameMailbox(ctx, tmpBox.ID, bad); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("RenameMailbox(%q) = %v, want ErrInvalid", bad, err)
			}
		}
		for _, good := range []string{".hidden", "a..b", "...", "a.b/c."} {
			if _, err := a.CreateMailbox(ctx, good, ""); err != nil {
				t.Errorf("CreateMailbox(%q) = %v", good, err)
			}
		}
		if ms, err := a.Mailboxes(ctx); err != nil || len(ms) != 15 { // 6 made with the user, 4 above, 5 good ones (a.b a parent)
			t.Errorf("mailboxes after the refused names: %d, %v", len(ms), err)
		}
		if _, err := a.MailboxByName(ctx, "inbox"); err != nil {
			t.Fatalf("INBOX is case-insensitive: %v", err)
		}
		work, _ := a.MailboxByName(ctx, "Work")
		if err := a.RenameMailbox(ctx, work.ID, "Job"); err != nil {
			t.Fatal(err)
		}
		if _, err := a.MailboxByName(ctx, "Job/Projects/Basalt"); err != nil {
			t.Fatalf("child not renamed: %v", err)
		}
		if err := a.RenameMailbox(ctx, work.ID, "Job/Projects/Inside"); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("rename under itself: %v", err)
		}
		if err := a.DeleteMailbox(ctx, work.ID); !errors.Is(err, store.ErrNotEmpty) {
			t.Fatalf("delete with children: %v", err)
		}
		inbox := storetest.Inbox(t, a)
		if err := a.DeleteMailbox(ctx, inbox); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("delete INBOX: %v", err)
		}
		// A mailbox deleted and created again gets a new UIDVALIDITY.
		tmp, err := a.CreateMailbox(ctx, "Tmp", "")
		if err != nil {
			t.Fatal(err)
		}
		storetest.Append(t, a, tmp.ID, storetest.Message("a@x.test", "b@x.test", "hi", "body"), store.AppendOptions{})
		if err := a.DeleteMailbox(ctx, tmp.ID); err != nil {
			t.Fatal(err)
		}
		tmp2, err := a.CreateMailbox(ctx, "Tmp", "")
		if err != nil {
			t.Fatal(err)
		}
		if tmp2.UIDValidity == tmp.UIDValidity || tmp2.UIDNext != 1 || tmp2.Messages != 0 {
			t.Fatalf("recreated mailbox: %+v (old %+v)", tmp2, tmp)
		}
		u, _ := e.Store.UserByID(ctx, a.UserID())
		if u.UsedBytes != 0 || u.MessageCount != 0 {
			t.Fatalf("deleting a mailbox left usage %d bytes / %d messages", u.UsedBytes, u.MessageCount)
		}
		if err := a.Subscribe(ctx, tmp2.ID, false); err != nil {
			t.Fatal(err)
		}
		if got, _ := a.Mailbox(ctx, tmp2.ID); got.Subscribed {
			t.Fatal("still subscribed")
		}
	})
}

func sessionUser(addr string) session.NewUser {
	return session.NewUser{Address: addr, Password: storetest.Password}
}

// A subscription outlives its mailbox (RFC 3501 6.3.6) until the name is
// unsubscribed or a mailbox of that name is made again.
func TestLostSubscriptions(t *testing.T) {
	each(t, func(t *testing.T, e *storetest.Env) {
		ctx := context.Background()
		a := e.Account(e.NewUser(t, "alice@example.org", false))
		lost := func() []string {
			t.Helper()
			names, err := a.LostSubscriptions(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return names
		}
		var ids []int64
		for _, name := range []string{"Fruit/Peach", "Fruit/Pear", "Tofu"} {
			m, err := a.CreateMailbox(ctx, name, "")
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, m.ID)
		}
		if err := a.Subscribe(ctx, ids[2], false); err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if err := a.DeleteMailbox(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		if got := lost(); !slices.Equal(got, []string{"Fruit/Peach", "Fruit/Pear"}) {
			t.Fatalf("lost subscriptions = %q", got)
		}
		if err := a.DropLostSubscription(ctx, "Fruit/Pear"); err != nil {
			t.Fatal(err)
		}
		if err := a.DropLostSubscription(ctx, "Fruit/Pear"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("dropping it again: %v", err)
		}
		if _, err := a.CreateMailbox(ctx, "Fruit/Peach", ""); err != nil {
			t.Fatal(err)
		}
		if got := lost(); len(got) != 0 {
			t.Fatalf("after the mailbox came back: %q", got)
		}
		m, err := a.MailboxByName(ctx, "Fruit/Peach")
		if err != nil || !m.Subscribed {
			t.Fatalf("recreated mailbox: %+v, %v", m, err)
		}
	})
}
