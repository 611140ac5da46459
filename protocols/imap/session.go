package imap

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	bsession "basalt/session"
	"basalt/store"
)

// session is one connection's IMAP session. The library calls its methods
// from the connection's goroutine, and Idle from a goroutine of its own
// while that one waits for DONE, so no two run at once; shutdown is the
// only other caller, and it takes opMu.
type session struct {
	srv    *Server
	conn   *imapserver.Conn
	g      *guard
	remote string

	authed      atomic.Bool
	auth        *bsession.Auth
	acct        *store.Account
	watch       *store.Watch
	appendLimit atomic.Uint32
	// live is the connection's place among the user's live sessions
	// (session.Front.Open), from login to logout.
	live *bsession.Conn

	sel *selected
	// deferredPolls counts the polls skipped in a row because the client
	// had sent more (see Poll); pollNow says the command wrote into the
	// selected mailbox, whose new messages are announced at once.
	deferredPolls int
	pollNow       bool
	searchRes     []uint32 // the saved SEARCH result (RFC 5182), as UIDs
	// ownerWatch follows the owner's changes while another user's
	// mailbox is selected: changes made through a share are announced
	// under the owner's user id, not the user's.
	ownerWatch *store.Watch

	// idleMu is held by Idle while it runs. The library stops waiting for
	// Idle when reading DONE fails and goes on to Close, so Close takes it
	// too, and the two never touch the session at once.
	idleMu sync.Mutex

	// opMu is held while a command changes the store, so that a shutdown
	// lets it finish before saying BYE.
	opMu   sync.Mutex
	closed bool // under opMu: the connection is being shut down
}

var (
	_ imapserver.SessionIMAP4rev2      = (*session)(nil)
	_ imapserver.SessionSASL           = (*session)(nil)
	_ imapserver.SessionUnauthenticate = (*session)(nil)
	_ imapserver.SessionAppendLimit    = (*session)(nil)
	_ imapserver.SessionNamespace      = (*session)(nil)
	_ imapserver.SessionMove           = (*session)(nil)
	_ interface {
		Idle(*imapserver.UpdateWriter, <-chan struct{}) error
	} = (*session)(nil)
)

func (s *Server) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	g, ok := c.NetConn().(*guard)
	if !ok {
		return nil, nil, errors.New("imap: connection without its guard")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, nil, &imap.Error{Type: imap.StatusResponseTypeBye, Text: "Server shutting down"}
	}
	s.sessions.Add(1) // Done in Close, which the library calls once
	sess := &session{srv: s, conn: c, g: g, remote: g.RemoteAddr().String()}
	g.sess.Store(sess)
	return sess, nil, nil
}

func (s *session) userID() int64 {
	if s.auth == nil {
		return 0
	}
	return s.auth.User.ID
}

// settle waits for an Idle that outlived its command. The library stops
// waiting for Idle when the line after IDLE is not DONE and goes on to
// the next command; every method that uses the session's state calls
// settle first, so that the two never overlap.
func (s *session) settle() {
	s.idleMu.Lock()
	s.idleMu.Unlock()
}

// begin marks the start of a store write; the returned function ends it.
// A connection being shut down starts none.
func (s *session) begin() (func(), error) {
	s.opMu.Lock()
	if s.closed {
		s.opMu.Unlock()
		return nil, no(imap.ResponseCodeUnavailable, "Server shutting down")
	}
	return s.opMu.Unlock, nil
}

// shutdown waits for the store write in progress, then says BYE and
// closes the connection.
func (s *session) shutdown(text string) {
	s.opMu.Lock()
	s.closed = true
	s.opMu.Unlock()
	s.conn.Bye(text)
	s.g.Close()
}

// Close ends the session when the connection ends.
func (s *session) Close() error {
	s.idleMu.Lock()
	defer s.idleMu.Unlock()
	defer s.srv.sessions.Done()
	s.logout()
	return nil
}

// logout forgets the user: the session goes back to not authenticated.
func (s *session) logout() {
	s.deselect()
	if s.watch != nil {
		s.watch.Close()
		s.watch = nil
	}
	s.live.Close()
	s.live = nil
	s.authed.Store(false)
	s.auth, s.acct = nil, nil
	s.appendLimit.Store(0)
}

// deselect forgets the selected mailbox.
func (s *session) deselect() {
	s.sel = nil
	s.searchRes = nil
	if s.ownerWatch != nil {
		s.ownerWatch.Close()
		s.ownerWatch = nil
	}
}

// Unauthenticate is RFC 8437's UNAUTHENTICATE.
func (s *session) Unauthenticate() error {
	s.settle()
	s.logout()
	return nil
}

// AppendLimit is the APPENDLIMIT (RFC 7889): the user's receive size
// limit, capped by the server's. Before login it is 0, so that an APPEND
// sent then is refused before its literal is read.
func (s *session) AppendLimit() uint32 { return s.appendLimit.Load() }

// ctx is the connection's context: it ends when the client goes away or
// the server aborts, and the store calls of the command running with it.
func (s *session) ctx() context.Context { return s.g.lc.Context() }
