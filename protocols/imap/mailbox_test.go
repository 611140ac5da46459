package imap

import (
	"strings"
	"testing"

	"basalt/internal/testsupport"
	"basalt/store"
)

func TestMailboxCommands(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		h := start(t, setup{db: db})
		h.user("alice@example.org", false)
		mallory := h.user("mallory@example.org", false)
		h.deliver(mallory, "INBOX", msg("private", "x"), store.AppendOptions{})
		c := h.dial(t)
		c.expect("CREATE Foo", "BAD") // not logged in
		c.login("alice@example.org")

		// CREATE, with missing parents, a trailing delimiter, special use.
		c.ok("CREATE Projects/2026/Q1")
		c.ok("CREATE Lists/")
		c.ok(`CREATE "Caf&AOk-"`) // modified UTF-7 (RFC 3501 5.1.3)
		c.ok(`CREATE Saved (USE (\Flagged))`)
		c.expect("CREATE Projects", "NO [ALREADYEXISTS]")
		c.expect("CREATE inbox", "NO [ALREADYEXISTS]")
		c.expect(`CREATE Bad (USE (\Nonsense))`, "NO [USEATTR]")
		c.expect(`CREATE Bad (USE (\Sent \Trash))`, "NO [USEATTR]")
		c.expect(`CREATE "a//b"`, "NO [CANNOT]")
		c.expect(`CREATE "Other Users/x"`, "NO [CANNOT]")
		c.expect(`CREATE "Shared Folders"`, "NO [CANNOT]")
		c.expect(`CREATE`, "BAD")
		c.expect(`CREATE Foo (NOPE x)`, "BAD")

		u := c.ok(`LIST "" *`)
		for _, want := range []string{
			`* LIST (\HasNoChildren) "/" INBOX`,
			`* LIST (\HasNoChildren \Drafts) "/" "Drafts"`,
			`* LIST (\HasChildren) "/" "Projects"`,
			`* LIST (\HasChildren) "/" "Projects/2026"`,
			`* LIST (\HasNoChildren) "/" "Projects/2026/Q1"`,
			`* LIST (\HasNoChildren) "/" "Lists"`,
			`* LIST (\HasNoChildren) "/" "Caf&AOk-"`,
			`* LIST (\HasNoChildren \Flagged) "/" "Saved"`,
		} {
			must(t, u, want)
		}
		if len(u) != 12 {
			t.Errorf("LIST * = %d mailboxes, want 12: %q", len(u), u)
		}
		mustNot(t, u, "mallory")
		// % stops at the delimiter; the reference is prefixed.
		u = c.ok(`LIST "" %`)
		mustNot(t, u, "Projects/2026")
		u = c.ok(`LIST Projects/ %`)
		if len(u) != 1 || !strings.HasSuffix(u[0], `"/" "Projects/2026"`) {
			t.Errorf("LIST Projects/ %% = %q", u)
		}
		must(t, c.ok(`LIST "" ""`), `* LIST (\Noselect) "/" ""`)
		must(t, c.ok(`LIST "" inBOX`), `"/" INBOX`)
		u = c.ok(`LIST (SPECIAL-USE) "" *`)
		if len(u) != 6 {
			t.Errorf("LIST (SPECIAL-USE) = %q, want the 6 special-use mailboxes", u)
		}

		// Subscriptions, LSUB and LIST-EXTENDED's SUBSCRIBED/RECURSIVEMATCH.
		// New mailboxes start subscribed.
		c.ok("UNSUBSCRIBE Projects")
		c.ok("UNSUBSCRIBE Projects/2026")
		c.ok("UNSUBSCRIBE Lists")
		c.expect("SUBSCRIBE Nonexistent", "NO [NONEXISTENT]")
		u = c.ok(`LSUB "" Pro*`)
		if len(u) != 1 {
			t.Errorf("LSUB = %q", u)
		}
		must(t, u, `* LSUB (\HasNoChildren \Subscribed) "/" "Projects/2026/Q1"`)
		u = c.ok(`LIST (SUBSCRIBED RECURSIVEMATCH) "" %`)
		must(t, u, `* LIST (\HasChildren) "/" "Projects" (CHILDINFO ("SUBSCRIBED"))`)
		must(t, u, `* LIST (\HasNoChildren \Subscribed) "/" INBOX`)
		mustNot(t, u, `"Lists"`)
		if len(u) != 9 {
			t.Errorf("LIST (SUBSCRIBED RECURSIVEMATCH) %% = %q", u)
		}
		u = c.ok(`LIST (SUBSCRIBED) "" %`)
		mustNot(t, u, `"Projects"`)
		must(t, c.ok(`LIST "" * RETURN (SUBSCRIBED)`), `* LIST (\HasNoChildren \Subscribed) "/" INBOX`)
		c.ok("UNSUBSCRIBE INBOX")
		must(t, c.ok(`LIST "" INBOX RETURN (SUBSCRIBED)`), `* LIST (\HasNoChildren) "/" INBOX`)
		c.expect(`LIST (RECURSIVEMATCH) "" *`, "BAD")

		// RENAME moves children along; renaming INBOX empties it.
		c.ok("RENAME Projects Work")
		u = c.ok(`LIST "" Work*`)
		must(t, u, `"/" "Work/2026/Q1"`)
		mustNot(t, c.ok(`LIST "" *`), "Projects")
		c.expect("RENAME Work Work/Sub", "NO [CANNOT]")
		c.expect("RENAME Work Lists", "NO [ALREADYEXISTS]")
		c.expect("RENAME Nope Other", "NO [NONEXISTENT]")
		c.expect(`RENAME Work "Other Users/Work"`, "NO [CANNOT]")
		c.ok(`APPEND INBOX {12}` + "\r\nSubject: x\r\n")
		c.ok("RENAME INBOX Old-Inbox")
		must(t, c.ok("STATUS Old-Inbox (MESSAGES)"), "(MESSAGES 1)")
		must(t, c.ok("STATUS INBOX (MESSAGES)"), "(MESSAGES 0)")

		// DELETE refuses INBOX and mailboxes with children.
		c.expect("DELETE INBOX", "NO [CANNOT]")
		c.expect("DELETE Work", "NO [HASCHILDREN]")
		c.ok("DELETE Work/2026/Q1")
		c.ok("DELETE Work/2026")
		c.ok("DELETE Work")
		c.expect("DELETE Work", "NO [NONEXISTENT]")

		// Another user's mailboxes cannot be named at all.
		for _, cmd := range []string{"SELECT", "EXAMINE", "STATUS %s (MESSAGES)", "DELETE", "SUBSCRIBE", "RENAME %s Mine"} {
			for _, name := range []string{`"mallory@example.org/INBOX"`, `"Other Users/mallory@example.org/INBOX"`, `"Shared Folders/mallory@example.org/INBOX"`} {
				line := cmd + " " + name
				if strings.Contains(cmd, "%s") {
					line = strings.Replace(cmd, "%s", name, 1)
				}
				c.expect(line, "NO [NONEXISTENT]")
			}
		}
		// Nor created: TRYCREATE only where the user could create the
		// mailbox (RFC 9051 6.3.12).
		c.expect(`APPEND "Other Users/mallory@example.org/INBOX" {12+}`+"\r\nSubject: x\r\n", "NO [NONEXISTENT]")
		c.expect(`APPEND "Other Users/mallory@example.org/New" {12+}`+"\r\nSubject: x\r\n", "NO [NONEXISTENT]")
		c.expect(`CREATE "Other Users/mallory@example.org/New"`, "NO [NOPERM]")
		c.expect(`CREATE "Other Users/nobody@example.org/New"`, "NO [NOPERM]")
	})
}

