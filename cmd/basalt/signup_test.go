package main

import (
	"context"
	"strings"
	"testing"

	"basalt/server"
	"basalt/session"
	"basalt/store"
	"basalt/store/signup"
)

// TestSignupCommands: an operator bans and unbans networks, makes and
// withdraws invite codes, and approves waiting accounts from the command
// line; each change is what the site's registration then sees.
func TestSignupCommands(t *testing.T) {
	data := t.TempDir()
	cfg := kdfConfig(t, "")
	d := []string{"-data", data, "-config", cfg}
	sg := func(args ...string) string {
		return mustBasalt(t, "", append(append([]string{"signup"}, args...), d...)...)
	}
	ctx := context.Background()

	if out := sg("ban", "192.0.2.0/24", "--reason", "spam wave", "--days", "2"); !strings.Contains(out, " 192.0.2.0/24 expires=") || !strings.Contains(out, `reason="spam wave"`) {
		t.Fatalf("ban = %q", out)
	}
	sg("ban", "::ffff:198.51.100.7") // one address, seen mapped
	sg("ban", "2001:db8:1::/48")
	out := sg("bans")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || !strings.Contains(out, " 198.51.100.7/32 expires=never") {
		t.Fatalf("bans = %q", out)
	}
	sg("unban", "198.51.100.7")
	id := strings.Fields(sg("bans"))[0]
	sg("unban", id)
	if out := sg("bans"); strings.Contains(out, "198.51.100.7") || strings.Contains(out, "192.0.2.0/24") || !strings.Contains(out, "2001:db8:1::/48") {
		t.Fatalf("bans after two unbans = %q", out)
	}
	if _, err := basalt(t, "", append([]string{"signup", "unban", "203.0.113.0/24"}, d...)...); err == nil {
		t.Error("unban of a network never banned succeeded")
	}
	if _, err := basalt(t, "", append([]string{"signup", "ban", "not-a-network"}, d...)...); err == nil {
		t.Error("ban of nonsense succeeded")
	}

	code := strings.TrimSpace(sg("invite", "--uses", "3", "--note", "for the team"))
	other := strings.TrimSpace(sg("invite"))
	if out := sg("invites"); !strings.Contains(out, code+" uses=3 expires=never note=\"for the team\"") || !strings.Contains(out, other+" uses=1") {
		t.Fatalf("invites = %q", out)
	}
	sg("uninvite", other)
	if out := sg("invites"); strings.Contains(out, other) {
		t.Fatalf("withdrawn invite still listed: %q", out)
	}

	// An account waiting for approval, made as the site makes it.
	c, err := server.LoadConfig(cfg, data)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := server.Open(ctx, c, c.NewLogger())
	if err != nil {
		t.Fatal(err)
	}
	g := signup.New(svc.Store)
	if err := g.CheckInvite(ctx, code); err != nil {
		t.Errorf("the command's invite code: %v", err)
	}
	if _, err := svc.Store.AddDomain(ctx, "example.org"); err != nil {
		t.Fatal(err)
	}
	until, reason := signup.PendingLock()
	if _, err := svc.Session.CreateUser(ctx, session.NewUser{Address: "waits@example.org", Password: "a good long password",
		UserOptions: store.UserOptions{LockedUntil: until, LockReason: reason}}); err != nil {
		t.Fatal(err)
	}
	svc.Close()
	if out := sg("pending"); !strings.HasSuffix(out, " waits@example.org\n") {
		t.Fatalf("pending = %q", out)
	}
	sg("approve", "Waits@example.org")
	if out := sg("pending"); out != "" {
		t.Fatalf("pending after approval = %q", out)
	}
	if _, err := basalt(t, "", append([]string{"signup", "approve", "waits@example.org"}, d...)...); err == nil {
		t.Error("approving an approved account succeeded")
	}
}
