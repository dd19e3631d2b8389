// Package app is the application service's use cases. It drives the
// lifecycle: it calls the order, verification and issuance services and
// moves the application when their events arrive. Side effects that must
// happen after a state change (issue the certificate, release the instance,
// cancel challenges) are driven by the application's own events, so a
// crash between the write and the call only delays them.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/certpolicy"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/services/application/internal/domain"
)

const source = "//certflow/application"

// Record is a stored application.
type Record = docstore.Record[domain.Application]

// Applications is the application repository.
type Applications interface {
	Create(ctx context.Context, id, account string, doc domain.Application, evs ...events.Event) (*Record, bool, error)
	Get(ctx context.Context, account, id string) (*Record, error)
	Update(ctx context.Context, account, id string, fn docstore.Mutation[domain.Application]) (*Record, error)
	UpdateRecord(ctx context.Context, account, id string, fn func(r *Record) ([]events.Event, error)) (*Record, error)
	List(ctx context.Context, account string, o docstore.ListOptions) ([]*Record, bool, error)
}

// Instance is what the order service says of an instance.
type Instance struct {
	State       string
	Application string
	Product     domain.Product
}

// Orders is the order service.
type Orders interface {
	GetInstance(ctx context.Context, name string) (*Instance, error)
	BindInstance(ctx context.Context, name, application string) error
	ReleaseInstance(ctx context.Context, name, application string) error
	MarkInstanceIssued(ctx context.Context, name, application, certificate string) error
}

// Verifier is the verification service.
type Verifier interface {
	CreateChallenges(ctx context.Context, application string, attempt int, domains []string, m domain.Method, mailbox string) ([]domain.Challenge, error)
	CancelChallenges(ctx context.Context, application string) error
	CountDocuments(ctx context.Context, application string) (int, error)
	CheckCAA(ctx context.Context, domains []string) (CAAResult, error)
}

// CAAResult is the CAA verdict for an application's names.
type CAAResult struct {
	Allowed      bool
	LookupFailed bool
	Domain       string
	Reason       string
}

// ReviewRequest opens a review in the CA staff's queue.
type ReviewRequest struct {
	Kind         domain.ReviewKind
	Application  string
	Attempt      int
	Level        domain.Level
	Domains      []string
	FlaggedWords []string
	Applicant    domain.Applicant
	Company      domain.Company
}

// Reviews is the review queue of the verification service.
type Reviews interface {
	CreateReview(ctx context.Context, r ReviewRequest) error
	CancelReviews(ctx context.Context, application string) error
}

// Issuer is the issuance service.
type Issuer interface {
	// IssueCertificate asks the CA to sign the names validated by the
	// application's attempt. A FailedPrecondition means the CA refused (its
	// reason says why: VALIDATION_EXPIRED, CAA_FORBIDS, …); asking again
	// will not change that.
	IssueCertificate(ctx context.Context, requestID, application string, attempt int, domains []string, csr, keyAlgorithm string) (string, error)
}

// App runs the use cases.
type App struct {
	apps           Applications
	templates      Templates
	orders         Orders
	verifier       Verifier
	reviews        Reviews
	issuer         Issuer
	reviewWords    []string
	caaRetryWindow time.Duration
	now            func() time.Time
	log            *slog.Logger
}

// Deps are the App's collaborators.
type Deps struct {
	Applications Applications
	Templates    Templates
	Orders       Orders
	Verifier     Verifier
	Reviews      Reviews
	Issuer       Issuer
	// ReviewWords send names holding them to manual review.
	ReviewWords []string
	// CAARetryWindow bounds retries of failing CAA lookups (default
	// DefaultCAARetryWindow).
	CAARetryWindow time.Duration
	Now            func() time.Time
	Log            *slog.Logger
}

// New returns the use cases.
func New(d Deps) *App {
	if d.CAARetryWindow == 0 {
		d.CAARetryWindow = DefaultCAARetryWindow
	}
	return &App{apps: d.Applications, templates: d.Templates, orders: d.Orders, verifier: d.Verifier, reviews: d.Reviews,
		issuer: d.Issuer, reviewWords: d.ReviewWords, caaRetryWindow: d.CAARetryWindow, now: d.Now, log: d.Log}
}

func name(id string) string { return "applications/" + id }

// Now is the service's clock.
func (a *App) Now() time.Time { return a.now() }

// system returns ctx acting for account, for calls made by the service on
// its own (event handlers) or on the customer's behalf.
func system(ctx context.Context, account string) context.Context {
	if p, ok := auth.From(ctx); ok && p.Account == account {
		return ctx
	}
	return auth.With(ctx, auth.Principal{Account: account, Role: auth.System})
}

