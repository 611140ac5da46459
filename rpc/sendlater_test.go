package rpc

import (
	"context"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/store"
	"basalt/store/outbound"
)

// runQueue runs the fixture's outbound queue until the test ends.
func (fx *fixture) runQueue(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { fx.queue.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("the queue did not stop")
		}
	})
}

func (c *client) compose() int64 {
	c.t.Helper()
	var cr composeResult
	c.must("messages.compose", nil, &cr)
	return cr.ComposeID
}

// TestUndoSend: by default a send waits the configured seconds in the
// outbound queue, local and remote recipients alike, and is listed
// (messages.scheduled); then it is delivered and filed in Sent. A send
// taken back (messages.unsend) comes back as a draft and never leaves;
// sendAt waits until then, within the horizon.
func TestUndoSend(t *testing.T) {
	forEachBackend(t, fixtureOptions{cfg: Config{UndoSendSeconds: 1}}, func(t *testing.T, fx *fixture) {
		ctx := context.Background()
		alice, aliceAuth := fx.user(t, "alice@example.org", false)
		bobC, bobAuth := fx.user(t, "bob@example.org", false)
		bob := fx.env.Account(bobAuth)
		start := time.Now()
		var sr sendResult
		alice.must("messages.send", map[string]any{"composeID": alice.compose(), "subject": "soon", "to": []string{"Bob <bob@example.org>", "carol@remote.test"},
			"bcc": []string{"dave@remote.test"}, "body": map[string]any{"text": "hello"}}, &sr)
		if sr.SendID == 0 || sr.SendAt < start.Unix()+1 || sr.SendAt > start.Unix()+2 || len(sr.Delivered) != 0 || sr.MessageID != "" {
			t.Fatalf("send: %+v", sr)
		}
		var sch scheduledResult
		alice.must("messages.scheduled", nil, &sch)
		if len(sch.Scheduled) != 1 || sch.Scheduled[0].SendID != sr.SendID || sch.Scheduled[0].Subject != "soon" || len(sch.Scheduled[0].Rcpts) != 3 {
			t.Fatalf("scheduled: %+v", sch)
		}
		if n := len(storetest.Messages(t, bob, "INBOX")); n != 0 {
			t.Fatalf("bob has %d messages before the send is due", n)
		}
		// Another user can neither see nor take back alice's send.
		bobC.fail("messages.unsend", map[string]any{"sendID": sr.SendID}, CodeNotFound, "notFound")
		var bsch scheduledResult
		bobC.must("messages.scheduled", nil, &bsch)
		if len(bsch.Scheduled) != 0 {
			t.Fatalf("bob sees alice's scheduled send: %+v", bsch)
		}
		fx.runQueue(t)
		testsupport.WaitFor(t, 15*time.Second, "the message in bob's INBOX", func() bool { return len(storetest.Messages(t, bob, "INBOX")) == 1 })
		if time.Now().Unix() < sr.SendAt {
			t.Fatal("delivered before sendAt")
		}
		// The Bcc is in no delivered copy (RFC 5322 3.6.3).
		if got := storetest.Messages(t, bob, "INBOX")[0]; strings.Contains(strings.ToLower(got), "bcc") || strings.Contains(got, "dave@remote.test") {
			t.Fatalf("bob's copy shows the Bcc:\n%s", got)
		}
		aa := fx.env.Account(aliceAuth)
		testsupport.WaitFor(t, 5*time.Second, "the Sent copy", func() bool { return len(storetest.Messages(t, aa, "Sent")) == 1 })
		if sent := storetest.Messages(t, aa, "Sent")[0]; !strings.HasPrefix(sent, "Bcc: <dave@remote.test>\r\n") || !strings.Contains(sent, "Subject: soon") {
			t.Fatalf("sent copy:\n%s", sent)
		}
		// The remote recipients are now ordinary queue entries for the
		// smarthost (which this fixture never reaches).
		testsupport.WaitFor(t, 5*time.Second, "the relay entry", func() bool {
			es, _ := outbound.New(fx.env.Store).Entries(ctx, 0)
			return len(es) == 1 && es[0].SubmitUser == 0 && len(es[0].Rcpts) == 2
		})
		alice.must("messages.scheduled", nil, &sch)
		if len(sch.Scheduled) != 0 {
			t.Fatalf("still scheduled: %+v", sch)
		}

		// Undo: back to Drafts, never delivered.
		alice.must("messages.send", map[string]any{"composeID": alice.compose(), "subject": "oops", "to": []string{"bob@example.org"}, "delay": 30}, &sr)
		var ur unsendResult
		alice.must("messages.unsend", map[string]any{"sendID": sr.SendID}, &ur)
		var ld loadResult
		alice.must("messages.load", map[string]any{"messageID": ur.DraftID, "sections": []string{"meta"}}, &ld)
		if ld.Meta.Subject != "oops" || !slices_has(ld.Meta.Flags, "draft") {
			t.Fatalf("draft: %+v", ld.Meta)
		}
		var cr composeResult
		alice.must("messages.compose", map[string]any{"draftID": ur.DraftID}, &cr) // editable again
		alice.fail("messages.unsend", map[string]any{"sendID": sr.SendID}, CodeNotFound, "notFound")
		alice.must("messages.scheduled", nil, &sch)
		if len(sch.Scheduled) != 0 {
			t.Fatalf("scheduled after unsend: %+v", sch)
		}

		// Send later, within the horizon; delay and sendAt bounded.
		at := time.Now().Add(2 * time.Hour).Unix()
		alice.must("messages.send", map[string]any{"composeID": alice.compose(), "subject": "later", "to": []string{"bob@example.org"}, "sendAt": at}, &sr)
		if sr.SendAt != at {
			t.Fatalf("sendAt %d, want %d", sr.SendAt, at)
		}
		alice.must("messages.scheduled", nil, &sch)
		if len(sch.Scheduled) != 1 || sch.Scheduled[0].SendAt != at {
			t.Fatalf("scheduled: %+v", sch)
		}
		alice.fail("messages.send", map[string]any{"composeID": alice.compose(), "to": []string{"bob@example.org"}, "sendAt": time.Now().Add(60 * 24 * time.Hour).Unix()}, CodeInvalid, "invalid")
		alice.fail("messages.send", map[string]any{"composeID": alice.compose(), "to": []string{"bob@example.org"}, "delay": 61}, CodeInvalid, "invalid")
		alice.fail("messages.send", map[string]any{"composeID": alice.compose(), "to": []string{"bob@example.org"}, "delay": 5, "sendAt": at}, CodeInvalid, "invalid")
		time.Sleep(1500 * time.Millisecond)
		if n := len(storetest.Messages(t, bob, "INBOX")); n != 1 {
			t.Fatalf("bob has %d messages: an unsent or later one arrived", n)
		}
	})
}

