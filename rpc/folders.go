package rpc

import (
	"context"
	"strings"

	"basalt/store"
	"basalt/store/contacts"
	"basalt/store/webmail"
)

// Folders come in two contexts: "mail" (the store's mailboxes, whose
// names are paths joined by store.Delimiter) and "contacts" (address book
// folders). The API names a folder by id and gives each its leaf name and
// its parent, so a client never builds paths itself.

type contextParam struct {
	Context string `json:"context,omitempty" jsonschema:"enum=mail,enum=contacts,description=mail (default) or contacts"`
}

type folderItem struct {
	FolderID   int64  `json:"folderID"`
	ParentID   int64  `json:"parentID"`
	Name       string `json:"name"`
	Path       string `json:"path"`
	SpecialUse string `json:"specialUse,omitempty"`
	Total      int64  `json:"total"`
	Unread     int64  `json:"unread"`
	Size       int64  `json:"size"`
	Subscribed bool   `json:"subscribed,omitempty"`
	// Default marks the address book new contacts go to.
	Default bool `json:"default,omitempty"`
	// Owner, on a folder another user shares with you, is its owner's
	// address; Access is read, write or custom (Rights says which RFC
	// 4314 rights); DomainShare says it is shared with your whole domain.
	Owner       string `json:"owner,omitempty"`
	Access      string `json:"access,omitempty"`
	Rights      string `json:"rights,omitempty"`
	DomainShare bool   `json:"domainShare,omitempty"`
}

type foldersResult struct {
	Folders []folderItem `json:"folders"`
	State   string       `json:"state"`
}

type folderAddParams struct {
	contextParam
	Name     string `json:"name" jsonschema:"minLength=1,maxLength=255"`
	ParentID int64  `json:"parentID,omitempty" jsonschema:"minimum=0"`
}

type folderRenameParams struct {
	contextParam
	FolderID int64  `json:"folderID" jsonschema:"minimum=1"`
	Name     string `json:"name" jsonschema:"minLength=1,maxLength=255"`
}

type folderMoveParams struct {
	contextParam
	FolderID int64 `json:"folderID" jsonschema:"minimum=1"`
	ParentID int64 `json:"parentID" jsonschema:"minimum=0,description=0 moves the folder to the top"`
}

type folderRemoveParams struct {
	contextParam
	FolderID int64 `json:"folderID" jsonschema:"minimum=1"`
}

type folderIDResult struct {
	FolderID int64 `json:"folderID"`
}

func (h *Handler) registerFolders() {
	Register(h.engine, Spec{Name: "folders.list", Summary: "The user's folders with their counts, and the account state; then the folders others share with the user (owner, access).",
		Description: "A shared folder has owner set, parentID 0 and its owner's path; messages.load, messages.flag, messages.tag and messages.remove take its messages' ids, within the access given."}, h.foldersList)
	Register(h.engine, Spec{Name: "folders.add", Summary: "Create a folder under parentID (0 or absent: at the top)."}, h.foldersAdd)
	Register(h.engine, Spec{Name: "folders.rename", Summary: "Give a folder a new name where it is."}, h.foldersRename)
	Register(h.engine, Spec{Name: "folders.move", Summary: "Put a folder under another (0: at the top)."}, h.foldersMove)
	Register(h.engine, Spec{Name: "folders.remove", Summary: "Delete a folder without sub-folders, and what it holds."}, h.foldersRemove)
}

func isContacts(p contextParam) bool { return p.Context == "contacts" }

func (h *Handler) foldersList(ctx context.Context, c *Call, p contextParam) (foldersResult, error) {
	a := c.account()
	state, err := webmail.Of(a).State(ctx)
	if err != nil {
		return foldersResult{}, err
	}
	out := foldersResult{Folders: []folderItem{}, State: state}
	if isContacts(p) {
		fs, err := contacts.Of(a).ContactFolders(ctx)
		if err != nil {
			return foldersResult{}, err
		}
		for _, f := range fs {
			out.Folders = append(out.Folders, folderItem{FolderID: f.ID, ParentID: f.ParentID, Name: f.Name, Path: f.Name, Total: f.Contacts, Default: f.Default})
		}
		return out, nil
	}
	ms, err := a.Mailboxes(ctx)
	if err != nil {
		return foldersResult{}, err
	}
	for _, m := range ms {
		out.Folders = append(out.Folders, folderItem{
			FolderID: m.ID, ParentID: m.ParentID, Name: leaf(m.Name), Path: m.Name, SpecialUse: m.SpecialUse,
			Total: m.Messages, Unread: m.Unseen, Size: m.Size, Subscribed: m.Subscribed,
		})
	}
	shared, err := sharedFolders(ctx, a)
	if err != nil {
		return foldersResult{}, err
	}
	out.Folders = append(out.Folders, shared...)
	return out, nil
}

func leaf(path string) string { return path[strings.LastIndex(path, store.Delimiter)+1:] }

// mailPath returns the name a mail folder called name gets under parent.
func mailPath(ctx context.Context, a *store.Account, parentID int64, name string) (string, error) {
	if strings.Contains(name, store.Delimiter) {
		return "", invalid("name", "a folder name cannot contain "+store.Delimiter)
	}
	if parentID == 0 {
		return name, nil
	}
	parent, err := a.Mailbox(ctx, parentID)
	if err != nil {
		return "", err
	}
	return parent.Name + store.Delimiter + name, nil
}

func (h *Handler) foldersAdd(ctx context.Context, c *Call, p folderAddParams) (folderIDResult, error) {
	a := c.account()
	if isContacts(p.contextParam) {
		f, err := contacts.Of(a).CreateContactFolder(ctx, p.ParentID, p.Name)
		return folderIDResult{FolderID: f.ID}, err
	}
	path, err := mailPath(ctx, a, p.ParentID, p.Name)
	if err != nil {
		return folderIDResult{}, err
	}
	m, err := a.CreateMailbox(ctx, path, "")
	return folderIDResult{FolderID: m.ID}, err
}

func (h *Handler) foldersRename(ctx context.Context, c *Call, p folderRenameParams) (okResult, error) {
	a := c.account()
	if isContacts(p.contextParam) {
		return okResult{OK: true}, contacts.Of(a).RenameContactFolder(ctx, p.FolderID, p.Name)
	}
	m, err := a.Mailbox(ctx, p.FolderID)
	if err != nil {
		return okResult{}, err
	}
	path, err := mailPath(ctx, a, m.ParentID, p.Name)
	if err != nil {
		return okResult{}, err
	}
	return okResult{OK: true}, a.RenameMailbox(ctx, p.FolderID, path)
}

func (h *Handler) foldersMove(ctx context.Context, c *Call, p folderMoveParams) (okResult, error) {
	a := c.account()
	if isContacts(p.contextParam) {
		return okResult{OK: true}, contacts.Of(a).MoveContactFolder(ctx, p.FolderID, p.ParentID)
	}
	m, err := a.Mailbox(ctx, p.FolderID)
	if err != nil {
		return okResult{}, err
	}
	path, err := mailPath(ctx, a, p.ParentID, leaf(m.Name))
	if err != nil {
		return okResult{}, err
	}
	return okResult{OK: true}, a.RenameMailbox(ctx, p.FolderID, path)
}

func (h *Handler) foldersRemove(ctx context.Context, c *Call, p folderRemoveParams) (okResult, error) {
	a := c.account()
	if isContacts(p.contextParam) {
		return okResult{OK: true}, contacts.Of(a).DeleteContactFolder(ctx, p.FolderID)
	}
	return okResult{OK: true}, a.DeleteMailbox(ctx, p.FolderID)
}
