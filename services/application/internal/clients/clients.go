// Package clients adapts the order, verification and issuance gRPC clients
// to the interfaces the application use cases need.
package clients

import (
	"context"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	issuancev1 "github.com/certflow/certflow/gen/go/certflow/issuance/v1"
	orderv1 "github.com/certflow/certflow/gen/go/certflow/order/v1"
	verificationv1 "github.com/certflow/certflow/gen/go/certflow/verification/v1"
	"github.com/certflow/certflow/services/application/internal/app"
	"github.com/certflow/certflow/services/application/internal/domain"
)

// Orders is app.Orders over gRPC.
type Orders struct{ C orderv1.OrderServiceClient }

var levels = map[orderv1.ValidationLevel]domain.Level{
	orderv1.ValidationLevel_VALIDATION_LEVEL_DV: domain.DV,
	orderv1.ValidationLevel_VALIDATION_LEVEL_OV: domain.OV,
	orderv1.ValidationLevel_VALIDATION_LEVEL_EV: domain.EV,
}

var types = map[orderv1.DomainType]domain.DomainType{
	orderv1.DomainType_DOMAIN_TYPE_SINGLE:   domain.Single,
	orderv1.DomainType_DOMAIN_TYPE_MULTI:    domain.Multi,
	orderv1.DomainType_DOMAIN_TYPE_WILDCARD: domain.Wildcard,
}

// GetInstance reads an instance of the caller's account.
func (o Orders) GetInstance(ctx context.Context, name string) (*app.Instance, error) {
	in, err := o.C.GetInstance(ctx, &orderv1.GetInstanceRequest{Name: name})
	if err != nil {
		return nil, err
	}
	return &app.Instance{
		State:           in.GetState().String(),
		Application:     in.GetApplication(),
		Product:         domain.Product{Level: levels[in.GetValidationLevel()], Type: types[in.GetDomainType()], MaxDomains: int(in.GetMaxDomains())},
		SubscriptionEnd: in.GetSubscriptionEndTime().AsTime(),
	}, nil
}

// BindInstance binds an instance to an application.
func (o Orders) BindInstance(ctx context.Context, name, application string) error {
	_, err := o.C.BindInstance(ctx, &orderv1.BindInstanceRequest{Name: name, Application: application})
	return err
}

// ReleaseInstance releases an instance.
func (o Orders) ReleaseInstance(ctx context.Context, name, application string) error {
	_, err := o.C.ReleaseInstance(ctx, &orderv1.ReleaseInstanceRequest{Name: name, Application: application})
	return err
}

// MarkInstanceIssued records an instance's certificate.
func (o Orders) MarkInstanceIssued(ctx context.Context, name, application, certificate string, notAfter time.Time) error {
	_, err := o.C.MarkInstanceIssued(ctx, &orderv1.MarkInstanceIssuedRequest{
		Name: name, Application: application, Certificate: certificate, CertificateNotAfter: timestamppb.New(notAfter),
	})
	return err
}

// MarkInstanceRevoked records that an instance's certificate was revoked.
func (o Orders) MarkInstanceRevoked(ctx context.Context, name, application, certificate string) error {
	_, err := o.C.MarkInstanceRevoked(ctx, &orderv1.MarkInstanceRevokedRequest{Name: name, Application: application, Certificate: certificate})
	return err
}

// Verifier is app.Verifier over gRPC.
type Verifier struct {
	C verificationv1.VerificationServiceClient
}

var methods = map[domain.Method]verificationv1.ValidationMethod{
	domain.DNSTXT:   verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_TXT,
	domain.DNSCNAME: verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_CNAME,
	domain.HTTPFile: verificationv1.ValidationMethod_VALIDATION_METHOD_HTTP_FILE,
	domain.Email:    verificationv1.ValidationMethod_VALIDATION_METHOD_EMAIL,
}

// CreateChallenges asks for one challenge per name.
func (v Verifier) CreateChallenges(ctx context.Context, application string, attempt int, domains []string, m domain.Method, mailbox string) ([]domain.Challenge, error) {
	resp, err := v.C.CreateChallenges(ctx, &verificationv1.CreateChallengesRequest{
		Application: application, Attempt: int32(attempt), Domains: domains, Method: methods[m], EmailLocalPart: mailbox,
	})
	if err != nil {
		return nil, err
	}
	var out []domain.Challenge
	for _, c := range resp.GetChallenges() {
		out = append(out, FromPB(c))
	}
	return out, nil
}

// CancelChallenges cancels an application's pending challenges.
func (v Verifier) CancelChallenges(ctx context.Context, application string) error {
	_, err := v.C.CancelChallenges(ctx, &verificationv1.CancelChallengesRequest{Application: application})
	return err
}