// Create makes a DRAFT with an unused instance of the account. A template
// (its id, or "") fills the details the request leaves empty.
func (a *App) Create(ctx context.Context, account, requestID, instance, template string, d domain.Details) (*Record, error) {
	id := docstore.NewID()
	if requestID != "" {
		id = docstore.IDFor(account, requestID)
		// A retry returns the first application even if the instance has
		// since been bound to it.
		if rec, err := a.apps.Get(ctx, account, id); err == nil {
			return rec, nil
		}
	}
	if template != "" {
		t, err := a.templates.Get(ctx, account, template)
		if err != nil {
			return nil, err
		}
		d = t.Doc.Details.Fill(d)
	}
	in, err := a.orders.GetInstance(system(ctx, account), instance)
	if err != nil {
		return nil, err
	}
	if in.State != "PENDING_APPLICATION" {
		return nil, apierr.New(apierr.FailedPrecondition, "INSTANCE_NOT_AVAILABLE",
			"instance %s is %s, not PENDING_APPLICATION; use an unused instance (GET /v1/instances?filter=state=PENDING_APPLICATION)", instance, in.State).
			WithMeta("state", in.State)
	}
	now := a.now()
	app, err := domain.New(instance, in.Product, d, now)
	if err != nil {
		return nil, err
	}
	ev, err := a.event(events.ApplicationCreated, id, now, &eventsv1.ApplicationCreated{
		Account: account, Application: name(id), Instance: instance, Domains: app.Details.Domains, ApplicantEmail: app.Details.Applicant.Email,
	})
	if err != nil {
		return nil, err
	}
	rec, _, err := a.apps.Create(ctx, id, account, app, ev)
	return rec, err
}

// Get reads an application.
func (a *App) Get(ctx context.Context, account, id string) (*Record, error) {
	return a.apps.Get(ctx, account, id)
}

// List lists applications newest first, optionally of one state.
func (a *App) List(ctx context.Context, account string, state domain.State, offset, limit int64) ([]*Record, bool, error) {
	var f bson.D
	if state != "" {
		f = bson.D{{Key: "doc.state", Value: string(state)}}
	}
	return a.apps.List(ctx, account, docstore.ListOptions{Filter: f, Offset: offset, Limit: limit})
}

// Update edits an application's details. etag, if given, must be the
// current one.
func (a *App) Update(ctx context.Context, account, id, etag string, edit func(d *domain.Details)) (*Record, error) {
	return a.apps.UpdateRecord(ctx, account, id, func(r *Record) ([]events.Event, error) {
		if err := CheckEtag(r, etag); err != nil {
			return nil, err
		}
		d := r.Doc.Details
		edit(&d)
		return nil, r.Doc.Edit(d)
	})
}

// CheckEtag returns an Aborted error unless etag is empty or rec's.
func CheckEtag(rec *Record, etag string) error {
	if etag != "" && etag != Etag(rec) {
		return apierr.New(apierr.Aborted, "ETAG_MISMATCH", "the application changed since you read it (etag %s, now %s); read it again and reapply your change", etag, Etag(rec))
	}
	return nil
}

// Etag is the application's current etag.
func Etag(rec *Record) string { return strconv.FormatInt(rec.Revision, 10) }

