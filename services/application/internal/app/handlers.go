package app

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/grpcclient"
	"github.com/certflow/certflow/services/application/internal/domain"
)

// ExternalSubjects are the other services' events the application follows.
var ExternalSubjects = []string{events.DomainVerified, events.DomainFailed, events.CertificateIssued, events.CertificateRevoked, events.CertificateRenewalDue, events.ReviewApproved, events.ReviewRejected}

// SagaSubjects are its own events whose side effects it carries out.
var SagaSubjects = []string{events.ApplicationStateChanged, events.ApplicationWithdrawn, events.ApplicationFailed}

// DefaultCAARetryWindow is how long failing CAA lookups are retried before
// the application fails: a lookup failure is never permission (RFC 8659),
// and the customer must learn why the certificate does not come.
const DefaultCAARetryWindow = 10 * time.Minute

// HandleEvent applies an event; applying one twice changes nothing.
func (a *App) HandleEvent(ctx context.Context, ev events.Event) error {
	switch ev.Type {
	case events.DomainVerified:
		var m eventsv1.DomainVerified
		if err := unmarshal(ev, &m); err != nil {
			return err
		}
		return a.transition(ctx, m.Account, m.Application, func(app *domain.Application) (domain.State, error) {
			next, err := app.DomainVerified(int(m.Attempt), m.Challenge, m.VerifyTime.AsTime(), a.now())
			if err == nil {
				app.MarkChallenge(m.Challenge, m.RuleVersion, m.Reused)
			}
			return next, err
		})
	case events.DomainFailed:
		var m eventsv1.DomainValidationFailed
		if err := unmarshal(ev, &m); err != nil {
			return err
		}
		return a.transition(ctx, m.Account, m.Application, func(app *domain.Application) (domain.State, error) {
			return domain.ValidationFailed, app.DomainFailed(int(m.Attempt), m.Challenge, m.Domain, m.Cause, a.now())
		})
	case events.ReviewApproved, events.ReviewRejected:
		var m eventsv1.ReviewDecided
		if err := unmarshal(ev, &m); err != nil {
			return err
		}
		return a.transition(ctx, m.Account, m.Application, func(app *domain.Application) (domain.State, error) {
			return app.ReviewDecided(domain.ReviewKind(m.Kind), int(m.Attempt), m.State == "APPROVED", m.Cause, a.now())
		})
	case events.CertificateIssued:
		var m eventsv1.CertificateIssued
		if err := unmarshal(ev, &m); err != nil {
			return err
		}
		return a.onCertificateIssued(ctx, &m)
	case events.CertificateRenewalDue:
		var m eventsv1.CertificateRenewalDue
		if err := unmarshal(ev, &m); err != nil {
			return err
		}
		id, err := idOf(m.Application)
		if err != nil {
			return err
		}
		return a.Renew(ctx, m.Account, id, m.Certificate, m.NotAfter.AsTime())
	case events.CertificateRevoked:
		var m eventsv1.CertificateRevoked
		if err := unmarshal(ev, &m); err != nil {
			return err
		}
		return a.onCertificateRevoked(ctx, &m)
	case events.ApplicationStateChanged:
		var m eventsv1.ApplicationStateChanged
		if err := unmarshal(ev, &m); err != nil {
			return err
		}
		return a.onStateChanged(ctx, ev, &m)
	case events.ApplicationWithdrawn:
		var m eventsv1.ApplicationWithdrawn
		if err := unmarshal(ev, &m); err != nil {
			return err
		}
		id, err := idOf(m.Application)
		if err != nil {
			return err
		}
		// Only while the withdrawal's release is unfinished: once it is
		// done the application may have been resubmitted, and the instance
		// and the challenges belong to the new attempt.
		return a.finishWithdrawal(ctx, m.Account, id, int(m.Attempt))
	case events.ApplicationFailed:
		var m eventsv1.ApplicationFailed
		if err := unmarshal(ev, &m); err != nil {
			return err
		}
		id, err := idOf(m.Application)
		if err != nil {
			return err
		}
		rec, err := a.apps.Get(ctx, m.Account, id)
		if err != nil {
			return err
		}
		// The other names' challenges of a failed attempt can no longer
		// help; stop checking them, unless a new attempt has started.
		if rec.Doc.State != domain.ValidationFailed || rec.Doc.Attempt != int(m.Attempt) {
			return nil
		}
		return a.verifier.CancelChallenges(system(ctx, m.Account), m.Application)
	}
	return nil
}

func unmarshal(ev events.Event, m proto.Message) error {
	if err := proto.Unmarshal(ev.Data, m); err != nil {
		return events.Permanent(fmt.Errorf("decode %s %s: %w", ev.Type, ev.ID, err))
	}
	return nil
}

