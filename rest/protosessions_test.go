package rest_test

import (
	"context"
	"testing"
	"time"

	"basalt/internal/testsupport"
	"basalt/internal/testsupport/storetest"
	"basalt/rest"
	"basalt/session"
	"basalt/store"
)

// TestProtocolSessions: the sessions resource lists a user's live
// protocol connections beside its web sessions, revokes one by its id
// (another user's id ends nothing) and all of them, and a suspension
// ends them too; every request and answer passes the spec's validation.
// The connections are the session service's registrations, with hooks
// that report their end, as the protocol servers register theirs (the
// server package's TestRevokeReachesOpenConnections has real clients).
func TestProtocolSessions(t *testing.T) {
	testsupport.ForEachDatabase(t, func(t *testing.T, db testsupport.Database) {
		v := newEnvWith(t, db, rest.Config{RatePerMinute: 100000}, storetest.Options{})
		k := v.root
		ctx := context.Background()
		v.do(req{method: "POST", path: "/domains", key: k, body: map[string]any{"name": "a.test"}}).want(t, 201)
		for _, u := range []string{"al@a.test", "bo@a.test"} {
			v.do(req{method: "POST", path: "/users", key: k, body: map[string]any{"address": u, "password": "a long enough password"}}).want(t, 201)
		}
		// open logs al in over proto and registers the connection; its
		// end is reported on the returned channel.
		open := func(proto store.Protocol, remote string) (*session.Conn, chan string) {
			t.Helper()
			f := v.e.Session.For(proto)
			a, err := f.Authenticate(ctx, "al@a.test", "a long enough password", remote)
			if err != nil {
				t.Fatal(err)
			}
			ended := make(chan string, 1)
			return f.Open(a, remote, func(why string) { ended <- why }), ended
		}
		ended := func(ch chan string, want string) {
			t.Helper()
			select {
			case why := <-ch:
				if why != want {
					t.Fatalf("ended: %q, want %q", why, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("not ended (want %q)", want)
			}
		}
		alive := func(ch chan string) {
			t.Helper()
			select {
			case why := <-ch:
				t.Fatalf("ended: %q", why)
			case <-time.After(100 * time.Millisecond):
			}
		}
		imap, imapEnd := open(store.ProtoIMAP, "192.0.2.1:40001")
		defer imap.Close()
		pop, popEnd := open(store.ProtoPOP3, "192.0.2.2:40002")
		defer pop.Close()
		auth, err := v.e.Session.Authenticate(ctx, "al@a.test", "a long enough password", "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := v.e.Session.StartWeb(ctx, auth); err != nil {
			t.Fatal(err)
		}

		var ss struct {
			Items []rest.SessionView `json:"items"`
		}
		v.do(req{method: "GET", path: "/users/al@a.test/sessions", key: k}).want(t, 200).decode(t, &ss)
		got := map[string]rest.SessionView{}
		for _, s := range ss.Items {
			got[s.Protocol] = s
		}
		if len(ss.Items) != 3 || got["imap"].ID != imap.ID || got["imap"].RemoteAddress != "192.0.2.1:40001" ||
			got["pop3"].ID != pop.ID || got["webmail"].ExpiresAt == 0 || got["imap"].CreatedAt < time.Now().Add(-time.Minute).Unix() {
			t.Fatalf("sessions %+v", ss.Items)
		}

		// bo cannot end al's connection by naming it: no node lists it
		// for bo (404), nor an id no node lists at all.
		v.do(req{method: "DELETE", path: "/users/bo@a.test/sessions/" + imap.ID, key: k}).want(t, 404)
		v.do(req{method: "DELETE", path: "/users/al@a.test/sessions/imap-0123456789abcdef", key: k}).want(t, 404)
		alive(imapEnd)
		v.do(req{method: "DELETE", path: "/users/al@a.test/sessions/" + imap.ID, key: k}).want(t, 204)
		ended(imapEnd, "session revoked")
		alive(popEnd)
		v.do(req{method: "GET", path: "/users/al@a.test/sessions", key: k}).want(t, 200).decode(t, &ss)
		if len(ss.Items) != 2 {
			t.Fatalf("sessions after revoking the IMAP one: %+v", ss.Items)
		}

		// Revoking all ends the web session and the POP3 connection.
		v.do(req{method: "DELETE", path: "/users/al@a.test/sessions", key: k}).want(t, 204)
		ended(popEnd, "session revoked")
		v.do(req{method: "GET", path: "/users/al@a.test/sessions", key: k}).want(t, 200).decode(t, &ss)
		if len(ss.Items) != 0 {
			t.Fatalf("sessions after revoking all: %+v", ss.Items)
		}

		// A change of the user's state ends what it no longer allows:
		// POP3 turned off ends POP3 and leaves IMAP; a suspension ends
		// the rest.
		imap2, imap2End := open(store.ProtoIMAP, "192.0.2.3:40003")
		defer imap2.Close()
		pop2, pop2End := open(store.ProtoPOP3, "192.0.2.4:40004")
		defer pop2.Close()
		v.do(req{method: "PUT", path: "/users/al@a.test/access", key: k, body: map[string]any{"imap": true, "pop3": false, "smtp": true, "webmail": true}}).want(t, 200)
		ended(pop2End, "access over pop3 turned off")
		alive(imap2End)
		v.do(req{method: "POST", path: "/users/al@a.test/suspend", key: k}).want(t, 200)
		ended(imap2End, "account suspended")
	})
}