func TestNamespaceAndStatus(t *testing.T) {
	h := start(t, setup{})
	alice := h.user("alice@example.org", false)
	h.deliver(alice, "INBOX", msg("a", "1"), store.AppendOptions{Flags: store.FlagSeen})
	h.deliver(alice, "INBOX", msg("b", "2"), store.AppendOptions{Flags: store.FlagDeleted})
	h.deliver(alice, "INBOX", msg("c", "3"), store.AppendOptions{})
	c := h.dial(t)
	c.login("alice@example.org")
	must(t, c.ok("NAMESPACE"), `* NAMESPACE (("" "/")) (("Other Users/" "/")) (("Shared Folders/" "/"))`)

	st := must(t, c.ok("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE APPENDLIMIT RECENT)"), "* STATUS INBOX")
	for _, want := range []string{"MESSAGES 3", "UIDNEXT 4", "UIDVALIDITY ", "UNSEEN 2", "DELETED 1", "SIZE ", "APPENDLIMIT 52428800", "RECENT 3"} {
		if !strings.Contains(st, want) {
			t.Errorf("STATUS = %q, lacks %s", st, want)
		}
	}
	c.expect("STATUS INBOX (DELETED-STORAGE)", "BAD")
	c.expect("STATUS INBOX (NOSUCH)", "BAD")
	c.expect("STATUS INBOX", "BAD")
	c.expect("STATUS Nope (MESSAGES)", "NO [NONEXISTENT]")

	// LIST-STATUS: a STATUS response after each LIST response.
	u := c.ok(`LIST "" % RETURN (STATUS (MESSAGES UNSEEN SIZE))`)
	must(t, u, `* STATUS INBOX (MESSAGES 3 UNSEEN 2 SIZE `)
	must(t, u, `* STATUS "Trash" (MESSAGES 0 UNSEEN 0 SIZE 0)`)
}