// transition lets decide move the application and publishes the move:
// application.failed for VALIDATION_FAILED, application.state_changed
// otherwise. decide returns "" for no move and domain.ErrStale for an
// event that no longer applies.
func (a *App) transition(ctx context.Context, account, application string, decide func(*domain.Application) (domain.State, error)) error {
	id, err := idOf(application)
	if err != nil {
		return err
	}
	_, err = a.apps.Update(ctx, account, id, func(app *domain.Application) ([]events.Event, error) {
		from := app.State
		next, err := decide(app)
		if err != nil {
			return nil, stale(err)
		}
		if next == "" || next == from {
			return nil, nil
		}
		now := a.now()
		d := app.Details
		var ev events.Event
		if next == domain.ValidationFailed {
			ev, err = a.event(events.ApplicationFailed, id, now, &eventsv1.ApplicationFailed{
				Account: account, Application: application, Attempt: int32(app.Attempt), FromState: string(from),
				Cause: app.FailureCause, ApplicantEmail: d.Applicant.Email, ApplicantPhone: d.Applicant.Phone,
			})
		} else {
			ev, err = a.event(events.ApplicationStateChanged, id, now, &eventsv1.ApplicationStateChanged{
				Account: account, Application: application, Attempt: int32(app.Attempt), FromState: string(from), ToState: string(next),
				ProgressPercent: int32(next.Progress()), ApplicantEmail: d.Applicant.Email, ApplicantPhone: d.Applicant.Phone,
				CompanyPhone: d.Company.Phone,
			})
		}
		return []events.Event{ev}, err
	})
	return err
}

// onStateChanged carries out what a new state needs from other services.
func (a *App) onStateChanged(ctx context.Context, ev events.Event, m *eventsv1.ApplicationStateChanged) error {
	id, err := idOf(m.Application)
	if err != nil {
		return err
	}
	rec, err := a.apps.Get(ctx, m.Account, id)
	if err != nil {
		return err
	}
	app := rec.Doc
	if string(app.State) != m.ToState || app.Attempt != int(m.Attempt) {
		return nil // moved on (withdrawn, failed, resubmitted) meanwhile
	}
	review := func(kind domain.ReviewKind) error {
		// Under a claim (domain.Claim): a withdrawal meanwhile waits, then
		// cancels the review, instead of leaving it in the queue.
		token := docstore.NewID()
		claimed, err := a.apps.Update(ctx, m.Account, id, func(d *domain.Application) ([]events.Event, error) {
			return nil, stale(d.BeginReview(app.State, app.Attempt, token, a.now(), claimTTL))
		})
		if err != nil {
			return err
		}
		if !claimed.Doc.Holds(token, a.now()) {
			return nil // moved on meanwhile
		}
		defer a.endClaim(ctx, m.Account, id, token)
		cctx, cancel := context.WithDeadline(ctx, a.callDeadline(claimed.Doc.Claim))
		defer cancel()
		return a.reviews.CreateReview(system(cctx, m.Account), ReviewRequest{
			Kind: kind, Application: m.Application, Attempt: app.Attempt, Level: app.Product.Level, Domains: app.Details.Domains,
			FlaggedWords: app.FlaggedWords, Applicant: app.Details.Applicant, Company: app.Details.Company,
		})
	}
	switch app.State {
	case domain.PendingOrganizationVerification:
		err = review(domain.OrganizationReview)
	case domain.PendingManualReview:
		err = review(domain.ManualReview)
	case domain.PendingIssuance:
		err = a.issue(ctx, ev, m.Account, m.Application, &app)
	}
	if apierr.ReasonOf(err) == grpcclient.ReasonRejected {
		// Retrying a refused request would hold the application forever:
		// fail it with the cause so the customer can fix and resubmit.
		a.log.Error("saga step refused", "application", m.Application, "state", app.State, "err", err)
		return a.transition(ctx, m.Account, m.Application, func(d *domain.Application) (domain.State, error) {
			if d.State != app.State || d.Attempt != app.Attempt {
				return "", domain.ErrStale
			}
			return domain.ValidationFailed, d.Fail("the application could not be passed on to the CA ("+err.Error()+"); check its details and resubmit", a.now())
		})
	}
	return err
}

