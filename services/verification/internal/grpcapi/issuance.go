package grpcapi

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	verificationv1 "github.com/certflow/certflow/gen/go/certflow/verification/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/certpolicy"
	"github.com/certflow/certflow/pkg/resname"
	"github.com/certflow/certflow/services/verification/internal/app"
)

// AuthorizeIssuance is internal: the issuance service asks immediately
// before it signs, for the account it signs for (app/issuance.go).
func (s *Server) AuthorizeIssuance(ctx context.Context, req *verificationv1.AuthorizeIssuanceRequest) (*verificationv1.AuthorizeIssuanceResponse, error) {
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
	if req.GetSignTime() == nil {
		return nil, apierr.Invalid("sign_time", "MISSING_FIELD", "sign_time is required: the certificate's notBefore")
	}
	if err := req.GetSignTime().CheckValid(); err != nil {
		return nil, apierr.Invalid("sign_time", "INVALID_TIME", "sign_time: %v", err)
	}
	got, err := s.App.AuthorizeIssuance(ctx, acct, app.IssuanceRequest{
		Application: req.GetApplication(), Attempt: int(req.GetAttempt()), Names: req.GetDomains(), SignTime: req.GetSignTime().AsTime(),
	})
	if err != nil {
		return nil, err
	}
	resp := &verificationv1.AuthorizeIssuanceResponse{CheckTime: timestamppb.New(got.CheckTime), RuleVersion: certpolicy.Version(got.CheckTime),
		CaaPerspectives: PerspectivesPB(got.CAAPerspectives)}
	for _, n := range got.Names {
		resp.Validations = append(resp.Validations, &verificationv1.DomainValidation{
			Domain: n.Domain, Method: methodsPB[n.Method], ValidationTime: timestamppb.New(n.ValidationTime),
			Challenge: resname.Name("challenges", n.Challenge), Reused: n.Reused, RuleVersion: n.RuleVersion,
			ExpireTime: timestamppb.New(n.ExpireTime), Perspectives: PerspectivesPB(n.Perspectives),
		})
	}
	if s.Organizations == nil {
		return nil, apierr.New(apierr.Unavailable, "ORGANIZATIONS_NOT_CONFIGURED", "organization validation is not configured on this server")
	}
	// Read after the names were judged, at the same check time: the
	// organization as approved, never the application's later edits.
	org, err := s.Organizations.ApprovedOrganization(ctx, acct, req.GetApplication(), int(req.GetAttempt()), got.CheckTime)
	if err != nil {
		return nil, err
	}
	if org != nil {
		o := org.Organization
		resp.ApprovedOrganization = &verificationv1.ApprovedOrganization{
			Review: org.Review, ValidationLevel: org.ValidationLevel, ApproveTime: timestamppb.New(org.ApproveTime),
			Name: o.Name, Type: o.Type, OrganizationId: o.OrganizationID, Country: o.Country, Province: o.Province, City: o.City,
		}
	}
	return resp, nil
}
