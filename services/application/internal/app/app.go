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
	"github.com/certflow/certflow/pkg/audit"
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
	// SubscriptionEnd is when the instance's subscription ends: no
	// certificate is reissued or renewed after it.
	SubscriptionEnd time.Time
}

// Orders is the order service.
type Orders interface {
	GetInstance(ctx context.Context, name string) (*Instance, error)
	BindInstance(ctx context.Context, name, application string) error
	ReleaseInstance(ctx context.Context, name, application string) error
	MarkInstanceIssued(ctx context.Context, name, application, certificate string, notAfter time.Time) error
	MarkInstanceRevoked(ctx context.Context, name, application, certificate string) error
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
	IssueCertificate(ctx context.Context, r IssueRequest) (string, error)
}

// IssueRequest is what the CA is asked to sign for an attempt.
type IssueRequest struct {
	RequestID, Application string
	Attempt                int
	Domains                []string
	CSR, KeyAlgorithm      string
	// Level is the product's validation level (DV, OV, EV).
	Level string
	// Replaces is the certificate a reissue replaces, or "".
	Replaces string
	// NotAfterLimit is the end of the subscription.
	NotAfterLimit time.Time
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
	evs, err := audit.Append(ctx, []events.Event{ev}, source, audit.ApplicationCreate, account, name(id), now)
	if err != nil {
		return nil, err
	}
	rec, _, err := a.apps.Create(ctx, id, account, app, evs...)
	return rec, err
}

// Get reads an application.
func (a *App) Get(ctx context.Context, account, id string) (*Record, error) {
	return a.apps.Get(ctx, account, id)
}

// List lists applications newest first, optionally of one state, those
// after the position after (nil: from the newest).
func (a *App) List(ctx context.Context, account string, state domain.State, after *docstore.Position, limit int64) ([]*Record, bool, error) {
	var f bson.D
	if state != "" {
		f = bson.D{{Key: "doc.state", Value: string(state)}}
	}
	return a.apps.List(ctx, account, docstore.ListOptions{Filter: f, After: after, Limit: limit})
}

