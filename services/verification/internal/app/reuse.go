package app

import (
	"context"
	"errors"
	"time"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/domainname"
	"github.com/certflow/certflow/services/verification/internal/domain"
)

// Reuse of domain validation (BR 4.2.1 with SC-081): a name an account
// validated less than certpolicy.DomainValidationReuse ago need not be
// validated again by that account. Each account's latest validation of each
// name is kept in its own collection under _id = hash(account, name), so the
// lookup on every CreateChallenges is one read by _id (FerretDB scans for any
// other filter).
//
// The record is written after the challenge becomes VERIFIED, in a second
// write: if the process dies in between, the validation is simply not
// reusable and the next application validates again — it fails safe.

// ValidationID is the id of an account's validation record of name (already
// normalized).
func ValidationID(account, name string) string {
	return docstore.IDFor(account, "validations/"+name)
}

// reuse returns the challenge for spec satisfied by the account's earlier
// validation of the name, if one covers it now.
func (a *App) reuse(ctx context.Context, account string, spec domain.Spec, now time.Time) (domain.Challenge, bool, error) {
	name, err := domainname.Normalize(spec.Name)
	if err != nil {
		return domain.Challenge{}, false, nil // NewChallenge reports it
	}
	rec, err := a.validations.Get(ctx, account, ValidationID(account, name))
	if errors.Is(err, apierr.ErrNotFound) {
		return domain.Challenge{}, false, nil
	}
	if err != nil {
		return domain.Challenge{}, false, err
	}
	if !rec.Doc.Covers(name, now) {
		return domain.Challenge{}, false, nil
	}
	return domain.NewReusedChallenge(spec, rec.Doc, now), true, nil
}

// remember records a challenge that just became VERIFIED as the account's
// latest validation of its name. A failure is logged, not returned: the
// challenge is verified either way, and the cost is one validation not being
// reusable.
func (a *App) remember(ctx context.Context, rec *docstore.Record[domain.Challenge]) {
	if rec.Doc.State != domain.Verified || rec.Doc.Reused {
		return
	}
	if err := a.rememberValidation(ctx, rec.Account, domain.ValidationOf(rec.ID, rec.Doc)); err != nil {
		a.log.Warn("recording validation for reuse failed; it will not be reused", "challenge", rec.ID, "domain", rec.Doc.Domain, "err", err)
	}
}

func (a *App) rememberValidation(ctx context.Context, account string, v domain.Validation) error {
	_, err := a.validations.Upsert(ctx, ValidationID(account, v.Domain), account, v, func(cur *domain.Validation) bool { return cur.Newer(v) })
	return err
}
