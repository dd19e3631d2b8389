// Package app is the verification service's use cases: issue challenges,
// check them (on a schedule and on demand), cancel them, and publish the
// outcome.
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
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/certpolicy"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/services/verification/internal/caa"
	"github.com/certflow/certflow/services/verification/internal/domain"
)

const source = "//certflow/verification"

// Challenges is the challenge repository.
type Challenges interface {
	Create(ctx context.Context, id, account string, doc domain.Challenge, evs ...events.Event) (*docstore.Record[domain.Challenge], bool, error)
	Get(ctx context.Context, account, id string) (*docstore.Record[domain.Challenge], error)
	Update(ctx context.Context, account, id string, fn docstore.Mutation[domain.Challenge]) (*docstore.Record[domain.Challenge], error)
	// List is for an account's listing across applications only; an
	// application's challenges are found through its ChallengeIndex.
	List(ctx context.Context, account string, o docstore.ListOptions) ([]*docstore.Record[domain.Challenge], bool, error)
}

// Prover looks for a challenge's proof in the outside world: nil when found.
type Prover interface {
	Prove(ctx context.Context, c *domain.Challenge) error
}

// Validations is the repository of each account's latest validation of each
// name (see reuse.go), read and written by _id only.
type Validations interface {
	Get(ctx context.Context, account, id string) (*docstore.Record[domain.Validation], error)
	Upsert(ctx context.Context, id, account string, doc domain.Validation, merge func(cur *domain.Validation) bool) (*docstore.Record[domain.Validation], error)
}

// Mailer hands an EMAIL challenge's code to whoever mails it (the
// notification service, over an authenticated call): the code goes nowhere
// else, never into an event.
type Mailer interface {
	SendDomainValidationEmail(ctx context.Context, account string, m ValidationEmail) error
}

// ValidationEmail is one mail of an EMAIL challenge's code.
type ValidationEmail struct {
	// RequestID is "challenges/<id>/emails/<n>" for the n-th code: a retry
	// of the same mail is the same request, a new code a new one.
	RequestID   string
	Challenge   string // challenges/{id}
	Application string
	Domain      string
	Recipient   string
	Code        string
	ExpireTime  time.Time
}

// Corroborator asks the remote perspectives to repeat a check that passed
// here (BR 3.2.2.9; mpic.Corroborator). The results come back whatever the
// decision; the error says why they do not corroborate.
type Corroborator interface {
	Challenge(ctx context.Context, c *domain.Challenge) ([]domain.PerspectiveResult, error)
	CAA(ctx context.Context, q caa.Query) ([]domain.PerspectiveResult, error)
}

// App runs the use cases.
type App struct {
	store       Challenges
	indexes     ChallengeIndexes
	due         DueChallenges
	validations Validations
	prover      Prover
	mpic        Corroborator
	caa         CAAChecker
	mailer      Mailer
	policy      domain.Policy
	now         func() time.Time
	log         *slog.Logger
}

// New returns the use cases. indexes find each application's challenges
// (index.go); due finds what the sweep checks (IndexedDue,
// or the store itself when it is a QueuedChallenges); mailer sends EMAIL
// challenges' codes; caa decides CAA when the CA asks to sign
// (issuance.go); mpic corroborates every DNS or HTTP proof and CAA
// decision from the remote perspectives.
func New(store Challenges, indexes ChallengeIndexes, due DueChallenges, validations Validations, prover Prover, mpic Corroborator, mailer Mailer, caa CAAChecker, policy domain.Policy, now func() time.Time, log *slog.Logger) *App {
	return &App{store: store, indexes: indexes, due: due, validations: validations, prover: prover, mpic: mpic, mailer: mailer, caa: caa, policy: policy, now: now, log: log}
}

// Policy returns the challenge policy.
func (a *App) Policy() domain.Policy { return a.policy }

// ChallengeID is the id of the challenge for one name of one attempt, so a
// retried CreateChallenges finds the ones it made.
func ChallengeID(account, application string, attempt int, name string) string {
	return docstore.IDFor(account, application+"/attempts/"+strconv.Itoa(attempt)+"/"+name)
}

