package orgapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/audit"
	"github.com/certflow/certflow/pkg/certpolicy"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/services/verification/internal/orgval"
)

// ReviewStore keeps reviews.
type ReviewStore interface {
	Create(ctx context.Context, id, account string, doc orgval.Review, evs ...events.Event) (*docstore.Record[orgval.Review], bool, error)
	Get(ctx context.Context, account, id string) (*docstore.Record[orgval.Review], error)
	UpdateRecord(ctx context.Context, account, id string, fn func(r *docstore.Record[orgval.Review]) ([]events.Event, error)) (*docstore.Record[orgval.Review], error)
	List(ctx context.Context, account string, o docstore.ListOptions) ([]*docstore.Record[orgval.Review], bool, error)
	// Queue lists reviews of every account oldest first, after a position
	// (nil: from the first).
	Queue(ctx context.Context, filter bson.D, after *docstore.Position, limit int64) ([]*docstore.Record[orgval.Review], bool, error)
}

// ReviewIndexStore keeps each account's index of each application's
// reviews, read and written by _id only.
type ReviewIndexStore interface {
	Get(ctx context.Context, account, id string) (*docstore.Record[orgval.ReviewIndex], error)
	Upsert(ctx context.Context, id, account string, doc orgval.ReviewIndex, merge func(cur *orgval.ReviewIndex) bool) (*docstore.Record[orgval.ReviewIndex], error)
}

// OrganizationStore keeps the latest approval of each account's
// organizations, by id.
type OrganizationStore interface {
	Get(ctx context.Context, account, id string) (*docstore.Record[orgval.OrganizationApproval], error)
	Upsert(ctx context.Context, id, account string, doc orgval.OrganizationApproval, merge func(cur *orgval.OrganizationApproval) bool) (*docstore.Record[orgval.OrganizationApproval], error)
}

// DocumentLister lists an application's documents.
type DocumentLister interface {
	List(ctx context.Context, account, application string) ([]orgval.ListedDocument, error)
}

// Reviews runs the review use cases.
type Reviews struct {
	store   ReviewStore
	indexes ReviewIndexStore
	orgs    OrganizationStore
	docs    DocumentLister
	now     func() time.Time
	log     *slog.Logger
}

// NewReviews returns the review use cases.
func NewReviews(store ReviewStore, indexes ReviewIndexStore, orgs OrganizationStore, docs DocumentLister, now func() time.Time, log *slog.Logger) *Reviews {
	return &Reviews{store: store, indexes: indexes, orgs: orgs, docs: docs, now: now, log: log}
}

// ReviewID is the id of the review of one kind for one application attempt,
// so a retried CreateReview finds the review it made.
func ReviewID(account, application string, attempt int, kind orgval.Kind) string {
	return docstore.IDFor(account, application+"/attempts/"+strconv.Itoa(attempt)+"/reviews/"+string(kind))
}

// ReviewIndexID is the id of the account's index of an application's
// reviews; the account is part of the id and of the record.
func ReviewIndexID(account, application string) string {
	return docstore.IDFor(account, application+"/reviews")
}

// organizationID is the id of an account's organization approval record.
func organizationID(account, key string) string {
	return docstore.IDFor(account, "organizations/"+key)
}

// Name is a review's resource name.
func Name(id string) string { return "reviews/" + id }

