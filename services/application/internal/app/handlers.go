package app

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/services/application/internal/domain"
)

// Subjects the application follows from other services.
var ExternalSubjects = []string{events.DomainVerified, events.DomainFailed, events.CertificateIssued}

// Subjects of its own events whose side effects it carries out.
var SagaSubjects = []string{events.ApplicationStateChanged, events.ApplicationWithdrawn, events.ApplicationFailed}

// HandleEvent applies an event; applying one twice changes nothing.
func (a *App) HandleEvent(ctx context.Context, ev events.Event) error {
	switch ev.Type {
	case events.DomainVerified:
		var m eventsv1.DomainVerified
		if err := unmarshal(ev, &m); err != nil {
			return err
		}
		return a.onDomainVerified(ctx, &m)
	case events.DomainFailed:
		var m eventsv1.DomainValidationFailed
		if err := unmarshal(ev, &m); err != nil {
			return err
		}
		return a.onDomainFailed(ctx, &m)
	case events.CertificateIssued:
		var m eventsv1.CertificateIssued
		if err := unmarshal(ev, &m); err != nil {
			return err
		}
		return a.onCertificateIssued(ctx, &m)
	case events.ApplicationStateChanged:
		var m eventsv1.ApplicationStateChanged
		if err := unmarshal(ev, &m); err != nil {
			return err
		}
		if m.ToState == string(domain.PendingIssuance) {
			return a.requestIssuance(ctx, &m)
		}
		return nil
	case events.ApplicationWithdrawn:
		var m eventsv1.ApplicationWithdrawn
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
		return a.afterWithdraw(ctx, m.Account, id, rec.Doc.Instance)
	case events.ApplicationFailed:
		var m eventsv1.ApplicationFailed
		if err := unmarshal(ev, &m); err != nil {
			return err
		}
		// The other names' challenges of a failed attempt can no longer
		// help; stop checking them.
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

func (a *App) onDomainVerified(ctx context.Context, m *eventsv1.DomainVerified) error {
	id, err := idOf(m.Application)
	if err != nil {
		return err
	}
	_, err = a.apps.Update(ctx, m.Account, id, func(app *domain.Application) ([]events.Event, error) {
		now := a.now()
		from := app.State
		next, err := app.DomainVerified(int(m.Attempt), m.Challenge, m.VerifyTime.AsTime(), now)
		if err != nil {
			return nil, stale(err)
		}
		if next == "" {
			return nil, nil
		}
		ev, err := a.event(events.ApplicationStateChanged, id, now, &eventsv1.ApplicationStateChanged{
			Account: m.Account, Application: m.Application, Attempt: m.Attempt, FromState: string(from), ToState: string(next),
			ProgressPercent: int32(next.Progress()), ApplicantEmail: app.Details.Applicant.Email,
		})
		return []events.Event{ev}, err
	})
	return err
}

func (a *App) onDomainFailed(ctx context.Context, m *eventsv1.DomainValidationFailed) error {
	id, err := idOf(m.Application)
	if err != nil {
		return err
	}
	_, err = a.apps.Update(ctx, m.Account, id, func(app *domain.Application) ([]events.Event, error) {
		now := a.now()
		from := app.State
		if err := app.DomainFailed(int(m.Attempt), m.Challenge, m.Domain, m.Cause, now); err != nil {
			return nil, stale(err)
		}
		ev, err := a.event(events.ApplicationFailed, id, now, &eventsv1.ApplicationFailed{
			Account: m.Account, Application: m.Application, Attempt: m.Attempt, FromState: string(from),
			Cause: app.FailureCause, ApplicantEmail: app.Details.Applicant.Email,
		})
		return []events.Event{ev}, err
	})
	return err
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

func (a *App) requestIssuance(ctx context.Context, m *eventsv1.ApplicationStateChanged) error {
	id, err := idOf(m.Application)
	if err != nil {
		return err
	}
	rec, err := a.apps.Get(ctx, m.Account, id)
	if err != nil {
		return err
	}
	app := rec.Doc
	if app.State != domain.PendingIssuance || app.Attempt != int(m.Attempt) {
		return nil // withdrawn or resubmitted meanwhile
	}
	_, err = a.issuer.IssueCertificate(system(ctx, m.Account), requestID(m.Application, app.Attempt), m.Application,
		app.Details.Domains, app.Details.CSR, app.Details.KeyAlgorithm)
	// The certificate-issued event moves the application on.
	return err
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
			ApplicantEmail: app.Details.Applicant.Email, Domains: app.Details.Domains,
		})
		return []events.Event{ev}, err
	})
	if err != nil {
		return err
	}
	if rec.Doc.State == domain.Issued && rec.Doc.Certificate == m.Certificate {
		// Also on redelivery: the instance call may not have happened yet.
		return a.orders.MarkInstanceIssued(system(ctx, m.Account), rec.Doc.Instance, appName, m.Certificate)
	}
	return nil
}