// CreateRequest asks for one challenge per name of an application's attempt.
type CreateRequest struct {
	Application string
	Attempt     int
	Names       []string
	Method      domain.Method
	// EmailLocalPart is the constructed mailbox for EMAIL ("" means admin).
	EmailLocalPart string
}

// Create issues one challenge per name. A name the account validated
// recently enough is satisfied at once by that validation (reuse.go).
// Retrying returns the challenges made the first time: their ids are
// derived from the request.
//
// For EMAIL, the code is handed to the Mailer once the challenge (with the
// code's hash only) is written, and a DomainEmailChallenge event without the
// code announces it when the mail was accepted. If the mail cannot be handed
// over, Create fails (Unavailable) and a retry makes a new code for the
// challenge and sends that: a code nobody received is never left standing,
// and a code already accepted for delivery is never replaced.
func (a *App) Create(ctx context.Context, account string, req CreateRequest) ([]*docstore.Record[domain.Challenge], error) {
	if len(req.Names) == 0 {
		return nil, apierr.Invalid("domains", "MISSING_FIELD", "at least one domain is required")
	}
	now := a.now()
	var warning string
	if req.Method == domain.Email {
		allowed, w := certpolicy.EmailDCV(now)
		if !allowed {
			return nil, apierr.New(apierr.FailedPrecondition, "METHOD_NOT_ALLOWED", "%s", w).WithMeta("method", string(domain.Email))
		}
		warning = w
		if _, err := domain.EmailLocalPart(req.EmailLocalPart); err != nil {
			return nil, err
		}
	}
	tokens, err := a.sharedTokens(ctx, account, req)
	if err != nil {
		return nil, err
	}
	// Indexed first, written second (index.go).
	if err := a.indexChallenges(ctx, account, req); err != nil {
		return nil, err
	}
	var out []*docstore.Record[domain.Challenge]
	for _, n := range req.Names {
		id := ChallengeID(account, req.Application, req.Attempt, n)
		spec := domain.Spec{
			ID: id, Application: req.Application, Attempt: req.Attempt, Name: n,
			Method: req.Method, EmailLocalPart: req.EmailLocalPart,
		}
		if req.Method == domain.DNSCNAME {
			spec.Token = tokens[cnameKey(n)]
		}
		c, code, evs, err := a.newChallenge(ctx, account, spec, now)
		if err != nil {
			return nil, err
		}
		if !c.Reused {
			c.Warning = warning
		}
		rec, created, err := a.store.Create(ctx, id, account, c, evs...)
		if err != nil {
			return nil, err
		}
		if !created && rec.Doc.State == domain.Cancelled {
			if rec, created, err = a.replaceCancelled(ctx, rec, c, evs); err != nil {
				return nil, err
			}
		}
		if rec.Doc.EmailUnsent() {
			if !created {
				code = ""
			}
			if rec, err = a.mailCode(ctx, rec, code); err != nil {
				return nil, err
			}
		}
		if rec.Doc.Method == domain.DNSCNAME && rec.Doc.Token != "" {
			tokens[cnameKey(n)] = rec.Doc.Token
		}
		out = append(out, rec)
	}
	return out, nil
}

// replaceCancelled puts the new challenge c (with its events) in the place
// of a cancelled one of the same attempt, and reports whether it did. Only
// a submit abandoned part-way leaves its attempt's challenges cancelled
// while the application can still use that attempt number (a withdrawal
// comes after its attempt began, and the next submit is a new attempt), so
// its retry gets a fresh challenge rather than one nobody will check.
func (a *App) replaceCancelled(ctx context.Context, rec *docstore.Record[domain.Challenge], c domain.Challenge, evs []events.Event) (*docstore.Record[domain.Challenge], bool, error) {
	replaced := false
	got, err := a.store.Update(ctx, rec.Account, rec.ID, func(old *domain.Challenge) ([]events.Event, error) {
		if old.State != domain.Cancelled {
			return nil, docstore.ErrUnchanged
		}
		*old, replaced = c, true
		return evs, nil
	})
	return got, replaced, err
}