// issue checks CAA for every name and asks the CA to sign; the
// certificate-issued event moves the application on.
func (a *App) issue(ctx context.Context, ev events.Event, account, application string, app *domain.Application) error {
	sctx := system(ctx, account)
	caa, err := a.verifier.CheckCAA(sctx, app.Details.Domains)
	if err != nil {
		return err
	}
	if !caa.Allowed {
		if waited := a.now().Sub(ev.Time); caa.LookupFailed && waited < a.caaRetryWindow {
			return fmt.Errorf("CAA lookup for %s failed (retrying for %s more): %s", caa.Domain, (a.caaRetryWindow - waited).Round(time.Second), caa.Reason)
		}
		cause := "CAA forbids issuance: " + caa.Reason
		if caa.LookupFailed {
			cause = fmt.Sprintf("the CAA records of %s could not be looked up (%s); a failed lookup is never a permission: fix the DNS and resubmit", caa.Domain, caa.Reason)
		}
		return a.transition(ctx, account, application, func(app *domain.Application) (domain.State, error) {
			return domain.ValidationFailed, app.FailIssuance(cause, a.now())
		})
	}
	// From here on the CA signs: withdrawal is refused, so no certificate
	// is made for an application its customer has withdrawn.
	id, err := idOf(application)
	if err != nil {
		return err
	}
	requested, err := a.apps.Update(ctx, account, id, func(d *domain.Application) ([]events.Event, error) {
		return nil, stale(d.RequestIssuance(app.Attempt))
	})
	if err != nil {
		return err
	}
	if requested.Doc.State != domain.PendingIssuance || requested.Doc.IssuanceRequested != app.Attempt {
		return nil // withdrawn meanwhile
	}
	// The certificate ends with the subscription at the latest.
	in, err := a.orders.GetInstance(sctx, app.Instance)
	if err != nil {
		return err
	}
	_, err = a.issuer.IssueCertificate(sctx, IssueRequest{
		RequestID: requestID(application, app.Attempt), Application: application, Attempt: app.Attempt,
		Domains: app.Details.Domains, CSR: app.Details.CSR, KeyAlgorithm: app.Details.KeyAlgorithm,
		Level: string(app.Product.Level), Replaces: app.ReissueOf, NotAfterLimit: in.SubscriptionEnd,
	})
	if errors.Is(err, apierr.ErrFailedPrecondition) {
		// The CA checked again at the signing time and refused (a validation
		// too old by now, CAA changed, …). Asking again cannot help: fail the
		// application with the cause, so the customer resubmits.
		cause := refusalCause(err)
		a.log.Warn("the CA refused to sign", "application", application, "attempt", app.Attempt, "reason", apierr.ReasonOf(err), "cause", cause)
		return a.transition(ctx, account, application, func(d *domain.Application) (domain.State, error) {
			if d.Attempt != app.Attempt {
				return "", domain.ErrStale
			}
			return domain.ValidationFailed, d.FailIssuance(cause, a.now())
		})
	}
	return err
}

// refusalCause is what the customer is told when the CA refuses to sign:
// the reason code and the CA's message, which says what to do.
func refusalCause(err error) string {
	var e *apierr.Error
	if !errors.As(err, &e) {
		return "the CA refused to sign the certificate; edit and resubmit the application"
	}
	return fmt.Sprintf("the CA refused to sign the certificate (%s): %s", e.Reason, e.Message)
}

// requestID names the issuance of one attempt, so that the issuance service
// signs once per attempt however often it is asked.
func requestID(application string, attempt int) string {
	return application + "/attempts/" + strconv.Itoa(attempt)
}

func parseRequestID(rid string) (string, int, error) {
	app, n, ok := strings.Cut(rid, "/attempts/")
	attempt, err := strconv.Atoi(n)
	if !ok || err != nil {
		return "", 0, events.Permanent(fmt.Errorf("bad issuance request id %q", rid))
	}
	return app, attempt, nil
}

func (a *App) onCertificateIssued(ctx context.Context, m *eventsv1.CertificateIssued) error {
	appName, attempt, err := parseRequestID(m.RequestId)
	if err != nil {
		return err
	}
	id, err := idOf(appName)
	if err != nil {
		return err
	}
	rec, err := a.apps.Update(ctx, m.Account, id, func(app *domain.Application) ([]events.Event, error) {
		now := a.now()
		if err := app.Issued(attempt, m.Certificate, now); err != nil {
			return nil, stale(err)
		}
		ev, err := a.event(events.ApplicationIssued, id, now, &eventsv1.ApplicationIssued{
			Account: m.Account, Application: appName, Attempt: int32(attempt), Certificate: m.Certificate,
			ApplicantEmail: app.Details.Applicant.Email, ApplicantPhone: app.Details.Applicant.Phone, Domains: app.Details.Domains,
		})
		return []events.Event{ev}, err
	})
	if err != nil {
		return err
	}
	if rec.Doc.State == domain.Issued && rec.Doc.Certificate == m.Certificate {
		// Also on redelivery: the instance call may not have happened yet.
		return a.orders.MarkInstanceIssued(system(ctx, m.Account), rec.Doc.Instance, appName, m.Certificate, m.NotAfter.AsTime())
	}
	return nil
}

// onCertificateRevoked marks the application's instance REVOKED when the
// revoked certificate is the one the application got. The application
// itself stays ISSUED: its work is done; the certificate and the instance
// carry the revocation.
func (a *App) onCertificateRevoked(ctx context.Context, m *eventsv1.CertificateRevoked) error {
	if m.Application == "" {
		return nil
	}
	id, err := idOf(m.Application)
	if err != nil {
		return err
	}
	rec, err := a.apps.Get(ctx, m.Account, id)
	if errors.Is(err, apierr.ErrNotFound) {
		return nil // a certificate signed for no application of ours
	}
	if err != nil {
		return err
	}
	if rec.Doc.Certificate != m.Certificate || rec.Doc.Instance == "" {
		return nil
	}
	return a.orders.MarkInstanceRevoked(system(ctx, m.Account), rec.Doc.Instance, m.Application, m.Certificate)
}
