// Package blob stores message bodies as files on disk.
//
// Each blob lives at root/xx/yy/zz/<id> in one of several partitions (roots),
// behind a small header that says whether the body is zstd-compressed and/or
// encrypted (the encryption itself is supplied by the caller as a Transform,
// so this package never sees keys). Writes are durable and atomic: a temp
// file in the final directory is written, fsynced, hard-linked into place
// (which refuses to overwrite) and the directory fsynced, so after a crash a
// blob is either whole or absent. Walk lets a sweeper find orphans and
// leftover temp files.
package blob
