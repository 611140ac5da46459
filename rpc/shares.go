package rpc

import (
	"context"
	"errors"
	"strings"

	"basalt/store"
)

// Sharing folders with other users of the server (RFC 4314 rights in the
// store, store/shares.go). The API speaks of two kinds of access, mapped
// to rights:
//
//	read  = "lrs"      look it up, read it, keep one's own \Seen
//	write = "lrswite"  and set flags (w), add messages (i), delete
//	                   them (t) and expunge (e)
//
// Neither gives "k", "x" (make or delete sub-folders, delete the folder)
// or "a" (change who it is shared with): those stay the owner's. A grant
// with other rights (made over IMAP SETACL) is listed with access
// "custom" and its letters.
//
// A grantee is a user ("user@domain", or a login name) or, written
// "@domain", every user of the owner's own domain. A secure user's
// folders cannot be shared: their mail is encrypted to the owner's key.

var (
	rightsRead  = mustRights("lrs")
	rightsWrite = mustRights("lrswite")
)

func mustRights(s string) store.Rights {
	r, err := store.ParseRights(s)
	if err != nil {
		panic(err)
	}
	return r
}

// access names a set of rights.
func access(r store.Rights) string {
	switch {
	case r == rightsRead:
		return "read"
	case r == rightsWrite:
		return "write"
	}
	return "custom"
}

type shareParams struct {
	FolderID int64 `json:"folderID" jsonschema:"minimum=1"`
	// Grantee is "user@domain" (or a login name), or "@domain" for every
	// user of your own domain.
	Grantee string `json:"grantee" jsonschema:"minLength=1,maxLength=320"`
	Access  string `json:"access" jsonschema:"enum=read,enum=write"`
}

type unshareParams struct {
	FolderID int64  `json:"folderID" jsonschema:"minimum=1"`
	Grantee  string `json:"grantee" jsonschema:"minLength=1,maxLength=320"`
}

type shareItem struct {
	FolderID int64  `json:"folderID"`
	Path     string `json:"path"`
	// Grantee is "user@domain", or "@domain" for a whole domain.
	Grantee string `json:"grantee"`
	Domain  bool   `json:"domain"`
	Access  string `json:"access"`
	Rights  string `json:"rights"`
}

type sharesResult struct {
	Shares []shareItem `json:"shares"`
}

func (h *Handler) registerShares() {
	Register(h.engine, Spec{Name: "folders.share", Summary: "Share one of your mail folders with a user or your whole domain (\"@domain\"): access read (rights lrs) or write (lrswite).",
		Description: "Sharing again with the same grantee replaces its access. Refused: data.type forbidden for a secure account (its mail is encrypted to its own key), " +
			"invalid for yourself or another domain, notFound (field grantee) for an unknown user."}, h.foldersShare)
	Register(h.engine, Spec{Name: "folders.unshare", Summary: "Stop sharing one of your folders with a grantee (as given to folders.share)."}, h.foldersUnshare)
	Register(h.engine, Spec{Name: "folders.shares", Summary: "What you share: each folder with each grantee and its access."}, h.foldersShares)
}

// granteeName turns the API's grantee into the store's: "@domain" is the
// domain's name.
func granteeName(g string) string {
	g = strings.TrimSpace(g)
	if d, ok := strings.CutPrefix(g, "@"); ok {
		return d
	}
	return g
}

// grantError words the store's refusals of a grant for the one who asked.
func grantError(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		// The folder was checked first: what is not found is the grantee.
		return &Error{Code: CodeNotFound, Message: "no such user or domain", Data: ErrorData{Type: "notFound", Field: "grantee"}, cause: err}
	case errors.Is(err, store.ErrForbidden):
		return &Error{Code: CodeInvalid, Message: "a folder is shared with a whole domain only within your own", Data: ErrorData{Type: "invalid", Field: "grantee"}, cause: err}
	case errors.Is(err, store.ErrInvalid):
		return &Error{Code: CodeInvalid, Message: invalidMessage(err), Data: ErrorData{Type: "invalid", Field: "grantee"}, cause: err}
	}
	return err
}

// grant checks the folder is the user's own and shareable, then sets r.
func (h *Handler) grant(ctx context.Context, c *Call, folderID int64, grantee string, r store.Rights) error {
	a := c.account()
	if _, err := a.Mailbox(ctx, folderID); err != nil {
		return err
	}
	u, err := h.st.UserByID(ctx, c.userID())
	if err != nil {
		return err
	}
	if u.Secure {
		return &Error{Code: CodeForbiddenFrom, Message: "your mail is encrypted to your own key: no one else could read a folder you share", Data: ErrorData{Type: "forbidden"}}
	}
	if err := a.Grant(ctx, folderID, granteeName(grantee), r); err != nil {
		return grantError(err)
	}
	return nil
}

func (h *Handler) foldersShare(ctx context.Context, c *Call, p shareParams) (okResult, error) {
	r := rightsRead
	if p.Access == "write" {
		r = rightsWrite
	}
	if err := h.grant(ctx, c, p.FolderID, p.Grantee, r); err != nil {
		return okResult{}, err
	}
	return okResult{OK: true}, nil
}

func (h *Handler) foldersUnshare(ctx context.Context, c *Call, p unshareParams) (okResult, error) {
	if err := h.grant(ctx, c, p.FolderID, p.Grantee, 0); err != nil {
		return okResult{}, err
	}
	return okResult{OK: true}, nil
}

func (h *Handler) foldersShares(ctx context.Context, c *Call, _ empty) (sharesResult, error) {
	gs, err := h.st.GrantsFor(ctx, c.userID())
	if err != nil {
		return sharesResult{}, err
	}
	out := sharesResult{Shares: []shareItem{}}
	for _, g := range gs {
		name := g.Grantee
		if g.Domain {
			name = "@" + name
		}
		out.Shares = append(out.Shares, shareItem{FolderID: g.MailboxID, Path: g.MailboxName, Grantee: name, Domain: g.Domain, Access: access(g.Rights), Rights: g.Rights.String()})
	}
	return out, nil
}

// sharedFolders lists the folders others share with the user, for
// folders.list: at the top level (parentID 0), named by their owner's
// path, with owner, access and rights.
func sharedFolders(ctx context.Context, a *store.Account) ([]folderItem, error) {
	sms, err := a.SharedMailboxes(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]folderItem, 0, len(sms))
	for _, m := range sms {
		out = append(out, folderItem{
			FolderID: m.ID, Name: leaf(m.Name), Path: m.Name, SpecialUse: m.SpecialUse,
			Total: m.Messages, Unread: m.Unseen, Size: m.Size, Subscribed: m.Subscribed,
			Owner: m.OwnerAddress, Access: access(m.Rights), Rights: m.Rights.String(), DomainShare: m.DomainShare,
		})
	}
	return out, nil
}

// folderAccount returns the account a folder is reached through: the
// user's own, or its owner's as shared with the user (every call then
// checks the user's rights on it).
func folderAccount(ctx context.Context, a *store.Account, folderID int64) (*store.Account, error) {
	if _, err := a.Mailbox(ctx, folderID); err == nil || !errors.Is(err, store.ErrNotFound) {
		return a, err
	}
	sms, err := a.SharedMailboxes(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range sms {
		if m.ID == folderID {
			return a.Shared(m.OwnerID)
		}
	}
	return a, nil // not found, as the user's own account says
}
