// Package verifier is the issuance service's client of the verification
// service: the check immediately before signing.
package verifier

import (
	"context"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	verificationv1 "github.com/certflow/certflow/gen/go/certflow/verification/v1"
	"github.com/certflow/certflow/services/issuance/internal/app"
	"github.com/certflow/certflow/services/issuance/internal/domain"
	"github.com/certflow/certflow/services/issuance/internal/profile"
)

// Client is app.Authorizer over gRPC. The connection must come from
// pkg/grpcclient.Dial, which passes the caller's account on and keeps a
// FailedPrecondition's reason.
type Client struct {
	C verificationv1.VerificationServiceClient
}

// AuthorizeIssuance asks VerificationService.AuthorizeIssuance.
func (c Client) AuthorizeIssuance(ctx context.Context, q app.AuthorizeRequest) (*app.Authorization, error) {
	resp, err := c.C.AuthorizeIssuance(ctx, &verificationv1.AuthorizeIssuanceRequest{
		Application: q.Application, Attempt: int32(q.Attempt), Domains: q.Domains, SignTime: timestamppb.New(q.SignTime),
	})
	if err != nil {
		return nil, err
	}
	out := &app.Authorization{RuleVersion: resp.GetRuleVersion()}
	if o := resp.GetApprovedOrganization(); o != nil {
		out.Organization = &app.ApprovedOrganization{
			Review: o.GetReview(), ValidationLevel: o.GetValidationLevel(),
			Organization: profile.Organization{
				Name: o.GetName(), Type: o.GetType(), RegistrationNumber: o.GetOrganizationId(),
				Country: o.GetCountry(), Province: o.GetProvince(), City: o.GetCity(),
			},
		}
	}
	for _, v := range resp.GetValidations() {
		out.Validations = append(out.Validations, domain.Validation{
			Domain: v.GetDomain(), Method: strings.TrimPrefix(v.GetMethod().String(), "VALIDATION_METHOD_"),
			ValidationTime: v.GetValidationTime().AsTime(), Challenge: v.GetChallenge(), Reused: v.GetReused(), RuleVersion: v.GetRuleVersion(),
		})
	}
	return out, nil
}