// CountDocuments counts an application's qualification documents.
func (v Verifier) CountDocuments(ctx context.Context, application string) (int, error) {
	resp, err := v.C.ListDocuments(ctx, &verificationv1.ListDocumentsRequest{Parent: application, PageSize: 1})
	if err != nil {
		return 0, err
	}
	return len(resp.GetDocuments()), nil
}

// CheckCAA asks whether CAA lets this CA issue for the names.
func (v Verifier) CheckCAA(ctx context.Context, domains []string) (app.CAAResult, error) {
	r, err := v.C.CheckCaa(ctx, &verificationv1.CheckCaaRequest{Domains: domains})
	if err != nil {
		return app.CAAResult{}, err
	}
	return app.CAAResult{Allowed: r.GetAllowed(), LookupFailed: r.GetLookupFailed(), Domain: r.GetDomain(), Reason: r.GetReason()}, nil
}

// Reviews is app.Reviews over gRPC.
type Reviews struct {
	C verificationv1.ReviewServiceClient
}

var kinds = map[domain.ReviewKind]verificationv1.Review_Kind{
	domain.OrganizationReview: verificationv1.Review_ORGANIZATION,
	domain.ManualReview:       verificationv1.Review_MANUAL,
}

// CreateReview opens a review in the queue.
func (r Reviews) CreateReview(ctx context.Context, q app.ReviewRequest) error {
	ap, co := q.Applicant, q.Company
	_, err := r.C.CreateReview(ctx, &verificationv1.CreateReviewRequest{Review: &verificationv1.Review{
		Kind: kinds[q.Kind], Application: q.Application, Attempt: int32(q.Attempt), ValidationLevel: string(q.Level),
		Domains: q.Domains, FlaggedWords: q.FlaggedWords,
		Applicant: &verificationv1.Contact{Name: ap.Name, Phone: ap.Phone, Email: ap.Email, IdNumber: ap.IDNumber},
		Organization: &verificationv1.Organization{
			Name: co.Name, Type: co.Type, Phone: co.Phone, OrganizationId: co.OrganizationID, Country: co.Country,
			Province: co.Province, City: co.City, Address: co.Address, ZipCode: co.ZipCode,
		},
	}})
	return err
}

// CancelReviews cancels an application's pending reviews.
func (r Reviews) CancelReviews(ctx context.Context, application string) error {
	_, err := r.C.CancelReviews(ctx, &verificationv1.CancelReviewsRequest{Application: application})
	return err
}

// FromPB copies a verification challenge.
func FromPB(c *verificationv1.Challenge) domain.Challenge {
	return domain.Challenge{
		Name:         c.GetName(),
		Domain:       c.GetDomain(),
		Method:       domain.Method(strings.TrimPrefix(c.GetMethod().String(), "VALIDATION_METHOD_")),
		State:        c.GetState().String(),
		RecordName:   c.GetDnsRecordName(),
		RecordType:   c.GetDnsRecordType(),
		RecordValue:  c.GetDnsRecordValue(),
		HTTPURL:      c.GetHttpUrl(),
		HTTPContent:  c.GetHttpContent(),
		EmailAddress: c.GetEmailAddress(),
		RuleVersion:  c.GetRuleVersion(),
		Reused:       c.GetReused(),
		ExpireTime:   asTime(c.GetExpireTime()),
		VerifyTime:   asTime(c.GetVerifyTime()),
	}
}

// asTime keeps an absent timestamp zero (AsTime of nil is 1970).
func asTime(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

// Issuer is app.Issuer over gRPC.
type Issuer struct {
	C issuancev1.IssuanceServiceClient
}

var keyAlgorithms = map[string]issuancev1.KeyAlgorithm{
	"":           issuancev1.KeyAlgorithm_KEY_ALGORITHM_UNSPECIFIED,
	"ECDSA-P256": issuancev1.KeyAlgorithm_KEY_ALGORITHM_ECDSA_P256,
	"ECDSA-P384": issuancev1.KeyAlgorithm_KEY_ALGORITHM_ECDSA_P384,
	"RSA-2048":   issuancev1.KeyAlgorithm_KEY_ALGORITHM_RSA_2048,
	"RSA-4096":   issuancev1.KeyAlgorithm_KEY_ALGORITHM_RSA_4096,
}

// IssueCertificate asks the CA to sign; it returns the certificate name.
func (i Issuer) IssueCertificate(ctx context.Context, r app.IssueRequest) (string, error) {
	c, err := i.C.IssueCertificate(ctx, &issuancev1.IssueCertificateRequest{
		RequestId: r.RequestID, Application: r.Application, Attempt: int32(r.Attempt), Domains: r.Domains, Csr: r.CSR,
		KeyAlgorithm: keyAlgorithms[r.KeyAlgorithm], ValidationLevel: r.Level, Replaces: r.Replaces,
		NotAfterLimit: limit(r.NotAfterLimit),
	})
	if err != nil {
		return "", err
	}
	return c.GetName(), nil
}

// limit is an optional time limit: unset when zero.
func limit(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
