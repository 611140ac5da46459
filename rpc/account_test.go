package rpc

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

func TestMetaAndAliases(t *testing.T) {
	q := int64(1 << 20)
	forEachBackend(t, fixtureOptions{}, func(t *testing.T, fx *fixture) {
		ctx := context.Background()
		c, auth := fx.user(t, "alice@example.org", false)
		if err := fx.env.Store.SetLimits(ctx, auth.User.ID, "", store.LimitOverrides{QuotaBytes: &q}); err != nil {
			t.Fatal(err)
		}
		fx.deliver(t, auth, storetest.SizedMessage(5000))
		var m metaResult
		c.must("meta", nil, &m)
		if m.User.Address != "alice@example.org" || m.Quota.Limit != q || m.Quota.Used < 5000 || m.Quota.Messages != 1 ||
			m.Limits.MaxBatch != 50 || m.Limits.MaxRecipients != 100 || m.Limits.MaxMessageBytes == 0 || m.Session.Expires.IsZero() {
			t.Fatalf("meta: %+v", m)
		}

		// Aliases: the user's own, not another's, nor a list with others.
		fx.env.NewUser(t, "bob@example.org", false)
		for _, a := range [][2]string{
			{"al@example.org", "alice@example.org"},
			{"team@example.org", "alice@example.org"},
			{"team@example.org", "bob@example.org"},
			{"b@example.org", "bob@example.org"},
		} {
			if _, err := fx.env.Store.AddAlias(ctx, a[0], a[1]); err != nil {
				t.Fatal(err)
			}
		}
		if err := fx.env.Store.AddDomainAlias(ctx, "example.net", "example.org"); err != nil {
			t.Fatal(err)
		}
		var as aliasesResult
		c.must("aliases", nil, &as)
		var got []string
		for _, a := range as.Aliases {
			got = append(got, a.Address)
		}
		want := []string{"alice@example.org", "al@example.org", "alice@example.net"}
		if !slices.Equal(got, want) || !as.Aliases[0].Primary || as.Aliases[1].Primary {
			t.Fatalf("aliases %v, want %v", as.Aliases, want)
		}
	})
}