// Create opens a review for one of account's application attempts. An
// ORGANIZATION review of an organization the account had approved less than
// 398 days ago, with the same name and location, is approved at once by
// reuse.
func (a *Reviews) Create(ctx context.Context, account string, in orgval.Review) (*docstore.Record[orgval.Review], error) {
	now := a.now()
	r, err := orgval.NewReview(in, now)
	if err != nil {
		return nil, err
	}
	id := ReviewID(account, r.Application, r.Attempt, r.Kind)
	if rec, err := a.store.Get(ctx, account, id); err == nil {
		return rec, nil // a retry
	} else if !errors.Is(err, apierr.ErrNotFound) {
		return nil, err
	}
	if key := orgval.OrganizationKey(r.Organization.OrganizationID); r.Kind == orgval.KindOrganization && key != "" {
		prev, err := a.orgs.Get(ctx, account, organizationID(account, key))
		switch {
		case err == nil && prev.Doc.ReusableFor(r.Organization, now):
			r.ApproveByReuse(prev.Doc, now)
		case err != nil && !errors.Is(err, apierr.ErrNotFound):
			return nil, err
		}
	}
	created, err := events.Stamp(events.ReviewCreated, source, Name(id), now, &eventsv1.ReviewCreated{
		Account: account, Review: Name(id), Kind: string(r.Kind), Application: r.Application, Attempt: int32(r.Attempt),
	})
	if err != nil {
		return nil, err
	}
	evs := []events.Event{created}
	if r.State == orgval.Approved {
		ev, err := decided(account, id, &r, now)
		if err != nil {
			return nil, err
		}
		evs = append(evs, ev)
	}
	// Indexed first, written second: a crash in between leaves the index
	// naming a review that does not exist, which Cancel skips and the
	// retried CreateReview (same id) writes; never a review no index finds,
	// which Cancel would leave pending in the queue.
	ref := orgval.ReviewRef{Attempt: r.Attempt, Kind: r.Kind, ID: id}
	if _, err := a.indexes.Upsert(ctx, ReviewIndexID(account, r.Application), account,
		orgval.ReviewIndex{Application: r.Application, Reviews: []orgval.ReviewRef{ref}},
		func(cur *orgval.ReviewIndex) bool { return cur.Add(ref) }); err != nil {
		return nil, err
	}
	rec, _, err := a.store.Create(ctx, id, account, r, evs...)
	return rec, err
}

// Filter selects reviews of the queue; empty fields match everything.
type Filter struct {
	State       orgval.State
	Kind        orgval.Kind
	Application string
	Account     string
}

// Queue lists reviews of every account, oldest first, after a position
// (nil: from the first).
func (a *Reviews) Queue(ctx context.Context, f Filter, after *docstore.Position, limit int64) ([]*docstore.Record[orgval.Review], bool, error) {
	q := bson.D{}
	if f.Account != "" {
		q = append(q, bson.E{Key: "account", Value: f.Account})
	}
	if f.State != "" {
		q = append(q, bson.E{Key: "doc.state", Value: string(f.State)})
	}
	if f.Kind != "" {
		q = append(q, bson.E{Key: "doc.kind", Value: string(f.Kind)})
	}
	if f.Application != "" {
		q = append(q, bson.E{Key: "doc.application", Value: f.Application})
	}
	return a.store.Queue(ctx, q, after, limit)
}

// Get reads any account's review with its application's documents.
func (a *Reviews) Get(ctx context.Context, id string) (*docstore.Record[orgval.Review], []orgval.ListedDocument, error) {
	rec, err := a.store.Get(ctx, "", id)
	if err != nil {
		return nil, nil, err
	}
	docs, err := a.documents(ctx, rec)
	return rec, docs, err
}

// documents lists the review's application's documents: those of the
// review's account only, so nobody can slip documents into another
// account's review by naming its application.
func (a *Reviews) documents(ctx context.Context, rec *docstore.Record[orgval.Review]) ([]orgval.ListedDocument, error) {
	return a.docs.List(ctx, rec.Account, rec.Doc.Application)
}

// decide applies a reviewer's action to a review of another account, with
// its audit record in the same write.
func (a *Reviews) decide(ctx context.Context, reviewer, id, action string, act func(account string, r *orgval.Review, now time.Time) (events.Event, error)) (*docstore.Record[orgval.Review], []orgval.ListedDocument, error) {
	rec, err := a.store.UpdateRecord(ctx, "", id, func(rec *docstore.Record[orgval.Review]) ([]events.Event, error) {
		if rec.Account == reviewer {
			return nil, apierr.New(apierr.PermissionDenied, "SELF_REVIEW",
				"reviews of your own account %s must be decided by another reviewer", reviewer)
		}
		now := a.now()
		ev, err := act(rec.Account, &rec.Doc, now)
		if err != nil {
			return nil, err
		}
		return audit.Append(ctx, []events.Event{ev}, source, action, rec.Account, Name(id), now)
	})
	if err != nil {
		return nil, nil, err
	}
	docs, err := a.documents(ctx, rec)
	return rec, docs, err
}

// RecordCall records a reviewer's phone call on a pending review.
func (a *Reviews) RecordCall(ctx context.Context, reviewer, id string, call orgval.PhoneCall) (*docstore.Record[orgval.Review], []orgval.ListedDocument, error) {
	return a.decide(ctx, reviewer, id, audit.ReviewPhoneCall, func(account string, r *orgval.Review, now time.Time) (events.Event, error) {
		call.Time, call.Reviewer = now, reviewer
		if err := r.RecordCall(call); err != nil {
			return events.Event{}, err
		}
		return events.Stamp(events.PhoneCallRecorded, source, Name(id), now, &eventsv1.PhoneCallRecorded{
			Account: account, Review: Name(id), Application: r.Application, Reviewer: reviewer, Outcome: string(call.Outcome),
		})
	})
}

