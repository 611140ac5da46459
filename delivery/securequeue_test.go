package delivery_test

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"basalt/delivery"
	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/session"
	"basalt/store"
)

// TestSecureQueue: what the agent queues for a secure user never reaches
// the disk readable: a copy deferred for a retry (a full mailbox, after
// the recipient was answered as delivered) and a late failure report to a
// secure sender are sealed to the user's key, and the queue delivers them
// as they are, readable by the user. A canary in each is looked for in
// every file and row, with the entries queued and after they are done.
func TestSecureQueue(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		ctx := context.Background()
		e := storetest.Open(t, db, storetest.Options{})
		sender := e.NewUser(t, "sec0@example.org", true)
		e.NewUser(t, "sec1@example.org", true)
		full := e.NewUser(t, "sec2@example.org", true)
		e.NewUser(t, "sec3@example.org", true)
		tiny, small := int64(100), int64(100)
		if err := e.Store.SetLimits(ctx, full.User.ID, "", store.LimitOverrides{QuotaBytes: &tiny}); err != nil {
			t.Fatal(err)
		}
		sec3, _ := e.Store.UserByAddress(ctx, "sec3@example.org")
		if err := e.Store.SetLimits(ctx, sec3.ID, "", store.LimitOverrides{MaxRecvSize: &small}); err != nil {
			t.Fatal(err)
		}
		for _, a := range [][2]string{{"team@example.org", "sec1@example.org"}, {"team@example.org", "sec2@example.org"},
			{"crew@example.org", "sec1@example.org"}, {"crew@example.org", "sec3@example.org"}} {
			if _, err := e.Store.AddAlias(ctx, a[0], a[1]); err != nil {
				t.Fatal(err)
			}
		}
		var agent *delivery.Agent
		q := delivery.NewQueue(quick(""), e.Store, delivery.LocalDeliveryFunc(func(ctx context.Context, from, to string, raw []byte) error {
			return agent.DeliverLocal(ctx, from, to, raw)
		}), testLogger(t))
		agent = delivery.New(delivery.Config{Hostname: "mx.example.org"}, e.Store, q, testLogger(t))

		canary := "CANARY-" + testsupport.RandomName("")
		send := func(from, to, subject string, body string) {
			t.Helper()
			env := &delivery.Envelope{Source: delivery.SourceMX, From: from, Helo: "remote.test"}
			rc, err := agent.CheckRecipient(ctx, env, to)
			if err != nil {
				t.Fatal(err)
			}
			msg := storetest.Message(from, to, subject, body)
			res, err := agent.Deliver(ctx, env, []delivery.Recipient{rc}, bytes.NewReader(msg))
			if err != nil || res[0] != nil {
				t.Fatalf("deliver to %s: %v %v", to, res, err)
			}
		}
		// Larger than what is kept inline, so the retried copy is a file.
		send("x@remote.test", "team@example.org", "retried "+canary, strings.Repeat("retried body "+canary+"\n", 2000))
		send("sec0@example.org", "crew@example.org", "reported "+canary, "reported body "+canary)

		l := entries(t, e.Store)
		if len(l) != 2 || l[0].SealedUser == 0 || l[1].SealedUser == 0 {
			t.Fatalf("queue: %+v, want two sealed entries", l)
		}
		if where := e.FindPlaintext(t, []byte(canary)); len(where) != 0 {
			t.Fatalf("canary in the clear with the entries queued: %v", where)
		}

		big := int64(1 << 30)
		if err := e.Store.SetLimits(ctx, full.User.ID, "", store.LimitOverrides{QuotaBytes: &big}); err != nil {
			t.Fatal(err)
		}
		runQueue(t, q)
		testsupport.WaitFor(t, 10*time.Second, "the queue to drain", queueEmpty(t, e.Store))

		if got := readInbox(t, e, full); len(got) != 1 || !strings.Contains(got[0], "retried body "+canary) || !strings.Contains(got[0], "Subject: retried ") {
			t.Fatalf("sec2's retried copy: %d messages", len(got))
		}
		got := readInbox(t, e, sender)
		if len(got) != 1 || !strings.Contains(got[0], "multipart/report") || !strings.Contains(got[0], "Subject: reported "+canary) {
			t.Fatalf("sec0's report: %q", got)
		}
		if where := e.FindPlaintext(t, []byte(canary)); len(where) != 0 {
			t.Fatalf("canary in the clear after delivery: %v", where)
		}
	})
}

// readInbox reads a user's INBOX with the user's key.
func readInbox(t *testing.T, e *storetest.Env, auth *session.Auth) []string {
	t.Helper()
	ctx := context.Background()
	a := e.Account(auth)
	msgs, err := a.List(ctx, storetest.Inbox(t, a), store.ListQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		rc, err := a.Open(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// TestSecureQueueAlias: a copy queued for an alias that reaches a secure
// user beside a plain user and an address elsewhere is split: the secure
// user's copy sealed to the key and addressed to the user, the rest as it
// is; an address reaching the secure user twice makes one sealed copy.
func TestSecureQueueAlias(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		ctx := context.Background()
		e := storetest.Open(t, db, storetest.Options{})
		sec := e.NewUser(t, "sec@example.org", true)
		e.NewUser(t, "plain@example.org", false)
		for _, a := range [][2]string{{"mixed@example.org", "sec@example.org"}, {"mixed@example.org", "plain@example.org"},
			{"mixed@example.org", "far@remote.test"}} {
			if _, err := e.Store.AddAlias(ctx, a[0], a[1]); err != nil {
				t.Fatal(err)
			}
		}
		q := delivery.NewQueue(quick(""), e.Store, delivery.LocalDeliveryFunc(func(context.Context, string, string, []byte) error { return nil }), testLogger(t))
		canary := "CANARY-" + testsupport.RandomName("")
		if err := q.Enqueue(ctx, "x@remote.test", []string{"mixed@example.org", "sec@example.org"},
			storetest.Message("x@remote.test", "mixed@example.org", "s "+canary, "body "+canary)); err != nil {
			t.Fatal(err)
		}
		var sealed, plain []string
		for _, en := range entries(t, e.Store) {
			for _, r := range en.Rcpts {
				if en.SealedUser != 0 {
					if en.SealedUser != sec.User.ID {
						t.Errorf("entry sealed to user %d, want %d", en.SealedUser, sec.User.ID)
					}
					sealed = append(sealed, r.Address)
				} else {
					plain = append(plain, r.Address)
				}
			}
		}
		slices.Sort(plain)
		if !slices.Equal(sealed, []string{"sec@example.org"}) || !slices.Equal(plain, []string{"far@remote.test", "plain@example.org"}) {
			t.Fatalf("sealed copies for %v, plain for %v", sealed, plain)
		}
	})
}