// newChallenge makes the challenge for one name and the events to write
// with it: a reused validation, or a new challenge (with its EMAIL code, to
// mail once the challenge is written).
func (a *App) newChallenge(ctx context.Context, account string, spec domain.Spec, now time.Time) (domain.Challenge, string, []events.Event, error) {
	c, reused, err := a.reuse(ctx, account, spec, now)
	if err != nil {
		return domain.Challenge{}, "", nil, err
	}
	if reused {
		ev, err := a.verifiedEvent(account, spec.ID, c, now)
		return c, "", []events.Event{ev}, err
	}
	c, code, err := domain.NewChallenge(spec, a.policy, now)
	return c, code, nil, err
}

// mailCode mails an EMAIL challenge's code and records that it was
// accepted, with the DomainEmailChallenge event (which has no code). With
// code "" (a retry finding a challenge whose mail never went out) it first
// replaces the code, whose hash is written before the new code is sent.
func (a *App) mailCode(ctx context.Context, rec *docstore.Record[domain.Challenge], code string) (*docstore.Record[domain.Challenge], error) {
	if code == "" {
		var err error
		rec, err = a.store.Update(ctx, rec.Account, rec.ID, func(c *domain.Challenge) ([]events.Event, error) {
			if code = c.NewEmailCode(); code == "" {
				return nil, docstore.ErrUnchanged
			}
			return nil, nil
		})
		if err != nil {
			return nil, err
		}
		if code == "" {
			// Sent meanwhile by a concurrent retry: nothing to do.
			return rec, nil
		}
	}
	subject := "challenges/" + rec.ID
	c := rec.Doc
	codes := c.EmailCodes
	err := a.mailer.SendDomainValidationEmail(ctx, rec.Account, ValidationEmail{
		RequestID: subject + "/emails/" + strconv.Itoa(codes), Challenge: subject, Application: c.Application,
		Domain: c.Domain, Recipient: c.EmailAddress, Code: code, ExpireTime: c.ExpireTime,
	})
	if err != nil {
		// The error is the mailer's, which never carries the code. Only
		// an unavailable mailer is worth a retry; anything else is ours.
		kind := apierr.Unavailable
		if apierr.KindOf(err) != apierr.Unavailable {
			kind = apierr.Internal
		}
		return nil, apierr.Wrap(err, kind, "EMAIL_NOT_SENT",
			"the validation email to %s could not be sent; submit again to send a new code", c.EmailAddress)
	}
	return a.store.Update(ctx, rec.Account, rec.ID, func(c *domain.Challenge) ([]events.Event, error) {
		now := a.now()
		if !c.MarkEmailSent(codes, now) {
			return nil, docstore.ErrUnchanged
		}
		ev, err := events.Stamp(events.DomainEmailChallenge, source, subject, now, &eventsv1.DomainEmailChallenge{
			Account: rec.Account, Challenge: subject, Application: c.Application, Domain: c.Domain,
			Recipient: c.EmailAddress, ExpireTime: timestamppb.New(c.ExpireTime),
		})
		if err != nil {
			return nil, err
		}
		return []events.Event{ev}, nil
	})
}

// sharedTokens gives DNS_CNAME challenges of one request that share a record
// owner (a name and its wildcard) the same token, so one CNAME satisfies
// both: a name can have only one CNAME. Tokens of challenges a retried
// request already made are reused, in whatever order the names come.
func (a *App) sharedTokens(ctx context.Context, account string, req CreateRequest) (map[string]string, error) {
	tokens := map[string]string{}
	if req.Method != domain.DNSCNAME {
		return tokens, nil
	}
	for _, n := range req.Names {
		rec, err := a.store.Get(ctx, account, ChallengeID(account, req.Application, req.Attempt, n))
		if errors.Is(err, apierr.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if rec.Doc.Method == domain.DNSCNAME && rec.Doc.Token != "" {
			tokens[cnameKey(n)] = rec.Doc.Token
		}
	}
	return tokens, nil
}

// cnameKey is the record owner a name's CNAME goes under, as a map key.
func cnameKey(name string) string {
	return strings.TrimPrefix(strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), "."), "*.")
}