func TestFolders(t *testing.T) {
	forEachBackend(t, fixtureOptions{}, func(t *testing.T, fx *fixture) {
		c, auth := fx.user(t, "alice@example.org", false)
		fx.deliver(t, auth, storetest.Message("x@example.com", "alice@example.org", "hi", "hello"))
		list := func(ctxName string) foldersResult {
			var r foldersResult
			c.must("folders.list", map[string]any{"context": ctxName}, &r)
			return r
		}
		byPath := func(r foldersResult) map[string]folderItem {
			m := map[string]folderItem{}
			for _, f := range r.Folders {
				m[f.Path] = f
			}
			return m
		}
		r := list("mail")
		fs := byPath(r)
		if in := fs["INBOX"]; in.Total != 1 || in.Unread != 1 || in.Size == 0 || r.State == "" {
			t.Fatalf("INBOX: %+v (state %q)", in, r.State)
		}
		if fs["Sent"].SpecialUse != `\Sent` || fs["Trash"].SpecialUse != `\Trash` {
			t.Fatalf("special uses: %+v", r.Folders)
		}

		var added folderIDResult
		c.must("folders.add", map[string]any{"name": "Projects"}, &added)
		var sub folderIDResult
		c.must("folders.add", map[string]any{"name": "Basalt", "parentID": added.FolderID}, &sub)
		c.fail("folders.add", map[string]any{"name": "Projects"}, CodeConflict, "exists")
		c.fail("folders.add", map[string]any{"name": "a/b"}, CodeInvalid, "invalid")
		// LIST's wildcards and the levels "." and ".." are refused by the
		// store, for every front end.
		for _, bad := range []string{"*", "%", "a*b", ".", ".."} {
			e := c.fail("folders.add", map[string]any{"name": bad}, CodeInvalid, "invalid")
			if !strings.Contains(e.Message, fmt.Sprintf("mailbox name %q", bad)) {
				t.Errorf("folders.add %q: message %q", bad, e.Message)
			}
			c.fail("folders.add", map[string]any{"name": bad, "parentID": added.FolderID}, CodeInvalid, "invalid")
			c.fail("folders.rename", map[string]any{"folderID": sub.FolderID, "name": bad}, CodeInvalid, "invalid")
		}
		c.fail("folders.add", map[string]any{"name": ""}, CodeInvalidParams, "invalidParams")
		c.fail("folders.add", map[string]any{"name": "x", "context": "calendar"}, CodeInvalidParams, "invalidParams")
		c.fail("folders.add", map[string]any{"name": "x", "parentID": 1 << 40}, CodeNotFound, "notFound")
		fs = byPath(list("mail"))
		if f := fs["Projects/Basalt"]; f.FolderID != sub.FolderID || f.ParentID != added.FolderID || f.Name != "Basalt" {
			t.Fatalf("sub-folder: %+v", f)
		}
		c.must("folders.rename", map[string]any{"folderID": added.FolderID, "name": "Work"}, nil)
		if f := byPath(list("mail"))["Work/Basalt"]; f.FolderID != sub.FolderID {
			t.Fatalf("child after parent rename: %+v", list("mail").Folders)
		}
		c.must("folders.move", map[string]any{"folderID": sub.FolderID, "parentID": 0}, nil)
		if f := byPath(list("mail"))["Basalt"]; f.FolderID != sub.FolderID || f.ParentID != 0 {
			t.Fatalf("moved to the top: %+v", list("mail").Folders)
		}
		c.fail("folders.move", map[string]any{"folderID": added.FolderID, "parentID": added.FolderID}, CodeInvalid, "invalid")
		c.fail("folders.rename", map[string]any{"folderID": fs["INBOX"].FolderID, "name": "Old"}, CodeInvalid, "invalid")
		c.fail("folders.remove", map[string]any{"folderID": fs["INBOX"].FolderID}, CodeInvalid, "invalid")
		c.must("folders.move", map[string]any{"folderID": sub.FolderID, "parentID": added.FolderID}, nil)
		c.fail("folders.remove", map[string]any{"folderID": added.FolderID}, CodeConflict, "notEmpty")
		c.must("folders.remove", map[string]any{"folderID": sub.FolderID}, nil)
		c.must("folders.remove", map[string]any{"folderID": added.FolderID}, nil)
		c.fail("folders.remove", map[string]any{"folderID": added.FolderID}, CodeNotFound, "notFound")
		if _, ok := byPath(list("mail"))["Work"]; ok {
			t.Fatal("removed folder still listed")
		}

		// Address book folders.
		cr := list("contacts")
		if len(cr.Folders) != 1 || !cr.Folders[0].Default || cr.Folders[0].Name != "Contacts" {
			t.Fatalf("contact folders of a new user: %+v", cr.Folders)
		}
		var friends, family folderIDResult
		c.must("folders.add", map[string]any{"context": "contacts", "name": "Friends"}, &friends)
		c.must("folders.add", map[string]any{"context": "contacts", "name": "Family", "parentID": friends.FolderID}, &family)
		c.must("folders.rename", map[string]any{"context": "contacts", "folderID": family.FolderID, "name": "Kin"}, nil)
		c.must("folders.move", map[string]any{"context": "contacts", "folderID": family.FolderID, "parentID": 0}, nil)
		c.fail("folders.remove", map[string]any{"context": "contacts", "folderID": cr.Folders[0].FolderID}, CodeInvalid, "invalid")
		c.must("folders.remove", map[string]any{"context": "contacts", "folderID": friends.FolderID}, nil)
		cf := byPath(list("contacts"))
		if len(cf) != 2 || cf["Kin"].FolderID != family.FolderID || cf["Kin"].ParentID != 0 {
			t.Fatalf("contact folders: %+v", cf)
		}
		// The state moves with every change.
		if s := list("mail").State; s == r.State {
			t.Fatalf("state %s did not move", s)
		}
	})
}

