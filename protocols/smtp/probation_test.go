package smtp

import (
	"context"
	"strings"
	"testing"
	"time"

	"basalt/internal/testsupport/storetest"
	"basalt/session"
	"basalt/store"
)

// TestProbationSendLimit: a new account on probation (the site's
// registration) submits no more a day than its probation allows; past
// it the message is refused with a temporary error and not counted.
func TestProbationSendLimit(t *testing.T) {
	h := start(t, setup{queue: true})
	ctx := context.Background()
	if _, err := h.env.Store.AddDomain(ctx, "example.org"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.env.Session.CreateUser(ctx, session.NewUser{Address: "newbie@example.org", Password: storetest.Password,
		UserOptions: store.UserOptions{ProbationUntil: time.Now().Add(24 * time.Hour).Unix(), ProbationSendBytes: 3000}}); err != nil {
		t.Fatal(err)
	}
	a := h.account("newbie@example.org")
	c := h.dial(RoleSubmission)
	runSteps(t, c, []step{{"EHLO client.example", "250"}, {"AUTH PLAIN " + plainAuth("newbie@example.org", storetest.Password), "235"}})
	send := func(want string) {
		t.Helper()
		runSteps(t, c, []step{{"MAIL FROM:<newbie@example.org>", "250"}, {"RCPT TO:<carol@elsewhere.example>", "250"}})
		if r := c.data(storetest.Message("newbie@example.org", "carol@elsewhere.example", "out", strings.Repeat("xxxxxxxxx\n", 200))); !strings.HasPrefix(r.String(), want) {
			t.Fatalf("send: %q, want %s", r, want)
		}
	}
	send("250 2.0.0")
	sent, err := a.SentToday(ctx)
	if err != nil || sent < 2000 || sent > 3000 {
		t.Fatalf("sent today %d (%v)", sent, err)
	}
	send("451 4.7.1")
	if again, _ := a.SentToday(ctx); again != sent {
		t.Fatalf("refused message counted: %d, was %d", again, sent)
	}
}
