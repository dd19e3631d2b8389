package grpcapi

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	verificationv1 "github.com/certflow/certflow/gen/go/certflow/verification/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/filter"
	"github.com/certflow/certflow/pkg/page"
	"github.com/certflow/certflow/pkg/resname"
	"github.com/certflow/certflow/services/verification/internal/orgval"
	"github.com/certflow/certflow/services/verification/internal/orgval/orgapp"
)

// ReviewServer implements verificationv1.ReviewServiceServer. Its public
// methods need the reviewer role; CreateReview and CancelReviews are for
// the application service, acting for the customer's account.
type ReviewServer struct {
	verificationv1.UnimplementedReviewServiceServer
	Reviews *orgapp.Reviews
	// Pages signs and reads ListReviews' keyset page tokens.
	Pages *page.Keyset
}

// internalRoles may open and cancel reviews: the application service calls
// with the customer's account, as the customer (forwarding a request) or as
// the system (from an event handler).
var internalRoles = []auth.Role{auth.System, auth.Customer}

// CreateReview is internal: the application service opens a review.
func (s *ReviewServer) CreateReview(ctx context.Context, req *verificationv1.CreateReviewRequest) (*verificationv1.Review, error) {
	p, err := auth.Require(ctx, internalRoles...)
	if err != nil {
		return nil, err
	}
	in := req.GetReview()
	if in == nil {
		return nil, apierr.Invalid("review", "MISSING_FIELD", "review is required")
	}
	if _, err := resname.ID("review.application", "applications", in.GetApplication()); err != nil {
		return nil, err
	}
	var kind orgval.Kind
	switch in.GetKind() {
	case verificationv1.Review_ORGANIZATION:
		kind = orgval.KindOrganization
	case verificationv1.Review_MANUAL:
		kind = orgval.KindManual
	default:
		return nil, apierr.Invalid("review.kind", "INVALID_KIND", "review.kind is required: ORGANIZATION or MANUAL")
	}
	r := orgval.Review{
		Kind: kind, Application: in.GetApplication(), Attempt: int(in.GetAttempt()), ValidationLevel: in.GetValidationLevel(),
		Domains: in.GetDomains(), FlaggedWords: in.GetFlaggedWords(),
	}
	if a := in.GetApplicant(); a != nil {
		r.Applicant = orgval.Contact{Name: a.GetName(), Phone: a.GetPhone(), Email: a.GetEmail(), IDNumber: a.GetIdNumber()}
	}
	if o := in.GetOrganization(); o != nil {
		r.Organization = orgval.Organization{
			Name: o.GetName(), Type: o.GetType(), Phone: o.GetPhone(), OrganizationID: o.GetOrganizationId(),
			Country: o.GetCountry(), Province: o.GetProvince(), City: o.GetCity(), Address: o.GetAddress(), ZipCode: o.GetZipCode(),
		}
	}
	rec, err := s.Reviews.Create(ctx, p.Account, r)
	if err != nil {
		return nil, err
	}
	return ReviewPB(rec, nil), nil
}

// CancelReviews is internal: the application was withdrawn.
func (s *ReviewServer) CancelReviews(ctx context.Context, req *verificationv1.CancelReviewsRequest) (*verificationv1.CancelReviewsResponse, error) {
	p, err := auth.Require(ctx, internalRoles...)
	if err != nil {
		return nil, err
	}
	if _, err := resname.ID("application", "applications", req.GetApplication()); err != nil {
		return nil, err
	}
	recs, err := s.Reviews.Cancel(ctx, p.Account, req.GetApplication())
	if err != nil {
		return nil, err
	}
	resp := &verificationv1.CancelReviewsResponse{}
	for _, r := range recs {
		resp.Reviews = append(resp.Reviews, ReviewPB(r, nil))
	}
	return resp, nil
}

// ListReviews is the queue, oldest first; documents are left out (GetReview
// has them).
func (s *ReviewServer) ListReviews(ctx context.Context, req *verificationv1.ListReviewsRequest) (*verificationv1.ListReviewsResponse, error) {
	who, err := auth.Require(ctx, auth.Reviewer)
	if err != nil {
		return nil, err
	}
	f, err := filter.Parse(req.GetFilter(), "state", "kind", "application", "account")
	if err != nil {
		return nil, apierr.Invalid("filter", "INVALID_FILTER", "%v", err)
	}
	q := orgapp.Filter{State: orgval.State(f["state"]), Kind: orgval.Kind(f["kind"]), Application: f["application"], Account: f["account"]}
	switch q.State {
	case "", orgval.Pending, orgval.Approved, orgval.Rejected, orgval.Cancelled:
	default:
		return nil, apierr.Invalid("filter", "INVALID_FILTER", "unknown state %q; use PENDING, APPROVED, REJECTED or CANCELLED", q.State)
	}
	switch q.Kind {
	case "", orgval.KindOrganization, orgval.KindManual:
	default:
		return nil, apierr.Invalid("filter", "INVALID_FILTER", "unknown kind %q; use ORGANIZATION or MANUAL", q.Kind)
	}
	// Bound to the reviewer's account and the filter as given.
	query := "reviews\x00" + who.Account + "\x00" + req.GetFilter()
	reviews, next, err := page.ListKeyset(s.Pages, query, req, func(after *page.Cursor, limit int64) ([]*docstore.Record[orgval.Review], bool, error) {
		return s.Reviews.Queue(ctx, q, Position(after), limit)
	}, Cursor[orgval.Review], func(r *docstore.Record[orgval.Review]) *verificationv1.Review { return ReviewPB(r, nil) })
	if err != nil {
		return nil, err
	}
	return &verificationv1.ListReviewsResponse{Reviews: reviews, NextPageToken: next}, nil
}

