package pop3

import (
	"context"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"basalt/session"
	"basalt/store"
)

// TestLoginImportedAndSuspended, over a real POP3 connection: a user
// imported with a bcrypt hash logs in with its password (the hash is
// argon2id after); suspended, its login is refused while mail still
// arrives; unsuspended, it logs in and finds that mail.
func TestLoginImportedAndSuspended(t *testing.T) {
	h := start(t, setup{})
	ctx := context.Background()
	st := h.env.Store
	if _, err := st.AddDomain(ctx, "example.org"); err != nil {
		t.Fatal(err)
	}
	bc, err := bcrypt.GenerateFromPassword([]byte("imported pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	u, err := h.env.Session.ImportUser(ctx, session.ImportedUser{Address: "mig@example.org", Hash: string(bc)})
	if err != nil {
		t.Fatal(err)
	}
	c := h.dial()
	c.expect("USER mig@example.org", "+OK")
	c.expect("PASS imported pass", "+OK")
	c.expect("QUIT", "+OK")
	if cred, _ := st.Credentials(ctx, "mig@example.org"); !strings.HasPrefix(cred.PasswordHash, "$argon2id$") {
		t.Fatalf("hash after a POP3 login: %q", cred.PasswordHash)
	}
	if err := st.Suspend(ctx, u.ID, "unpaid"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Deliver(ctx, store.Delivery{UserID: u.ID, Raw: []byte("From: a@example.com\r\nSubject: while suspended\r\n\r\nbody\r\n"), Opts: store.AppendOptions{Inbound: true}}); err != nil {
		t.Fatalf("delivery while suspended: %v", err)
	}
	c = h.dial()
	c.expect("USER mig@example.org", "+OK")
	c.expect("PASS imported pass", "-ERR [AUTH]")
	if err := st.Unsuspend(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	c = h.dial()
	c.expect("USER mig@example.org", "+OK")
	c.expect("PASS imported pass", "+OK")
	if r := c.send("STAT"); !strings.HasPrefix(r, "+OK 1 ") {
		t.Fatalf("STAT after unsuspend: %q", r)
	}
}
