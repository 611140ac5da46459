package imap

import (
	"context"
	"strings"
	"testing"

	bsession "basalt/session"
	"basalt/store"
)

// glibc's crypt("Hello world!", "$6$saltstring"): a SHA-512-crypt hash as a
// migration brings it.
const importedSHA512 = "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"

// TestLoginImportedAndAccess, over a real IMAP connection: a user imported
// with a SHA-512-crypt hash logs in with its password, after which its
// hash is argon2id; with IMAP denied, the same login is refused with
// CONTACTADMIN (not AUTHENTICATIONFAILED: the password was right), and
// allowed again once IMAP is.
func TestLoginImportedAndAccess(t *testing.T) {
	h := start(t, setup{})
	ctx := context.Background()
	st := h.env.Store
	if _, err := st.AddDomain(ctx, "example.org"); err != nil {
		t.Fatal(err)
	}
	u, err := h.env.Session.ImportUser(ctx, bsession.ImportedUser{Address: "mig@example.org", Hash: importedSHA512})
	if err != nil {
		t.Fatal(err)
	}
	c := h.dial(t)
	if _, status := c.do(`LOGIN mig@example.org "Hello world?"`); !strings.HasPrefix(status, "NO [AUTHENTICATIONFAILED]") {
		t.Fatalf("wrong password: %s", status)
	}
	c.ok(`LOGIN mig@example.org "Hello world!"`)
	cred, err := st.Credentials(ctx, "mig@example.org")
	if err != nil || !strings.HasPrefix(cred.PasswordHash, "$argon2id$") {
		t.Fatalf("hash after an IMAP login: %q, %v", cred.PasswordHash, err)
	}
	if err := st.SetDeniedProtocols(ctx, u.ID, store.ProtocolSet(0).With(store.ProtoIMAP, true)); err != nil {
		t.Fatal(err)
	}
	c = h.dial(t)
	if _, status := c.do(`LOGIN mig@example.org "Hello world!"`); !strings.HasPrefix(status, "NO [CONTACTADMIN]") {
		t.Fatalf("login with IMAP denied: %s", status)
	}
	if err := st.SetDeniedProtocols(ctx, u.ID, store.ProtocolSet(0).With(store.ProtoPOP3, true)); err != nil {
		t.Fatal(err)
	}
	c = h.dial(t)
	c.ok(`LOGIN mig@example.org "Hello world!"`)
	logins, err := st.Logins(ctx, u.ID)
	if err != nil || len(logins) != 1 || logins[0].Protocol != store.ProtoIMAP || logins[0].IP != "127.0.0.1" {
		t.Fatalf("logins recorded: %+v, %v", logins, err)
	}
}