// Get reads a challenge.
func (a *App) Get(ctx context.Context, account, id string) (*docstore.Record[domain.Challenge], error) {
	return a.store.Get(ctx, account, id)
}

// List lists challenges newest first, after a position (nil: from the
// first), optionally of one application and state. One application's are
// read through its index (by _id); the account's across applications by a
// query on the account (indexed by account and creation time on MongoDB).
func (a *App) List(ctx context.Context, account, application string, state domain.State, after *docstore.Position, limit int64) ([]*docstore.Record[domain.Challenge], bool, error) {
	if application != "" {
		return a.listIndexed(ctx, account, application, state, after, limit)
	}
	var f bson.D
	if state != "" {
		f = append(f, bson.E{Key: "doc.state", Value: string(state)})
	}
	return a.store.List(ctx, account, docstore.ListOptions{Filter: f, After: after, Limit: limit})
}

// CheckNow checks a pending challenge at once.
func (a *App) CheckNow(ctx context.Context, account, id string) (*docstore.Record[domain.Challenge], error) {
	rec, err := a.store.Get(ctx, account, id)
	if err != nil {
		return nil, err
	}
	switch rec.Doc.State {
	case domain.Pending:
		if rec.Doc.Method == domain.Email && a.now().Before(rec.Doc.ExpireTime) {
			return nil, apierr.New(apierr.FailedPrecondition, "CONFIRM_WITH_CODE",
				"challenge %s is validated by email: confirm it with the code sent to %s (ConfirmChallenge)", id, rec.Doc.EmailAddress)
		}
	case domain.Verified:
		return rec, nil
	default:
		return nil, apierr.New(apierr.FailedPrecondition, "CHALLENGE_NOT_PENDING",
			"challenge %s is %s and cannot be checked; resubmit the application for a new challenge", id, rec.Doc.State)
	}
	got, err := a.check(ctx, rec)
	if err != nil {
		return nil, err
	}
	if got.Doc.State == domain.Failed && got.Doc.Expired(a.now()) {
		// The proof may well be there now; it came too late.
		return nil, apierr.New(apierr.FailedPrecondition, "CHALLENGE_EXPIRED",
			"challenge %s expired at %s and no longer accepts a proof; edit and resubmit the application for a new challenge",
			id, got.Doc.ExpireTime.Format(time.RFC3339)).WithMeta("expire_time", got.Doc.ExpireTime.Format(time.RFC3339))
	}
	return got, nil
}