// GetReview reads a review with its application's documents.
func (s *ReviewServer) GetReview(ctx context.Context, req *verificationv1.GetReviewRequest) (*verificationv1.Review, error) {
	_, id, err := reviewer(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	rec, docs, err := s.Reviews.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return ReviewPB(rec, docs), nil
}

var outcomes = map[verificationv1.PhoneCall_Outcome]orgval.Outcome{
	verificationv1.PhoneCall_OUTCOME_CONFIRMED: orgval.Confirmed,
	verificationv1.PhoneCall_OUTCOME_DENIED:    orgval.Denied,
	verificationv1.PhoneCall_OUTCOME_NO_ANSWER: orgval.NoAnswer,
}

// RecordPhoneCall records a call on a pending review.
func (s *ReviewServer) RecordPhoneCall(ctx context.Context, req *verificationv1.RecordPhoneCallRequest) (*verificationv1.Review, error) {
	acct, id, err := reviewer(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	rec, docs, err := s.Reviews.RecordCall(ctx, acct, id, orgval.PhoneCall{
		Phone: req.GetPhone(), Outcome: outcomes[req.GetOutcome()], Notes: req.GetNotes(),
	})
	if err != nil {
		return nil, err
	}
	return ReviewPB(rec, docs), nil
}

// ApproveReview approves a pending review.
func (s *ReviewServer) ApproveReview(ctx context.Context, req *verificationv1.ApproveReviewRequest) (*verificationv1.Review, error) {
	acct, id, err := reviewer(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	rec, docs, err := s.Reviews.Approve(ctx, acct, id, req.GetNote())
	if err != nil {
		return nil, err
	}
	return ReviewPB(rec, docs), nil
}

// RejectReview rejects a pending review with a cause.
func (s *ReviewServer) RejectReview(ctx context.Context, req *verificationv1.RejectReviewRequest) (*verificationv1.Review, error) {
	acct, id, err := reviewer(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	rec, docs, err := s.Reviews.Reject(ctx, acct, id, req.GetCause())
	if err != nil {
		return nil, err
	}
	return ReviewPB(rec, docs), nil
}

// reviewer checks the reviewer role and parses a review name.
func reviewer(ctx context.Context, name string) (string, string, error) {
	p, err := auth.Require(ctx, auth.Reviewer)
	if err != nil {
		return "", "", err
	}
	id, err := resname.ID("name", "reviews", name)
	return p.Account, id, err
}

// ReviewPB renders a review with the given documents (metadata only).
func ReviewPB(rec *docstore.Record[orgval.Review], docs []orgval.ListedDocument) *verificationv1.Review {
	r := rec.Doc
	pb := &verificationv1.Review{
		Name:            orgapp.Name(rec.ID),
		Kind:            verificationv1.Review_Kind(verificationv1.Review_Kind_value[string(r.Kind)]),
		State:           verificationv1.Review_State(verificationv1.Review_State_value[string(r.State)]),
		Account:         rec.Account,
		Application:     r.Application,
		Attempt:         int32(r.Attempt),
		ValidationLevel: r.ValidationLevel,
		Domains:         r.Domains,
		FlaggedWords:    r.FlaggedWords,
		Applicant: &verificationv1.Contact{
			Name: r.Applicant.Name, Phone: r.Applicant.Phone, Email: r.Applicant.Email, IdNumber: r.Applicant.IDNumber,
		},
		Organization: &verificationv1.Organization{
			Name: r.Organization.Name, Type: r.Organization.Type, Phone: r.Organization.Phone,
			OrganizationId: r.Organization.OrganizationID, Country: r.Organization.Country, Province: r.Organization.Province,
			City: r.Organization.City, Address: r.Organization.Address, ZipCode: r.Organization.ZipCode,
		},
		Reviewer:   r.Reviewer,
		Cause:      r.Cause,
		Reused:     r.Reused,
		CreateTime: timestamppb.New(r.CreateTime),
		DecideTime: optionalTime(r.DecideTime),
	}
	for _, d := range docs {
		pb.Documents = append(pb.Documents, DocumentPB(d.ID, d.Document))
	}
	for _, c := range r.PhoneCalls {
		pb.PhoneCalls = append(pb.PhoneCalls, &verificationv1.PhoneCall{
			Time: timestamppb.New(c.Time), Reviewer: c.Reviewer, Phone: c.Phone, Notes: c.Notes,
			Outcome: verificationv1.PhoneCall_Outcome(verificationv1.PhoneCall_Outcome_value["OUTCOME_"+string(c.Outcome)]),
		})
	}
	return pb
}

// optionalTime renders t, or nothing for the zero time.
func optionalTime(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
