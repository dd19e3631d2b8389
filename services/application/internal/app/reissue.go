package app

import (
	"context"
	"errors"
	"time"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/audit"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/services/application/internal/domain"
)

// Reissue starts a new attempt of an issued application for a new
// certificate within the instance's subscription: a new key (or the
// customer's CSR), the same names or changed ones. It runs like a submit
// (domain.Claim, then the challenges, then one write), except that the
// instance stays bound and keeps the current certificate, which stays
// valid until the new one is issued and records which one it replaced.
// Names validated within the reuse period need no new proof; the CA checks
// that again when it signs. A retry with the same request id starts
// nothing new.
func (a *App) Reissue(ctx context.Context, account, id string, r domain.Reissue) (*Record, error) {
	if r.RequestID == "" {
		return nil, apierr.Invalid("request_id", "MISSING_FIELD", "request_id is required: a reissue makes a certificate, and a retry must not make two (a UUID is recommended)")
	}
	token := docstore.NewID()
	var (
		attempt int
		details domain.Details
	)
	rec, err := a.apps.Update(ctx, account, id, func(app *domain.Application) ([]events.Event, error) {
		var err error
		attempt, details, err = app.BeginReissue(token, r, a.now(), claimTTL)
		return nil, err
	})
	if errors.Is(err, domain.ErrSameReissue) {
		return a.apps.Get(ctx, account, id)
	}
	if err != nil {
		return nil, err
	}
	claimed, app := rec.Revision, rec.Doc
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	sctx := system(cctx, account)
	in, err := a.orders.GetInstance(sctx, app.Instance)
	if err == nil && !a.now().Before(in.SubscriptionEnd) {
		// Also ends the automatic renewal: nothing is issued after it.
		err = apierr.New(apierr.FailedPrecondition, "SUBSCRIPTION_ENDED",
			"the subscription of %s ended on %s: no new certificate is issued for it; buy a new instance and apply with it", app.Instance, in.SubscriptionEnd.Format(time.DateOnly))
	}
	if err != nil {
		a.endClaim(context.WithoutCancel(ctx), account, id, token)
		return nil, err
	}
	challenges, err := a.verifier.CreateChallenges(sctx, name(id), attempt, details.Domains, details.Method, details.ApproverMailbox)
	if err != nil {
		a.abandonSubmit(context.WithoutCancel(ctx), account, id, token, app.Instance, false)
		return nil, err
	}
	flagged := domain.FlaggedWords(details.Domains, a.reviewWords)
	out, err := a.apps.UpdateRecord(ctx, account, id, func(rec *Record) ([]events.Event, error) {
		if rec.Revision != claimed {
			return nil, apierr.New(apierr.Aborted, "CONCURRENT_SUBMIT",
				"the reissue took too long and another request changed the application meanwhile; read it again and retry")
		}
		now := a.now()
		app := &rec.Doc
		if err := app.FinishReissue(token, r, attempt, details, challenges, flagged, now); err != nil {
			return nil, err
		}
		requested, err := a.reissueEvent(account, id, app, r, now)
		if err != nil {
			return nil, err
		}
		evs, err := a.submitEvents(account, id, app, attempt, now)
		if err != nil {
			return nil, err
		}
		return audit.Append(ctx, append([]events.Event{requested}, evs...), source, audit.ApplicationReissue, account, name(id), now)
	})
	if err != nil && apierr.ReasonOf(err) != "CONCURRENT_SUBMIT" {
		a.abandonSubmit(context.WithoutCancel(ctx), account, id, token, app.Instance, false)
	}
	return out, err
}

// reissueEvent announces a reissue's new attempt: the customer's
// (reissue_requested) or the CA's automatic renewal (renewal_started),
// which names what the customer must prove again, if anything.
func (a *App) reissueEvent(account, id string, app *domain.Application, r domain.Reissue, now time.Time) (events.Event, error) {
	if !r.Renewal {
		return a.event(events.ApplicationReissueRequested, id, now, &eventsv1.ApplicationReissueRequested{
			Account: account, Application: name(id), Attempt: int32(app.Attempt), Replaces: app.ReissueOf,
			Domains: app.Details.Domains, RequestId: r.RequestID,
		})
	}
	var act []string
	for _, c := range app.Challenges {
		if !c.Reused {
			act = append(act, c.Domain)
		}
	}
	m := &eventsv1.ApplicationRenewalStarted{
		Account: account, Application: name(id), Attempt: int32(app.Attempt), Replaces: app.ReissueOf,
		Domains: app.Details.Domains, ActionRequired: act,
	}
	if !r.NotAfter.IsZero() {
		m.NotAfter = timestamppb.New(r.NotAfter)
	}
	return a.event(events.ApplicationRenewalStarted, id, now, m)
}

// renewalMinGain is how much longer than the current certificate the
// subscription must last for a renewal to be worth making.
const renewalMinGain = 24 * time.Hour

// renewalRequest is the request id of the renewal of a certificate: one
// renewal per certificate, however often it is asked for.
func renewalRequest(certificate string) string { return "renewal/" + certificate }

// Renew starts the automatic renewal of certificate, the application's
// current one (certflow.certificate.renewal_due): a reissue by the CA with
// the same names, reusing each validation still within its reuse period
// (checked again when the CA signs) and asking the customer to prove the
// others (renewal_started names them; the notification service tells the
// customer). Nothing starts for a certificate that is no longer the
// application's, an application not ISSUED (a reissue under way), or after
// the subscription's end.
func (a *App) Renew(ctx context.Context, account, id, certificate string, notAfter time.Time) error {
	rec, err := a.apps.Get(ctx, account, id)
	if errors.Is(err, apierr.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if rec.Doc.Certificate != certificate || rec.Doc.State != domain.Issued {
		a.log.Info("no renewal: the certificate is not the issued application's current one", "application", name(id), "certificate", certificate, "state", rec.Doc.State)
		return nil
	}
	// A certificate that lasts to the subscription's end (it was cut to it)
	// needs no successor: renewing it would make ever shorter ones.
	in, err := a.orders.GetInstance(system(ctx, account), rec.Doc.Instance)
	if err != nil {
		return err
	}
	if in.SubscriptionEnd.Sub(notAfter) < renewalMinGain {
		a.log.Info("no renewal: the certificate lasts to the subscription's end", "application", name(id), "certificate", certificate, "subscription_end", in.SubscriptionEnd)
		return nil
	}
	_, err = a.Reissue(system(ctx, account), account, id, domain.Reissue{RequestID: renewalRequest(certificate), Renewal: true, NotAfter: notAfter})
	if apierr.ReasonOf(err) == "SUBSCRIPTION_ENDED" || errors.Is(err, apierr.ErrFailedPrecondition) || errors.Is(err, apierr.ErrInvalidArgument) {
		a.log.Info("no renewal", "application", name(id), "certificate", certificate, "cause", err)
		return nil
	}
	return err
}
