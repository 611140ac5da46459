package store

// SetAfterBlobWrite lets tests stop a process between writing a message
// file and committing its rows.
func SetAfterBlobWrite(s *Store, f func()) { s.hooks.afterBlobWrite = f }
