package delivery_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"basalt/delivery"
	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
	"basalt/store/outbound"
)

// newAgent is a queue through rs and an agent over it, as the server
// wires them.
func newAgent(t *testing.T, st *store.Store, smarthost string) (*delivery.Agent, *delivery.Queue) {
	var agent *delivery.Agent
	q := delivery.NewQueue(quick(smarthost), st, delivery.LocalDeliveryFunc(func(ctx context.Context, from, to string, raw []byte) error {
		return agent.DeliverLocal(ctx, from, to, raw)
	}), testLogger(t))
	agent = delivery.New(delivery.Config{Hostname: "mail.example.org"}, st, q, testLogger(t))
	return agent, q
}

// TestSubmission: a delayed send waits in the queue, durable (a new
// queue and agent over the same store, as after a restart, send it),
// then goes to its local recipient's INBOX and, over real SMTP, to the
// remote ones; its copy with the Bcc field is filed in Sent, and the
// message it answers is flagged. Taken back before it is due, nothing
// goes; once started, it cannot be taken back.
func TestSubmission(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		ctx := context.Background()
		e := storetest.Open(t, db, storetest.Options{})
		alice := e.NewUser(t, "alice@example.org", false)
		bob := e.NewUser(t, "bob@example.org", false)
		rs := newRelayServer(t, relayOptions{})
		aa := e.Account(alice)
		orig := storetest.Append(t, aa, storetest.Inbox(t, aa), storetest.Message("carol@remote.test", "alice@example.org", "question", "?"), store.AppendOptions{})

		agent, _ := newAgent(t, e.Store, rs.addr)
		raw := storetest.Message("alice@example.org", "bob@example.org, carol@remote.test", "later", "the answer")
		due := time.Now().Add(700 * time.Millisecond)
		note := delivery.Submission{EnvelopeID: "WTEST", Bcc: "dave@remote.test", Subject: "later", To: []string{"bob@example.org", "carol@remote.test"},
			ReplyMailbox: orig.MailboxID, ReplyUID: orig.UID}
		id, err := agent.Submit(ctx, alice.User.ID, "alice@example.org", []string{"bob@example.org", "carol@remote.test", "dave@remote.test"}, raw, due, note)
		if err != nil {
			t.Fatal(err)
		}
		ss, err := agent.Scheduled(ctx, alice.User.ID)
		if err != nil || len(ss) != 1 || ss[0].ID != id || ss[0].Note.Subject != "later" || len(ss[0].Rcpts) != 3 || ss[0].Due.Unix() != due.Unix() {
			t.Fatalf("scheduled: %+v %v", ss, err)
		}
		if other, _ := agent.Scheduled(ctx, bob.User.ID); len(other) != 0 {
			t.Fatalf("bob sees alice's: %+v", other)
		}
		if _, _, err := agent.Unsend(ctx, bob.User.ID, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("bob takes back alice's: %v", err)
		}

		// "Restart": a new queue and agent over the same store send it.
		_, q2 := newAgent(t, e.Store, rs.addr)
		stop := runQueue(t, q2)
		ba := e.Account(bob)
		testsupport.WaitFor(t, 15*time.Second, "the delayed message in bob's INBOX and relayed", func() bool {
			return len(storetest.Messages(t, ba, "INBOX")) == 1 && len(rs.transactions()) == 1 && len(storetest.Messages(t, aa, "Sent")) == 1
		})
		if time.Now().Before(due) {
			t.Fatal("delivered before it was due")
		}
		tx := rs.transactions()[0]
		if !slices.Equal(tx.to, []string{"carol@remote.test", "dave@remote.test"}) || strings.Contains(string(tx.data), "Bcc") {
			t.Errorf("relayed to %v:\n%s", tx.to, tx.data)
		}
		if got := storetest.Messages(t, ba, "INBOX")[0]; !strings.Contains(got, "the answer") || strings.Contains(got, "Bcc") {
			t.Errorf("bob's copy:\n%s", got)
		}
		sent := storetest.Messages(t, aa, "Sent")
		if len(sent) != 1 || !strings.HasPrefix(sent[0], "Bcc: dave@remote.test\r\n") {
			t.Fatalf("sent copies: %q", sent)
		}
		testsupport.WaitFor(t, 5*time.Second, "the queue to empty", queueEmpty(t, e.Store))
		testsupport.WaitFor(t, 5*time.Second, "the answered message flagged", func() bool {
			ms, _ := aa.List(ctx, orig.MailboxID, store.ListQuery{UIDs: store.UIDSet{{Start: orig.UID, Stop: orig.UID}}})
			return len(ms) == 1 && ms[0].Flags.Has(store.FlagAnswered)
		})

		stop()

		// Taken back in time: nothing goes, the message comes back whole.
		id2, err := agent.Submit(ctx, alice.User.ID, "alice@example.org", []string{"bob@example.org"}, raw, time.Now().Add(time.Hour), delivery.Submission{Bcc: "eve@remote.test"})
		if err != nil {
			t.Fatal(err)
		}
		s, back, err := agent.Unsend(ctx, alice.User.ID, id2)
		if err != nil || string(back) != "Bcc: eve@remote.test\r\n"+string(raw) || s.ID != id2 || len(s.Rcpts) != 1 || s.Rcpts[0] != "bob@example.org" || s.From != "alice@example.org" {
			t.Fatalf("unsend: %v %+v %q", err, s, back)
		}
		if _, _, err := agent.Unsend(ctx, alice.User.ID, id2); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second unsend: %v", err)
		}
		if ss, _ := agent.Scheduled(ctx, alice.User.ID); len(ss) != 0 {
			t.Fatalf("still scheduled: %+v", ss)
		}

		// Started by the queue: too late.
		agent3, _ := newAgent(t, e.Store, rs.addr)
		id3, err := agent3.Submit(ctx, alice.User.ID, "alice@example.org", []string{"bob@example.org"}, raw, time.Now().Add(-time.Second), delivery.Submission{})
		if err != nil {
			t.Fatal(err)
		}
		rows := outbound.New(e.Store)
		claimed, err := rows.Claim(ctx, 10, time.Minute)
		if err != nil || len(claimed) != 1 || claimed[0].ID != id3 {
			t.Fatalf("claim: %+v %v", claimed, err)
		}
		if err := rows.StartSubmission(ctx, &claimed[0]); err != nil {
			t.Fatal(err)
		}
		if _, _, err := agent3.Unsend(ctx, alice.User.ID, id3); !errors.Is(err, delivery.ErrSendStarted) {
			t.Fatalf("unsend of a started send: %v", err)
		}
	})
}