// Update edits an application's details. etag, if given, must be the
// current one. An edit is refused while a submit or a withdrawal holds the
// application (domain.Claim): the submit's challenges are for the names it
// read.
func (a *App) Update(ctx context.Context, account, id, etag string, edit func(d *domain.Details)) (*Record, error) {
	return a.apps.UpdateRecord(ctx, account, id, func(r *Record) ([]events.Event, error) {
		if err := CheckEtag(r, etag); err != nil {
			return nil, err
		}
		if err := r.Doc.CheckFree("", a.now()); err != nil {
			return nil, err
		}
		d := r.Doc.Details
		edit(&d)
		if err := r.Doc.Edit(d); err != nil {
			return nil, err
		}
		return audit.Append(ctx, nil, source, audit.ApplicationUpdate, account, name(id), a.now())
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

// claimTTL bounds a claim (domain.Claim) whose holder died; callTimeout
// bounds the holder's calls to other services, so they end before the
// claim does and nobody else acts meanwhile.
const (
	claimTTL    = 30 * time.Second
	callTimeout = 20 * time.Second
)

// testHook, when set by a test, is called at the named points of the use
// cases where another request could slip in (the window a race needs).
var testHook func(point string)

func hook(point string) {
	if testHook != nil {
		testHook(point)
	}
}

// Submit sends the application to the CA: binds the instance, gets one
// challenge per name and moves to PENDING_DOMAIN_VERIFICATION. It first
// claims the application (domain.Claim) in a write guarded by its version,
// so concurrent submits, edits and withdrawals have one winner: the others
// are refused with Aborted and told to retry. The challenges are made for
// the names of the claimed version, and the final write applies the submit
// only to that same version (compare-and-swap on the revision). A failure
// part-way undoes, still under the claim, what this submit did.
func (a *App) Submit(ctx context.Context, account, id string) (*Record, error) {
	if err := a.checkDocuments(ctx, account, id); err != nil {
		return nil, err
	}
	token := docstore.NewID()
	var attempt int
	rec, err := a.apps.Update(ctx, account, id, func(app *domain.Application) ([]events.Event, error) {
		now := a.now()
		if err := app.CheckSubmittable(); err != nil {
			return nil, err
		}
		// Re-check the details: rules may have changed since the draft was saved.
		if _, err := app.Details.Normalize(app.Product); err != nil {
			return nil, err
		}
		// Checked before the instance is bound, so a refusal leaves nothing
		// half done.
		if ok, why := certpolicy.EmailDCV(now); app.Details.Method == domain.Email && !ok {
			return nil, apierr.New(apierr.FailedPrecondition, "METHOD_NOT_ALLOWED", "%s", why)
		}
		var err error
		attempt, err = app.BeginSubmit(token, now, claimTTL)
		return nil, err
	})
	if err != nil {
		return nil, err
	}
	hook("submit:claimed")
	claimed := rec.Revision
	app := rec.Doc
	// The instance is the application's only while it is between attempts
	// after a failure; otherwise this submit binds it and must release it
	// should it not go on.
	held := app.State == domain.ValidationFailed
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	challenges, flagged, err := a.submitCalls(cctx, account, id, attempt, &app)
	if err != nil {
		a.abandonSubmit(context.WithoutCancel(ctx), account, id, token, app.Instance, !held)
		return nil, err
	}
	hook("submit:challenged")
	out, err := a.apps.UpdateRecord(ctx, account, id, func(r *Record) ([]events.Event, error) {
		if r.Revision != claimed {
			// Only possible once the claim expired and another request
			// took the application: what this submit made is not its own
			// to undo any more.
			return nil, apierr.New(apierr.Aborted, "CONCURRENT_SUBMIT",
				"the submit took too long and another request changed the application meanwhile; read it again and resubmit")
		}
		app := &r.Doc
		now := a.now()
		if err := app.FinishSubmit(token, attempt, challenges, flagged, now); err != nil {
			return nil, err
		}
		evs, err := a.submitEvents(account, id, app, attempt, now)
		if err != nil {
			return nil, err
		}
		return audit.Append(ctx, evs, source, audit.ApplicationSubmit, account, name(id), now)
	})
	if err != nil && apierr.ReasonOf(err) != "CONCURRENT_SUBMIT" {
		// The claim is still this submit's unless the write went through
		// (abandonSubmit checks), so the calls can still be undone.
		a.abandonSubmit(context.WithoutCancel(ctx), account, id, token, app.Instance, !held)
	}
	return out, err
}

// submitEvents are the events of an attempt just started (a submit or a
// reissue): submitted, with the instructions, and the next state when every
// name came back already verified.
func (a *App) submitEvents(account, id string, app *domain.Application, attempt int, now time.Time) ([]events.Event, error) {
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
}

// checkDocuments refuses to submit an OV/EV application without
// qualification documents, before anything is claimed or bound. (They are
// the verification service's, not part of the application document.)
func (a *App) checkDocuments(ctx context.Context, account, id string) error {
	rec, err := a.apps.Get(ctx, account, id)
	if err != nil || rec.Doc.Product.Level == domain.DV {
		return err
	}
	n, err := a.verifier.CountDocuments(system(ctx, account), name(id))
	if err != nil {
		return err
	}
	if n == 0 {
		return apierr.New(apierr.FailedPrecondition, "DOCUMENTS_REQUIRED",
			"%s certificates need the organization's qualification documents: upload at least one PNG or JPEG image (at most 500 KB) with POST /v1/%s/documents, then submit", rec.Doc.Product.Level, name(id))
	}
	return nil
}

// submitCalls makes a claimed submit's calls to other services for app as
// claimed: the binding and the challenges.
func (a *App) submitCalls(ctx context.Context, account, id string, attempt int, app *domain.Application) ([]domain.Challenge, []string, error) {
	sctx := system(ctx, account)
	// A failed reissue submitted again: the instance is bound and holds the
	// current certificate already.
	if app.ReissueOf == "" {
		if err := a.orders.BindInstance(sctx, app.Instance, name(id)); err != nil {
			return nil, nil, err
		}
	}
	challenges, err := a.verifier.CreateChallenges(sctx, name(id), attempt, app.Details.Domains, app.Details.Method, app.Details.ApproverMailbox)
	if err != nil {
		return nil, nil, err
	}
	return challenges, domain.FlaggedWords(app.Details.Domains, a.reviewWords), nil
}

// abandonSubmit undoes a failed submit while token still holds the
// application: nobody else can have bound the instance or made challenges
// meanwhile, so cancelling the application's pending challenges and
// releasing the instance (if the submit bound it) touch only its own.
// Then the claim ends.
func (a *App) abandonSubmit(ctx context.Context, account, id, token, instance string, release bool) {
	rec, err := a.apps.Get(ctx, account, id)
	if err != nil || !rec.Doc.Holds(token, a.now()) {
		return
	}
	cctx, cancel := context.WithDeadline(ctx, a.callDeadline(rec.Doc.Claim))
	defer cancel()
	sctx := system(cctx, account)
	if err := a.verifier.CancelChallenges(sctx, name(id)); err != nil {
		a.log.Warn("abandoned submit: challenges not cancelled", "application", id, "err", err)
	}
	if release {
		if err := a.orders.ReleaseInstance(sctx, instance, name(id)); err != nil {
			a.log.Warn("abandoned submit: instance not released", "application", id, "err", err)
		}
	}
	a.endClaim(ctx, account, id, token)
}

// callDeadline is when a claim's holder must have stopped calling other
// services: callTimeout from now, and never later than callTimeout after
// the claim was taken or renewed (claimTTL - callTimeout before it ends).
func (a *App) callDeadline(c *domain.Claim) time.Time {
	left := c.Until.Sub(a.now()) - (claimTTL - callTimeout)
	return time.Now().Add(min(left, callTimeout))
}

func (a *App) endClaim(ctx context.Context, account, id, token string) *Record {
	rec, err := a.apps.Update(ctx, account, id, func(app *domain.Application) ([]events.Event, error) {
		if !app.EndClaim(token) {
			return nil, docstore.ErrUnchanged
		}
		return nil, nil
	})
	if err != nil {
		a.log.Warn("claim not ended; it expires", "application", id, "err", err)
		return nil
	}
	return rec
}

// Withdraw cancels the application before issuance. The same write claims
// it (domain.Claim) until the challenges and reviews are cancelled and the
// instance released, so no submit can bind the instance before that
// release. Should this process fail or stop first, the handler of the
// withdrawn event finishes the release.
func (a *App) Withdraw(ctx context.Context, account, id string) (*Record, error) {
	token := docstore.NewID()
	var from domain.State
	rec, err := a.apps.Update(ctx, account, id, func(app *domain.Application) ([]events.Event, error) {
		now := a.now()
		from = app.State
		if err := app.BeginWithdraw(token, now, claimTTL); err != nil {
			return nil, err
		}
		ev, err := a.event(events.ApplicationWithdrawn, id, now, &eventsv1.ApplicationWithdrawn{
			Account: account, Application: name(id), Attempt: int32(app.Attempt), FromState: string(from), ApplicantEmail: app.Details.Applicant.Email,
		})
		if err != nil {
			return nil, err
		}
		return audit.Append(ctx, []events.Event{ev}, source, audit.ApplicationWithdraw, account, name(id), now)
	})
	if err != nil {
		return nil, err
	}
	hook("withdraw:claimed")
	if done, err := a.release(context.WithoutCancel(ctx), account, id, token, rec); err != nil {
		a.log.Warn("withdraw side effects deferred to the event handler", "application", id, "err", err)
	} else if done != nil {
		rec = done
	}
	return rec, nil
}

// release carries out a withdrawal held by token and ends the claim.
func (a *App) release(ctx context.Context, account, id, token string, rec *Record) (*Record, error) {
	cctx, cancel := context.WithDeadline(ctx, a.callDeadline(rec.Doc.Claim))
	defer cancel()
	if err := a.afterWithdraw(cctx, account, id, rec.Doc.Instance); err != nil {
		return nil, err
	}
	return a.endClaim(ctx, account, id, token), nil
}

// finishWithdrawal is the withdrawn event's handler: it finishes a release
// that the withdrawal's own request did not (see Withdraw).
func (a *App) finishWithdrawal(ctx context.Context, account, id string, attempt int) error {
	token := docstore.NewID()
	var rec *Record
	var err error
	// The event usually arrives while the withdrawal's own request is
	// still releasing (a few milliseconds): wait a little for it rather
	// than fail the delivery.
	for wait := time.Now().Add(2 * time.Second); ; {
		rec, err = a.apps.Update(ctx, account, id, func(app *domain.Application) ([]events.Event, error) {
			return nil, stale(app.TakeOverRelease(attempt, token, a.now(), claimTTL))
		})
		if apierr.ReasonOf(err) != "APPLICATION_BUSY" || time.Now().After(wait) {
			break
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	if err != nil {
		return err // still held: redelivered later
	}
	if rec.Doc.Claim == nil || rec.Doc.Claim.Token != token {
		return nil // released already, or resubmitted since
	}
	_, err = a.release(ctx, account, id, token, rec)
	return err
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (a *App) afterWithdraw(ctx context.Context, account, id, instance string) error {
	sctx := system(ctx, account)
	if err := a.verifier.CancelChallenges(sctx, name(id)); err != nil {
		return fmt.Errorf("cancel challenges: %w", err)
	}
	if err := a.reviews.CancelReviews(sctx, name(id)); err != nil {
		return fmt.Errorf("cancel reviews: %w", err)
	}
	hook("withdraw:released")
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
