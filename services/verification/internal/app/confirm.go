package app

import (
	"context"

	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/services/verification/internal/domain"
)

// Confirm checks the code of an EMAIL challenge of the account. A right code
// verifies it (once: the code is single use); a wrong one is counted, and
// the fifth fails the challenge. The count is written even though the call
// returns an error.
func (a *App) Confirm(ctx context.Context, account, id, code string) (*docstore.Record[domain.Challenge], error) {
	var verdict error
	var verified bool
	rec, err := a.store.Update(ctx, account, id, func(c *domain.Challenge) ([]events.Event, error) {
		now := a.now()
		out, cerr := c.Confirm(code, now)
		verdict, verified = cerr, out == domain.BecameVerified
		return a.outcomeEvents(out, account, id, c, now)
	})
	if err != nil {
		return nil, err
	}
	if verified {
		a.remember(ctx, rec)
	}
	if verdict != nil {
		return nil, verdict
	}
	return rec, nil
}
