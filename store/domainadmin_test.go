package store_test

import (
	"context"
	"errors"
	"testing"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
	"basalt/store/admin"
)

func quota(n int64) *int64 { return &n }

// TestDomainLimits: a domain's limits hold where users and aliases are
// made (users, aliases, the sum of quotas), its default plan is given to
// new users, and each change is audited by the actor of its context.
func TestDomainLimits(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		st := e.Store
		ctx := store.WithActor(context.Background(), store.Actor{AdminID: 7, KeyID: 9, Name: "ops", Client: "192.0.2.1"})
		if _, err := st.SavePlan(ctx, "p", store.Limits{QuotaBytes: 100}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateDomain(ctx, "a.test", store.DomainLimits{MaxUsers: 3, MaxAliases: 1, MaxQuotaBytes: 250, DefaultPlan: "p"}); err != nil {
			t.Fatal(err)
		}
		hash := store.Password{Hash: "x"}
		u, err := st.CreateUser(ctx, store.NewUser{Address: "u1@a.test", Password: hash})
		if err != nil {
			t.Fatal(err)
		}
		if !u.PlanID.Valid {
			t.Error("the domain's default plan was not given")
		}
		if _, err := st.CreateUser(ctx, store.NewUser{Address: "u2@a.test", Password: hash, Overrides: store.LimitOverrides{QuotaBytes: quota(200)}}); !errors.Is(err, store.ErrDomainLimit) {
			t.Errorf("a quota past the domain's total: %v", err)
		}
		if _, err := st.CreateUser(ctx, store.NewUser{Address: "u2@a.test", Password: hash, Overrides: store.LimitOverrides{QuotaBytes: quota(0)}}); !errors.Is(err, store.ErrDomainLimit) {
			t.Errorf("an unlimited quota in a domain with a total: %v", err)
		}
		if _, err := st.CreateUser(ctx, store.NewUser{Address: "u2@a.test", Password: hash}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.SetDomainLimits(ctx, "a.test", store.DomainLimits{MaxUsers: 2, MaxAliases: 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateUser(ctx, store.NewUser{Address: "u3@a.test", Password: hash}); !errors.Is(err, store.ErrDomainLimit) {
			t.Errorf("a third user of a domain of 2: %v", err)
		}
		if _, err := st.AddAlias(ctx, "x@a.test", "u1@a.test"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.AddAlias(ctx, "y@a.test", "u1@a.test"); !errors.Is(err, store.ErrDomainLimit) {
			t.Errorf("a second alias of a domain of 1: %v", err)
		}
		if _, err := st.CreateDomain(ctx, "b.test", store.DomainLimits{DefaultPlan: "none"}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("an unknown default plan: %v", err)
		}
		// Rename: addresses, login names and aliases (here and in other
		// domains) follow.
		if _, err := st.CreateDomain(ctx, "c.test", store.DomainLimits{}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.AddAlias(ctx, "fwd@c.test", "u2@a.test"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.RenameDomain(ctx, "a.test", "c.test"); !errors.Is(err, store.ErrExists) {
			t.Errorf("rename onto a domain: %v", err)
		}
		d, err := st.RenameDomain(ctx, "a.test", "new.test")
		if err != nil {
			t.Fatal(err)
		}
		if d.Name != "new.test" || d.Users != 2 || d.Aliases != 1 {
			t.Errorf("renamed %+v", d)
		}
		if got, err := st.UserByID(ctx, u.ID); err != nil || got.Address != "u1@new.test" {
			t.Errorf("user after rename: %+v %v", got, err)
		}
		if _, err := st.Credentials(ctx, "u1@new.test"); err != nil {
			t.Errorf("login after rename: %v", err)
		}
		as, _ := st.Aliases(ctx, "")
		for _, a := range as {
			if a.Pattern != "x@new.test" && a.Pattern != "fwd@c.test" || a.Target != "u1@new.test" && a.Target != "u2@new.test" {
				t.Errorf("alias after rename: %+v", a)
			}
		}
		if err := st.DeleteDomainAudited(ctx, "new.test"); !errors.Is(err, store.ErrNotEmpty) {
			t.Errorf("delete with users: %v", err)
		}
		refuse := errors.New("precondition")
		if err := st.DeleteDomainAuditedIf(ctx, "c.test", func(store.DomainInfo) error { return refuse }); !errors.Is(err, refuse) {
			t.Errorf("a refused precondition: %v", err)
		}
		if err := st.DeleteDomainAudited(ctx, "c.test"); err != nil {
			t.Fatal(err)
		}
		recs, err := admin.New(st).Audit(ctx, admin.AuditQuery{Action: "domain.", Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, r := range recs {
			seen[r.Action] = true
			if r.Actor != "ops" || r.AdminID != 7 || r.KeyID != 9 || r.Client != "192.0.2.1" {
				t.Errorf("audit record %+v", r)
			}
		}
		for _, a := range []string{"domain.create", "domain.update", "domain.rename", "domain.delete"} {
			if !seen[a] {
				t.Errorf("no %s record: %v", a, seen)
			}
		}
	})
}
