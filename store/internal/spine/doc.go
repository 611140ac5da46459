// Package spine is what the store and its sub-packages (store/outbound,
// store/webmail, store/contacts) write with, so that each gives the same
// guarantees: the user transaction that bumps the user's serial and
// announces the change once it is committed (WriteUser), daily counters
// (AddDaily), the quota a user's messages and uploads are charged to
// (FitsQuota, ChargeUser), and the references to message files: the
// blobs rows (AddBlobRows, RefBlobs, ReleaseBlobs) and the removal of
// files whose last reference was committed away (RemoveBlobs). Apart from
// the store's DeleteUser, which releases a whole user's mail in one
// statement, nothing else writes the blobs table or a user's used bytes.
//
// It sits under store/internal, so only the store's tree can import it;
// the store lends its spine to its sub-packages through methods that take
// a Key, which no package outside the tree can name.
package spine