func TestSettings(t *testing.T) {
	forEachBackend(t, fixtureOptions{}, func(t *testing.T, fx *fixture) {
		c, _ := fx.user(t, "alice@example.org", true)

		var cfg configResult
		c.must("config.load", nil, &cfg)
		if len(cfg.Config) != 0 {
			t.Fatalf("config of a new user: %v", cfg.Config)
		}
		c.must("config.edit", map[string]any{"set": map[string]string{"theme": "dark", "pageSize": "50"}}, &cfg)
		cfg = configResult{}
		c.must("config.edit", map[string]any{"set": map[string]string{"pageSize": ""}}, &cfg)
		if len(cfg.Config) != 1 || cfg.Config["theme"] != "dark" {
			t.Fatalf("config: %v", cfg.Config)
		}
		c.fail("config.edit", map[string]any{"set": map[string]string{"bad key": "x"}}, CodeInvalid, "invalid")
		c.fail("config.edit", map[string]any{"set": map[string]any{"n": 1}}, CodeInvalidParams, "invalidParams")
		c.fail("config.edit", nil, CodeInvalidParams, "invalidParams")
		// config keys cannot reach the delivery rules.
		var vr vacationResult
		c.must("settings.vacation", nil, &vr)
		if vr.Vacation.Enabled {
			t.Fatalf("vacation of a new user: %+v", vr)
		}

		var id identityResult
		c.must("settings.identity", map[string]any{"displayName": "Alice Liddell", "signature": "-- \nAlice"}, &id)
		c.must("settings.identity", map[string]any{"signature": "-- \nA."}, &id)
		if id.DisplayName != "Alice Liddell" || id.Signature != "-- \nA." {
			t.Fatalf("identity: %+v", id)
		}
		c.fail("settings.identity", map[string]any{"displayName": "a\r\nBcc: x@y"}, CodeInvalid, "invalid")

		start := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
		c.must("settings.vacation", map[string]any{"vacation": map[string]any{"enabled": true, "subject": "Away", "body": "Back soon", "start": start, "intervalDays": 3}}, &vr)
		if !vr.Vacation.Enabled || !vr.Active || vr.Vacation.IntervalDays != 3 || vr.Vacation.Start == nil || !vr.Vacation.Start.Equal(start) {
			t.Fatalf("vacation: %+v", vr)
		}
		c.must("settings.vacation", nil, &vr)
		if vr.Vacation.Subject != "Away" {
			t.Fatalf("vacation reloaded: %+v", vr)
		}
		c.fail("settings.vacation", map[string]any{"vacation": map[string]any{"enabled": true, "start": "tomorrow"}}, CodeInvalidParams, "invalidParams")
		c.fail("settings.vacation", map[string]any{"vacation": map[string]any{"enabled": true, "start": start, "end": start.Add(-time.Hour)}}, CodeInvalid, "invalid")

		// Password: the old one must be right; the session goes on with
		// a new token; the key opens under the new password.
		c.fail("settings.password", map[string]any{"old": "wrong", "new": "another long password"}, CodeInvalid, "invalid")
		c.fail("settings.password", map[string]any{"old": storetest.Password, "new": "short"}, CodeInvalid, "invalid")
		var pr passwordResult
		c.must("settings.password", map[string]any{"old": storetest.Password, "new": "another long password"}, &pr)
		if !pr.OK || pr.CSRF == "" || pr.CSRF == c.csrf {
			t.Fatalf("password: %+v", pr)
		}
		c.fail("meta", nil, CodeForbidden, "") // the old token is dead
		c.csrf = pr.CSRF
		c.must("meta", nil, nil)
		other := fx.client(t)
		var res authResult
		other.must("auth", map[string]any{"username": "alice@example.org", "password": storetest.Password}, &res)
		if res.Auth != "failed" {
			t.Fatalf("old password still works: %+v", res)
		}
		other.login("alice@example.org", "another long password")
		if _, err := fx.env.Session.Authenticate(context.Background(), "alice@example.org", "another long password", "127.0.0.1"); err != nil {
			t.Fatalf("key under the new password: %v", err)
		}
	})
}
