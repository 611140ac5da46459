package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"basalt/delivery"
	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
)

// TestBulletin: a bulletin to a domain reaches each of its users once,
// through delivery (a user over quota is a failure, counted, and the rest
// go on), none of another domain's; interrupted after its first batch,
// it resumes where it stopped without sending twice.
func TestBulletin(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		e := storetest.Open(t, db, storetest.Options{})
		ctx := context.Background()
		st := e.Store
		for _, d := range []string{"news.example", "other.example"} {
			if _, err := st.AddDomain(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		full := int64(10)
		var nus []store.NewUser
		for i := range 70 {
			nu := store.NewUser{Address: fmt.Sprintf("u%02d@news.example", i), Password: store.Password{Hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"}}
			if i == 3 {
				nu.Overrides.QuotaBytes = &full // too small for the bulletin
			}
			nus = append(nus, nu)
		}
		nus = append(nus, store.NewUser{Address: "x@other.example", Password: nus[0].Password})
		if _, err := st.CreateUsers(ctx, nus); err != nil {
			t.Fatal(err)
		}
		agent := delivery.New(delivery.Config{Hostname: "mx.example"}, st, nil, nil)
		raw := []byte("From: Admin <postmaster@news.example>\r\nTo: undisclosed-recipients:;\r\nSubject: Maintenance tonight\r\n\r\nThe server goes down at 22:00.\r\n")
		b, err := st.CreateBulletin(ctx, store.BulletinDomain, "news.example", "postmaster@news.example", raw)
		if err != nil {
			t.Fatal(err)
		}
		if b.Total != 70 {
			t.Fatalf("total %d, want 70", b.Total)
		}
		stop := errors.New("stopped")
		got, err := agent.SendBulletin(ctx, b.ID, func(store.Bulletin) error { return stop })
		if !errors.Is(err, stop) || got.Delivered+got.Failed != 50 {
			t.Fatalf("first run: %+v, %v", got, err)
		}
		got, err = agent.SendBulletin(ctx, b.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != store.BulletinDone || got.Delivered != 69 || got.Failed != 1 || !strings.Contains(got.LastError, "u03@news.example") {
			t.Fatalf("after resuming: %+v", got)
		}
		for _, addr := range []string{"u00@news.example", "u49@news.example", "u50@news.example", "u69@news.example", "u03@news.example", "x@other.example"} {
			u, err := st.UserByAddress(ctx, addr)
			if err != nil {
				t.Fatal(err)
			}
			want := 1
			if addr == "u03@news.example" || addr == "x@other.example" {
				want = 0
			}
			msgs := storetest.Messages(t, st.Account(u.ID, nil), "INBOX")
			if len(msgs) != want || (want == 1 && !strings.Contains(msgs[0], "Subject: Maintenance tonight")) {
				t.Errorf("%s got %d copies, want %d", addr, len(msgs), want)
			}
		}
		// A finished bulletin sent again sends nothing.
		if again, err := agent.SendBulletin(ctx, b.ID, nil); err != nil || again.Delivered != 69 {
			t.Fatalf("rerun: %+v, %v", again, err)
		}
		if _, err := st.CreateBulletin(ctx, store.BulletinPlan, "nope", "", raw); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("bulletin to no plan: %v", err)
		}
		if _, err := st.CreateBulletin(ctx, "everyone", "", "", raw); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("bulletin to a bad scope: %v", err)
		}
	})
}