func slices_has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestSendRefusals: a delayed send is refused when it is made, with a
// type and a message saying why, for everything its delivery would refuse.
func TestSendRefusals(t *testing.T) {
	lim := store.Limits{QuotaBytes: 100_000, MaxSendSize: 3000, DailySendBytes: 8000}
	fx := newFixture(t, sqlite(t), fixtureOptions{cfg: Config{UndoSendSeconds: 10}, limits: lim})
	alice, aliceAuth := fx.user(t, "alice@example.org", false)
	fx.user(t, "bob@example.org", false)
	send := func(p map[string]any) map[string]any {
		p["composeID"] = alice.compose()
		return p
	}
	alice.fail("messages.send", send(map[string]any{"from": "boss@example.org", "to": []string{"bob@example.org"}}), CodeForbiddenFrom, "forbiddenFrom")
	e := alice.fail("messages.send", send(map[string]any{"to": []string{"bob@example.org", "nobody@example.org", "carol@remote.test"}}), CodeRefused, "recipientRefused")
	if len(e.Data.Recipients) != 1 || e.Data.Recipients[0].Address != "nobody@example.org" || !strings.Contains(e.Message, "nobody@example.org") {
		t.Fatalf("refused: %+v", e)
	}
	big := strings.Repeat("x", 4000)
	alice.fail("messages.send", send(map[string]any{"to": []string{"carol@remote.test"}, "body": map[string]any{"text": big}}), CodeDomainTooBig, "tooLarge")
	mid := strings.Repeat("y", 2000)
	alice.fail("messages.send", send(map[string]any{"to": []string{"a@remote.test", "b@remote.test", "c@remote.test", "d@remote.test"}, "body": map[string]any{"text": mid}}), CodeLimit, "dailyLimit")
	// Local only: no send limits, but the Sent copy needs room.
	aa := fx.env.Account(aliceAuth)
	storetest.Append(t, aa, storetest.Inbox(t, aa), storetest.SizedMessage(99_000), store.AppendOptions{})
	alice.fail("messages.send", send(map[string]any{"to": []string{"bob@example.org"}, "body": map[string]any{"text": mid}}), CodeOverQuota, "overQuota")
	if es, _ := outbound.New(fx.env.Store).Entries(context.Background(), 0); len(es) != 0 {
		t.Fatalf("a refused send was queued: %+v", es)
	}
}