// Approve approves a pending review and, for an organization, keeps the
// approval for reuse.
func (a *Reviews) Approve(ctx context.Context, reviewer, id, note string) (*docstore.Record[orgval.Review], []orgval.ListedDocument, error) {
	cur, err := a.store.Get(ctx, "", id)
	if err != nil {
		return nil, nil, err
	}
	// Documents are never removed, so a count read before the update still
	// holds when the update decides.
	have, err := a.documents(ctx, cur)
	if err != nil {
		return nil, nil, err
	}
	rec, docs, err := a.decide(ctx, reviewer, id, audit.ReviewApprove, func(account string, r *orgval.Review, now time.Time) (events.Event, error) {
		if err := r.Approve(reviewer, note, len(have), now); err != nil {
			return events.Event{}, err
		}
		return decided(account, id, r, now)
	})
	if err != nil {
		return nil, nil, err
	}
	if ap, ok := rec.Doc.Approval(Name(id)); ok {
		// The approval and its event are written; losing this record only
		// means the organization's next review is not reused, so it is
		// logged rather than failing the call.
		if err := a.remember(ctx, rec.Account, ap); err != nil {
			a.log.Warn("organization approval not kept for reuse", "review", Name(id), "err", err)
		}
	}
	return rec, docs, nil
}

// remember upserts the account's organization approval.
func (a *Reviews) remember(ctx context.Context, account string, ap orgval.OrganizationApproval) error {
	_, err := a.orgs.Upsert(ctx, organizationID(account, ap.OrganizationID), account, ap, func(cur *orgval.OrganizationApproval) bool { return cur.Merge(ap) })
	return err
}

// Reject rejects a pending review with a cause for the customer.
func (a *Reviews) Reject(ctx context.Context, reviewer, id, cause string) (*docstore.Record[orgval.Review], []orgval.ListedDocument, error) {
	return a.decide(ctx, reviewer, id, audit.ReviewReject, func(account string, r *orgval.Review, now time.Time) (events.Event, error) {
		if err := r.Reject(reviewer, cause, now); err != nil {
			return events.Event{}, err
		}
		return decided(account, id, r, now)
	})
}