// Submit sends the application to the CA: binds the instance, gets one
// challenge per name and moves to PENDING_DOMAIN_VERIFICATION. Each call it
// makes is idempotent, so a retry after a failure part-way completes it.
func (a *App) Submit(ctx context.Context, account, id string) (*Record, error) {
	rec, err := a.apps.Get(ctx, account, id)
	if err != nil {
		return nil, err
	}
	app := rec.Doc
	if err := app.CheckSubmittable(); err != nil {
		return nil, err
	}
	// Re-check the details: rules may have changed since the draft was saved.
	if _, err := app.Details.Normalize(app.Product); err != nil {
		return nil, err
	}
	// Checked before the instance is bound, so a refusal leaves nothing
	// half done.
	if ok, why := certpolicy.EmailDCV(a.now()); app.Details.Method == domain.Email && !ok {
		return nil, apierr.New(apierr.FailedPrecondition, "METHOD_NOT_ALLOWED", "%s", why)
	}
	attempt := app.Attempt + 1
	sctx := system(ctx, account)
	if app.Product.Level != domain.DV {
		n, err := a.verifier.CountDocuments(sctx, name(id))
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, apierr.New(apierr.FailedPrecondition, "DOCUMENTS_REQUIRED",
				"%s certificates need the organization's qualification documents: upload at least one PNG or JPEG image (at most 500 KB) with POST /v1/%s/documents, then submit", app.Product.Level, name(id))
		}
	}
	if err := a.orders.BindInstance(sctx, app.Instance, name(id)); err != nil {
		return nil, err
	}
	challenges, err := a.verifier.CreateChallenges(sctx, name(id), attempt, app.Details.Domains, app.Details.Method, app.Details.ApproverMailbox)
	if err != nil {
		return nil, err
	}
	flagged := domain.FlaggedWords(app.Details.Domains, a.reviewWords)
	return a.apps.Update(ctx, account, id, func(app *domain.Application) ([]events.Event, error) {
		now := a.now()
		if err := app.Submit(attempt, challenges, flagged, now); err != nil {
			return nil, err
		}
		msg := &eventsv1.ApplicationSubmitted{
			Account: account, Application: name(id), Instance: app.Instance, Attempt: int32(attempt),
			Domains: app.Details.Domains, ValidationLevel: string(app.Product.Level), ApplicantEmail: app.Details.Applicant.Email,
			ApplicantPhone: app.Details.Applicant.Phone, ExpectedIssueTime: timestamppb.New(app.ExpectedIssueTime),
			Warnings: Warnings(app, now),
		}
		for _, c := range app.Challenges {
			msg.Challenges = append(msg.Challenges, &eventsv1.ChallengeInstructions{
				Challenge: c.Name, Domain: c.Domain, Method: string(c.Method),
				DnsRecordName: c.RecordName, DnsRecordType: c.RecordType, DnsRecordValue: c.RecordValue,
				HttpUrl: c.HTTPURL, HttpContent: c.HTTPContent, ExpireTime: timestamppb.New(c.ExpireTime), EmailAddress: c.EmailAddress,
			})
		}
		ev, err := a.event(events.ApplicationSubmitted, id, now, msg)
		if err != nil {
			return nil, err
		}
		evs := []events.Event{ev}
		if next := app.Advance(now); next != "" {
			moved, err := a.event(events.ApplicationStateChanged, id, now, &eventsv1.ApplicationStateChanged{
				Account: account, Application: name(id), Attempt: int32(attempt), FromState: string(domain.PendingDomainVerification),
				ToState: string(next), ProgressPercent: int32(next.Progress()), ApplicantEmail: app.Details.Applicant.Email,
				ApplicantPhone: app.Details.Applicant.Phone, CompanyPhone: app.Details.Company.Phone,
			})
			if err != nil {
				return nil, err
			}
			evs = append(evs, moved)
		}
		return evs, nil
	})
}

// Withdraw cancels the application before issuance. The instance is
// released and the challenges cancelled here and, should this process stop
// first, by the handler of the withdrawn event.
func (a *App) Withdraw(ctx context.Context, account, id string) (*Record, error) {
	var from domain.State
	rec, err := a.apps.Update(ctx, account, id, func(app *domain.Application) ([]events.Event, error) {
		now := a.now()
		from = app.State
		if err := app.Withdraw(now); err != nil {
			return nil, err
		}
		ev, err := a.event(events.ApplicationWithdrawn, id, now, &eventsv1.ApplicationWithdrawn{
			Account: account, Application: name(id), Attempt: int32(app.Attempt), FromState: string(from), ApplicantEmail: app.Details.Applicant.Email,
		})
		return []events.Event{ev}, err
	})
	if err != nil {
		return nil, err
	}
	if err := a.afterWithdraw(ctx, account, id, rec.Doc.Instance); err != nil {
		a.log.Warn("withdraw side effects deferred to the event handler", "application", id, "err", err)
	}
	return rec, nil
}

func (a *App) afterWithdraw(ctx context.Context, account, id, instance string) error {
	sctx := system(ctx, account)
	if err := a.verifier.CancelChallenges(sctx, name(id)); err != nil {
		return fmt.Errorf("cancel challenges: %w", err)
	}
	if err := a.reviews.CancelReviews(sctx, name(id)); err != nil {
		return fmt.Errorf("cancel reviews: %w", err)
	}
	if err := a.orders.ReleaseInstance(sctx, instance, name(id)); err != nil {
		return fmt.Errorf("release instance: %w", err)
	}
	return nil
}

// event stamps an application event.
func (a *App) event(typ, id string, now time.Time, msg proto.Message) (events.Event, error) {
	return events.Stamp(typ, source, name(id), now, msg)
}

// idOf returns the id of an application name in an event.
func idOf(application string) (string, error) {
	id, ok := strings.CutPrefix(application, "applications/")
	if !ok || id == "" {
		return "", events.Permanent(fmt.Errorf("bad application name %q", application))
	}
	return id, nil
}

// stale turns "this event does not apply" into "done".
func stale(err error) error {
	if errors.Is(err, domain.ErrStale) {
		return docstore.ErrUnchanged
	}
	return err
}

// Warnings are what the customer should know about the application now,
// such as the Baseline Requirements phasing out email validation.
func Warnings(app *domain.Application, now time.Time) []string {
	if app.Details.Method != domain.Email {
		return nil
	}
	if _, w := certpolicy.EmailDCV(now); w != "" {
		return []string{w}
	}
	return nil
}