// TestSendLaterBounded: the messages waiting to leave count toward the
// room their Sent copies need, and there are at most maxWaitingSends of
// them: the queue is no place to park mail past the quota.
func TestSendLaterBounded(t *testing.T) {
	t.Run("quota", func(t *testing.T) {
		fx := newFixture(t, sqlite(t), fixtureOptions{cfg: Config{UndoSendSeconds: 50}, limits: store.Limits{QuotaBytes: 20_000}})
		alice, _ := fx.user(t, "alice@example.org", false)
		fx.user(t, "bob@example.org", false)
		body := map[string]any{"text": strings.Repeat("z", 6000)}
		for range 3 {
			alice.must("messages.send", map[string]any{"composeID": alice.compose(), "to": []string{"bob@example.org"}, "body": body}, nil)
		}
		alice.fail("messages.send", map[string]any{"composeID": alice.compose(), "to": []string{"bob@example.org"}, "body": body}, CodeOverQuota, "overQuota")
		var sch scheduledResult
		alice.must("messages.scheduled", nil, &sch)
		if len(sch.Scheduled) != 3 {
			t.Fatalf("%d waiting, want 3", len(sch.Scheduled))
		}
		// Taking one back makes room again.
		var ur unsendResult
		alice.must("messages.unsend", map[string]any{"sendID": sch.Scheduled[0].SendID}, &ur)
		alice.must("messages.remove", map[string]any{"messageIDs": []string{ur.DraftID}}, nil)
		alice.must("messages.send", map[string]any{"composeID": alice.compose(), "to": []string{"bob@example.org"}, "body": body}, nil)
	})
	t.Run("count", func(t *testing.T) {
		fx := newFixture(t, sqlite(t), fixtureOptions{cfg: Config{UndoSendSeconds: 50}})
		alice, _ := fx.user(t, "alice@example.org", false)
		fx.user(t, "bob@example.org", false)
		for range maxWaitingSends {
			alice.must("messages.send", map[string]any{"composeID": alice.compose(), "to": []string{"bob@example.org"}}, nil)
		}
		alice.fail("messages.send", map[string]any{"composeID": alice.compose(), "to": []string{"bob@example.org"}}, CodeInvalid, "invalid")
		// An immediate send does not wait, and is not bounded so.
		alice.must("messages.send", map[string]any{"composeID": alice.compose(), "to": []string{"bob@example.org"}, "delay": 0}, nil)
	})
}

// TestUnsendOverQuota: a message taken back when Drafts has no room for it
// is not lost: the call fails (overQuota) and it waits again (at least
// the longest undo), Bcc and all, until room is made.
func TestUnsendOverQuota(t *testing.T) {
	fx := newFixture(t, sqlite(t), fixtureOptions{cfg: Config{UndoSendSeconds: 5, UndoSendMaxSeconds: 60}, limits: store.Limits{QuotaBytes: 30_000}})
	alice, aliceAuth := fx.user(t, "alice@example.org", false)
	fx.user(t, "bob@example.org", false)
	fx.user(t, "carol@example.org", false)
	var sr sendResult
	alice.must("messages.send", map[string]any{"composeID": alice.compose(), "subject": "keep me", "to": []string{"bob@example.org"},
		"bcc": []string{"carol@example.org"}, "body": map[string]any{"text": strings.Repeat("k", 5000)}}, &sr)
	aa := fx.env.Account(aliceAuth)
	filler := storetest.Append(t, aa, storetest.Inbox(t, aa), storetest.SizedMessage(27_000), store.AppendOptions{})
	alice.fail("messages.unsend", map[string]any{"sendID": sr.SendID}, CodeOverQuota, "")
	var sch scheduledResult
	alice.must("messages.scheduled", nil, &sch)
	// It waits at least the longest undo from now, to be asked for again.
	if len(sch.Scheduled) != 1 || sch.Scheduled[0].Subject != "keep me" || sch.Scheduled[0].SendAt < time.Now().Unix()+59 || len(sch.Scheduled[0].Rcpts) != 2 {
		t.Fatalf("after a failed unsend: %+v", sch)
	}
	alice.must("messages.remove", map[string]any{"messageIDs": []string{msgRef{filler.MailboxID, filler.UID}.id()}}, nil)
	var ur unsendResult
	alice.must("messages.unsend", map[string]any{"sendID": sch.Scheduled[0].SendID}, &ur)
	var ld loadResult
	alice.must("messages.load", map[string]any{"messageID": ur.DraftID, "sections": []string{"meta"}}, &ld)
	if ld.Meta.Subject != "keep me" {
		t.Fatalf("draft: %+v", ld.Meta)
	}
	drafts := storetest.Messages(t, aa, "Drafts")
	if len(drafts) != 1 || strings.Count(drafts[0], "Bcc: ") != 1 || !strings.Contains(drafts[0], "carol@example.org") {
		t.Fatalf("drafts: %q", drafts)
	}
}

// TestUndoSendDefaultOverMax: a server default above undo_send_max_seconds
// holds every send that long; only a call's own delay is bounded.
func TestUndoSendDefaultOverMax(t *testing.T) {
	fx := newFixture(t, sqlite(t), fixtureOptions{cfg: Config{UndoSendSeconds: 120, UndoSendMaxSeconds: 60}})
	alice, _ := fx.user(t, "alice@example.org", false)
	fx.user(t, "bob@example.org", false)
	start := time.Now().Unix()
	var sr sendResult
	alice.must("messages.send", map[string]any{"composeID": alice.compose(), "to": []string{"bob@example.org"}}, &sr)
	if sr.SendID == 0 || sr.SendAt < start+120 || sr.SendAt > start+122 {
		t.Fatalf("send: %+v", sr)
	}
	alice.fail("messages.send", map[string]any{"composeID": alice.compose(), "to": []string{"bob@example.org"}, "delay": 61}, CodeInvalid, "invalid")
}