// Cancel cancels the pending reviews of one of account's applications and
// returns all of the application's reviews, found through its index.
func (a *Reviews) Cancel(ctx context.Context, account, application string) ([]*docstore.Record[orgval.Review], error) {
	x, err := a.indexes.Get(ctx, account, ReviewIndexID(account, application))
	if errors.Is(err, apierr.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*docstore.Record[orgval.Review]
	for _, ref := range x.Doc.Reviews {
		rec, err := a.store.UpdateRecord(ctx, account, ref.ID, func(rec *docstore.Record[orgval.Review]) ([]events.Event, error) {
			now := a.now()
			if !rec.Doc.Cancel(now) {
				return nil, docstore.ErrUnchanged
			}
			ev, err := decided(account, rec.ID, &rec.Doc, now)
			if err != nil {
				return nil, err
			}
			return []events.Event{ev}, nil
		})
		if errors.Is(err, apierr.ErrNotFound) {
			continue // indexed, then not written (Create)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// IndexFinder reads the whole review collection, for BuildReviewIndexes.
type IndexFinder interface {
	Find(ctx context.Context, filter bson.D, limit int64) ([]*docstore.Record[orgval.Review], error)
}

// reviewIndexesBuilt marks, in the index collection, that every review
// written before review indexes existed has been indexed.
const reviewIndexesBuilt = "migrations/review-indexes-v1"

// BuildReviewIndexes indexes the reviews of a database written before
// review indexes existed: one read of the collection, once, at start,
// before anything is served; the mark is written last, so a crash midway
// builds again (merging is idempotent).
func BuildReviewIndexes(ctx context.Context, store IndexFinder, indexes ReviewIndexStore) error {
	if _, err := indexes.Get(ctx, "", reviewIndexesBuilt); err == nil {
		return nil
	} else if !errors.Is(err, apierr.ErrNotFound) {
		return err
	}
	recs, err := store.Find(ctx, bson.D{}, 0)
	if err != nil {
		return fmt.Errorf("read reviews to index: %w", err)
	}
	for _, r := range recs {
		ref := orgval.ReviewRef{Attempt: r.Doc.Attempt, Kind: r.Doc.Kind, ID: r.ID}
		if _, err := indexes.Upsert(ctx, ReviewIndexID(r.Account, r.Doc.Application), r.Account,
			orgval.ReviewIndex{Application: r.Doc.Application, Reviews: []orgval.ReviewRef{ref}},
			func(cur *orgval.ReviewIndex) bool { return cur.Add(ref) }); err != nil {
			return fmt.Errorf("index review %s: %w", r.ID, err)
		}
	}
	_, err = indexes.Upsert(ctx, reviewIndexesBuilt, "", orgval.ReviewIndex{}, func(*orgval.ReviewIndex) bool { return false })
	return err
}

// decided is the ReviewDecided event of a review that just reached a final
// state, on the subject of that state.
func decided(account, id string, r *orgval.Review, now time.Time) (events.Event, error) {
	var typ string
	switch r.State {
	case orgval.Approved:
		typ = events.ReviewApproved
	case orgval.Rejected:
		typ = events.ReviewRejected
	case orgval.Cancelled:
		typ = events.ReviewCancelled
	default:
		return events.Event{}, errors.New("review " + id + " is not decided")
	}
	return events.Stamp(typ, source, Name(id), now, &eventsv1.ReviewDecided{
		Account: account, Review: Name(id), Kind: string(r.Kind), Application: r.Application, Attempt: int32(r.Attempt),
		State: string(r.State), Reviewer: r.Reviewer, Cause: r.Cause, Reused: r.Reused,
	})
}

// Approved is the organization the CA staff approved for an application
// attempt: what an OV or EV certificate's subject is made from.
type Approved struct {
	// Review names the review whose reviewer validated the organization;
	// for an approval by reuse, the earlier review that was reused.
	Review          string
	ValidationLevel string
	Organization    orgval.Organization
	ApproveTime     time.Time
}

// ApprovedOrganization returns the organization approved for one of
// account's application attempts as it stood when the reviewer approved it,
// judged at now: nil when the attempt has no ORGANIZATION review (a DV
// application), a FailedPrecondition ORGANIZATION_NOT_APPROVED when its
// review is not approved, ORGANIZATION_VALIDATION_EXPIRED when the approval
// is older than the 398 days organization data may be reused (BR 4.2.1).
//
// The review holds the organization as declared when it was opened; the
// customer's later edits go to a new attempt with a new review, so they never
// reach a certificate that rests on this one. An approval by reuse stands on
// the earlier review's organization, which is read instead.
func (a *Reviews) ApprovedOrganization(ctx context.Context, account, application string, attempt int, now time.Time) (*Approved, error) {
	rec, err := a.store.Get(ctx, account, ReviewID(account, application, attempt, orgval.KindOrganization))
	if errors.Is(err, apierr.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	r := rec.Doc
	if r.State != orgval.Approved {
		return nil, apierr.New(apierr.FailedPrecondition, "ORGANIZATION_NOT_APPROVED",
			"the organization review of %s (attempt %d) is %s, not APPROVED; an OV or EV certificate is signed only for an approved organization", application, attempt, r.State)
	}
	out := &Approved{Review: Name(rec.ID), ValidationLevel: r.ValidationLevel, Organization: r.Organization, ApproveTime: r.DecideTime}
	if r.Reused {
		prev, err := a.store.Get(ctx, account, strings.TrimPrefix(r.ReusedReview, "reviews/"))
		if err != nil {
			return nil, fmt.Errorf("reused review %s of %s: %w", r.ReusedReview, Name(rec.ID), err)
		}
		if prev.Doc.State != orgval.Approved || prev.Doc.Kind != orgval.KindOrganization {
			return nil, fmt.Errorf("reused review %s of %s is %s %s, not an approved organization review", r.ReusedReview, Name(rec.ID), prev.Doc.Kind, prev.Doc.State)
		}
		out.Review, out.Organization, out.ApproveTime = r.ReusedReview, prev.Doc.Organization, prev.Doc.DecideTime
	}
	if now.Sub(out.ApproveTime) >= certpolicy.OrganizationValidationReuse {
		return nil, apierr.New(apierr.FailedPrecondition, "ORGANIZATION_VALIDATION_EXPIRED",
			"the organization was approved on %s, more than 398 days ago; it must be validated again", out.ApproveTime.UTC().Format(time.DateOnly))
	}
	return out, nil
}
