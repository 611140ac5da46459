package delivery

import (
	"context"

	"basalt/store/outbound"
)

// What an administrator does to the queue (the admin API's queue
// resource), through the runner, so that an entry released or retried is
// attempted now rather than at the runner's next poll.

// QueueFilter selects a page of the queue (outbound.Filter).
type QueueFilter = outbound.Filter

// QueueEntry is a queued message (outbound.Entry).
type QueueEntry = outbound.Entry

// QueuePage is a page of the queue.
type QueuePage = outbound.Page

// List returns a page of queued messages.
func (q *Queue) List(ctx context.Context, f QueueFilter) (QueuePage, error) {
	return q.rows.List(ctx, f)
}

// Get returns one queued message.
func (q *Queue) Get(ctx context.Context, id int64) (QueueEntry, error) { return q.rows.Get(ctx, id) }

// Hold keeps a message from being attempted until released.
func (q *Queue) Hold(ctx context.Context, id int64) error { return q.rows.Hold(ctx, id) }

// Release ends a hold and wakes the runner.
func (q *Queue) Release(ctx context.Context, id int64) error {
	if err := q.rows.Release(ctx, id); err != nil {
		return err
	}
	q.poke()
	return nil
}

// RetryNow makes a message due now and wakes the runner.
func (q *Queue) RetryNow(ctx context.Context, id int64) error {
	if err := q.rows.RetryNow(ctx, id); err != nil {
		return err
	}
	q.poke()
	return nil
}

// Delete removes a queued message and its file.
func (q *Queue) Delete(ctx context.Context, id int64) error { return q.rows.Delete(ctx, id) }

// QueueState filters a queue listing (outbound.QueueState).
type QueueState = outbound.QueueState
