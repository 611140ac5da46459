// Package contacts keeps one user's address book and settings: contacts
// (a vCard each, with the name and address kept beside it for listing),
// the folders they are filed in, and the webmail's settings. Its client
// is the webmail (rpc); only the owner of the mail has a book, never a
// user it is shared with. The webmail's states record what the book held
// through SnapshotIn, so no other package reads its tables.
//
// It writes on the store's spine (store/internal/spine): each change goes
// through the user's write transaction, so it bumps the user's serial and
// is announced ("contacts", "settings" events) like a change of mail.
package contacts