// check proves a challenge outside any lock (it does network I/O) and then
// records the result if the challenge is still pending. EMAIL challenges are
// not proven by looking: they are only failed at expiry.
func (a *App) check(ctx context.Context, rec *docstore.Record[domain.Challenge]) (*docstore.Record[domain.Challenge], error) {
	c := rec.Doc
	var (
		proofErr     error
		perspectives []domain.PerspectiveResult
	)
	// An expired challenge is not looked at: RecordCheck expires it
	// whatever a look would find.
	switch {
	case c.Method == domain.Email:
	case c.Expired(a.now()):
		proofErr = errors.New("not looked for: the challenge had expired")
	default:
		proofErr = a.prover.Prove(ctx, &c)
		if proofErr == nil {
			// Found here: the remote perspectives must see it too.
			perspectives, proofErr = a.mpic.Challenge(ctx, &c)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	var verified bool
	got, err := a.store.Update(ctx, rec.Account, rec.ID, func(c *domain.Challenge) ([]events.Event, error) {
		now := a.now()
		if perspectives != nil && c.State == domain.Pending {
			c.Perspectives = perspectives
		}
		out := c.RecordCheck(proofErr, a.policy, now)
		verified = out == domain.BecameVerified
		return a.outcomeEvents(out, rec.Account, rec.ID, c, now)
	})
	if err != nil {
		return nil, err
	}
	if verified {
		a.remember(ctx, got)
	}
	return got, nil
}

// outcomeEvents is what a state change publishes, for a docstore mutation:
// nothing to write, a write without events, or DomainVerified /
// DomainValidationFailed.
func (a *App) outcomeEvents(out domain.Outcome, account, id string, c *domain.Challenge, now time.Time) ([]events.Event, error) {
	var ev events.Event
	var err error
	switch out {
	case domain.NotPending, domain.NoChange:
		return nil, docstore.ErrUnchanged
	case domain.StillPending:
		return nil, nil
	case domain.BecameVerified:
		ev, err = a.verifiedEvent(account, id, *c, now)
	case domain.BecameFailed:
		ev, err = events.Stamp(events.DomainFailed, source, "challenges/"+id, now, &eventsv1.DomainValidationFailed{
			Account: account, Challenge: "challenges/" + id, Application: c.Application, Attempt: int32(c.Attempt),
			Domain: c.Domain, Method: string(c.Method), Cause: c.LastError,
		})
	default:
		return nil, fmt.Errorf("unknown outcome %d", out)
	}
	if err != nil {
		return nil, err
	}
	return []events.Event{ev}, nil
}

// verifiedEvent is DomainVerified for c. Its verify_time is when the name
// was validated: for a reused validation, the original time, which is what
// the reuse period counts from.
func (a *App) verifiedEvent(account, id string, c domain.Challenge, now time.Time) (events.Event, error) {
	at := c.VerifyTime
	if c.Reused {
		at = c.ValidationTime
	}
	return events.Stamp(events.DomainVerified, source, "challenges/"+id, now, &eventsv1.DomainVerified{
		Account: account, Challenge: "challenges/" + id, Application: c.Application, Attempt: int32(c.Attempt),
		Domain: c.Domain, Method: string(c.Method), VerifyTime: timestamppb.New(at),
		RuleVersion: c.RuleVersion, Reused: c.Reused,
	})
}

// Cancel cancels an application's pending challenges and returns all of
// its challenges, found through its index.
func (a *App) Cancel(ctx context.Context, account, application string) ([]*docstore.Record[domain.Challenge], error) {
	recs, err := a.indexed(ctx, account, application, nil)
	if err != nil {
		return nil, err
	}
	out := make([]*docstore.Record[domain.Challenge], 0, len(recs))
	for _, r := range recs {
		if r.Doc.State != domain.Pending {
			out = append(out, r) // final: nothing to write
			continue
		}
		got, err := a.store.Update(ctx, account, r.ID, func(c *domain.Challenge) ([]events.Event, error) {
			now := a.now()
			if !c.Cancel(now) {
				return nil, docstore.ErrUnchanged
			}
			ev, err := events.Stamp(events.ChallengeCancelled, source, "challenges/"+r.ID, now, &eventsv1.ChallengeCancelled{
				Account: account, Challenge: "challenges/" + r.ID, Application: application, Attempt: int32(c.Attempt), Domain: c.Domain,
			})
			if err != nil {
				return nil, err
			}
			return []events.Event{ev}, nil
		})
		if err != nil {
			return nil, err
		}
		out = append(out, got)
	}
	return out, nil
}

// sweepBatch is how many due challenges one sweep checks at most.
const sweepBatch = 200

// Sweep checks every due challenge once (at most sweepBatch), with at most
// parallel checks at a time, and returns how many it checked. What it reads
// is the due challenges only (DueChallenges), not the collection.
func (a *App) Sweep(ctx context.Context, parallel int) (int, error) {
	now := a.now().UTC()
	due, err := a.due.Due(ctx, now, sweepBatch)
	if err != nil {
		return 0, fmt.Errorf("find due challenges: %w", err)
	}
	sem := make(chan struct{}, max(parallel, 1))
	done := make(chan struct{}, len(due))
	for _, rec := range due {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; done <- struct{}{} }()
			if _, err := a.check(ctx, rec); err != nil && !errors.Is(err, context.Canceled) {
				a.log.Warn("challenge check failed", "challenge", rec.ID, "err", err)
			}
		}()
	}
	for range due {
		<-done
	}
	return len(due), nil
}

// RunWorker sweeps every interval until ctx is done.
func (a *App) RunWorker(ctx context.Context, interval time.Duration, parallel int) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := a.Sweep(ctx, parallel); err != nil && ctx.Err() == nil {
			a.log.Warn("challenge sweep failed; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
