package delivery

import (
	"context"
	"fmt"

	"basalt/store"
)

// bulletinBatch is how many users a bulletin reaches between two records
// of its progress: a delivery that stops sends at most this many again.
const bulletinBatch = 50

// SendBulletin delivers bulletin id (store.CreateBulletin) to the users
// of its scope it has not reached yet, each as a local delivery from its
// sender: through the recipients' limits, filters and quota like any
// mail. A user it cannot be delivered to (over quota, say) is counted as
// failed and the bulletin goes on. Progress is recorded after every
// batch, so run again after an interruption it resumes after the last
// user recorded; progress, if not nil, is told how far it is and may stop
// the run with an error.
func (a *Agent) SendBulletin(ctx context.Context, id int64, progress func(b store.Bulletin) error) (store.Bulletin, error) {
	b, raw, err := a.store.BulletinByID(ctx, id)
	if err != nil {
		return store.Bulletin{}, err
	}
	for b.State != store.BulletinDone {
		rs, err := a.store.BulletinRecipients(ctx, b, bulletinBatch)
		if err != nil {
			return b, err
		}
		if len(rs) == 0 {
			b.State = store.BulletinDone
		}
		for _, r := range rs {
			if err := ctx.Err(); err != nil {
				return b, err
			}
			if err := a.DeliverLocal(ctx, b.From, r.Address, raw); err != nil {
				if store.IsUnavailable(err) {
					return b, fmt.Errorf("bulletin %d to %s: %w", id, r.Address, err)
				}
				b.Failed++
				b.LastError = r.Address + ": " + err.Error()
				a.log.Info("bulletin not delivered", "bulletin", id, "user", r.ID, "err", err)
			} else {
				b.Delivered++
			}
			b.LastUserID = r.ID
		}
		if err := a.store.SaveBulletinProgress(ctx, b); err != nil {
			return b, err
		}
		if progress != nil {
			if err := progress(b); err != nil {
				return b, err
			}
		}
	}
	return b, nil
}
