package outbound

// SetAfterBlobWrite lets tests act between writing an entry's file and
// committing its rows.
func SetAfterBlobWrite(q *Queue, f func()) { q.afterBlobWrite = f }
