// Package grpcapi maps the verification service's gRPC API to its use cases.
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
	"github.com/certflow/certflow/services/verification/internal/app"
	"github.com/certflow/certflow/services/verification/internal/domain"
	"github.com/certflow/certflow/services/verification/internal/orgval/orgapp"
)

// Server implements verificationv1.VerificationServiceServer.
type Server struct {
	verificationv1.UnimplementedVerificationServiceServer
	App *app.App
	// CAA answers CheckCaa (caa.go).
	CAA CAAChecker
	// Documents answers the qualification document methods (documents.go).
	Documents Documents
	// Organizations gives AuthorizeIssuance the organization approved for
	// an OV or EV attempt (orgapp.Reviews).
	Organizations ApprovedOrganizations
	// Pages signs and reads the list methods' keyset page tokens.
	Pages *page.Keyset
}

// ApprovedOrganizations finds the organization approved for an application
// attempt; nil, nil when the attempt has no organization review.
type ApprovedOrganizations interface {
	ApprovedOrganization(ctx context.Context, account, application string, attempt int, now time.Time) (*orgapp.Approved, error)
}

var methods = map[verificationv1.ValidationMethod]domain.Method{
	verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_TXT:   domain.DNSTXT,
	verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_CNAME: domain.DNSCNAME,
	verificationv1.ValidationMethod_VALIDATION_METHOD_HTTP_FILE: domain.HTTPFile,
	verificationv1.ValidationMethod_VALIDATION_METHOD_EMAIL:     domain.Email,
}

// CreateChallenges is internal: the application service asks on submit.
func (s *Server) CreateChallenges(ctx context.Context, req *verificationv1.CreateChallengesRequest) (*verificationv1.CreateChallengesResponse, error) {
	acct, err := auth.Account(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := resname.ID("application", "applications", req.GetApplication()); err != nil {
		return nil, err
	}
	if req.GetAttempt() < 1 {
		return nil, apierr.Invalid("attempt", "INVALID_ATTEMPT", "attempt must be 1 or more")
	}
	m, ok := methods[req.GetMethod()]
	if !ok {
		return nil, apierr.Invalid("method", "UNSUPPORTED_METHOD", "method must be DNS_TXT, DNS_CNAME, HTTP_FILE or EMAIL")
	}
	recs, err := s.App.Create(ctx, acct, app.CreateRequest{
		Application: req.GetApplication(), Attempt: int(req.GetAttempt()), Names: req.GetDomains(),
		Method: m, EmailLocalPart: req.GetEmailLocalPart(),
	})
	if err != nil {
		return nil, err
	}
	resp := &verificationv1.CreateChallengesResponse{}
	for _, r := range recs {
		resp.Challenges = append(resp.Challenges, ChallengePB(r))
	}
	return resp, nil
}

// CancelChallenges is internal: the application service asks on withdraw.
func (s *Server) CancelChallenges(ctx context.Context, req *verificationv1.CancelChallengesRequest) (*verificationv1.CancelChallengesResponse, error) {
	acct, err := auth.Account(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := resname.ID("application", "applications", req.GetApplication()); err != nil {
		return nil, err
	}
	recs, err := s.App.Cancel(ctx, acct, req.GetApplication())
	if err != nil {
		return nil, err
	}
	resp := &verificationv1.CancelChallengesResponse{}
	for _, r := range recs {
		resp.Challenges = append(resp.Challenges, ChallengePB(r))
	}
	return resp, nil
}

// GetChallenge reads a challenge.
func (s *Server) GetChallenge(ctx context.Context, req *verificationv1.GetChallengeRequest) (*verificationv1.Challenge, error) {
	acct, id, err := target(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	rec, err := s.App.Get(ctx, acct, id)
	if err != nil {
		return nil, err
	}
	return ChallengePB(rec), nil
}

// CheckChallenge checks a challenge now.
func (s *Server) CheckChallenge(ctx context.Context, req *verificationv1.CheckChallengeRequest) (*verificationv1.Challenge, error) {
	acct, id, err := target(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	rec, err := s.App.CheckNow(ctx, acct, id)
	if err != nil {
		return nil, err
	}
	return ChallengePB(rec), nil
}

// ListChallenges lists challenges newest first, a page at a time after a
// keyset token; filter on application and state.
func (s *Server) ListChallenges(ctx context.Context, req *verificationv1.ListChallengesRequest) (*verificationv1.ListChallengesResponse, error) {
	acct, err := auth.Account(ctx)
	if err != nil {
		return nil, err
	}
	f, err := filter.Parse(req.GetFilter(), "application", "state")
	if err != nil {
		return nil, apierr.Invalid("filter", "INVALID_FILTER", "%v", err)
	}
	state := domain.State(f["state"])
	switch state {
	case "", domain.Pending, domain.Verified, domain.Failed, domain.Cancelled:
	default:
		return nil, apierr.Invalid("filter", "INVALID_FILTER", "unknown state %q; use PENDING, VERIFIED, FAILED or CANCELLED", state)
	}
	// The token is bound to the account and the filter as given: another
	// account's or another query's token is INVALID_PAGE_TOKEN.
	query := "challenges\x00" + acct + "\x00" + req.GetFilter()
	challenges, next, err := page.ListKeyset(s.Pages, query, req, func(after *page.Cursor, limit int64) ([]*docstore.Record[domain.Challenge], bool, error) {
		return s.App.List(ctx, acct, f["application"], state, Position(after), limit)
	}, Cursor[domain.Challenge], ChallengePB)
	if err != nil {
		return nil, err
	}
	return &verificationv1.ListChallengesResponse{Challenges: challenges, NextPageToken: next}, nil
}

// Position is a page token's cursor as a docstore listing position.
func Position(c *page.Cursor) *docstore.Position {
	if c == nil {
		return nil
	}
	return &docstore.Position{Created: c.Time, ID: c.ID}
}

// Cursor is a record's place in a listing, for its page token.
func Cursor[T any](r *docstore.Record[T]) page.Cursor {
	return page.Cursor{Time: r.Created, ID: r.ID}
}

func target(ctx context.Context, name string) (string, string, error) {
	acct, err := auth.Account(ctx)
	if err != nil {
		return "", "", err
	}
	id, err := resname.ID("name", "challenges", name)
	return acct, id, err
}

func ts(t interface{ IsZero() bool }, pb *timestamppb.Timestamp) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return pb
}

// ChallengePB renders a challenge with what the customer must publish.
func ChallengePB(r *docstore.Record[domain.Challenge]) *verificationv1.Challenge {
	c := r.Doc
	pb := &verificationv1.Challenge{
		Name:          resname.Name("challenges", r.ID),
		Application:   c.Application,
		Attempt:       int32(c.Attempt),
		Domain:        c.Domain,
		State:         verificationv1.Challenge_State(verificationv1.Challenge_State_value[string(c.State)]),
		CreateTime:    timestamppb.New(c.CreateTime),
		ExpireTime:    timestamppb.New(c.ExpireTime),
		VerifyTime:    ts(c.VerifyTime, timestamppb.New(c.VerifyTime)),
		CheckCount:    int32(c.CheckCount),
		LastCheckTime: ts(c.LastCheckTime, timestamppb.New(c.LastCheckTime)),
		LastError:     c.LastError,
		Perspectives:  PerspectivesPB(c.Perspectives),
	}
	if c.State == domain.Pending {
		pb.NextCheckTime = timestamppb.New(c.NextCheckTime)
	}
	methodPB(pb, c) // challenges.go
	return pb
}
