// Package clients adapts the order, verification and issuance gRPC clients
// to the interfaces the application use cases need.
package clients

import (
	"context"
	"strings"

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
		State:       in.GetState().String(),
		Application: in.GetApplication(),
		Product:     domain.Product{Level: levels[in.GetValidationLevel()], Type: types[in.GetDomainType()], MaxDomains: int(in.GetMaxDomains())},
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
func (o Orders) MarkInstanceIssued(ctx context.Context, name, application, certificate string) error {
	_, err := o.C.MarkInstanceIssued(ctx, &orderv1.MarkInstanceIssuedRequest{Name: name, Application: application, Certificate: certificate})
	return err
}

// Verifier is app.Verifier over gRPC.
type Verifier struct {
	C verificationv1.VerificationServiceClient
}

var methods = map[domain.Method]verificationv1.ValidationMethod{
	domain.DNSTXT:   verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_TXT,
	domain.HTTPFile: verificationv1.ValidationMethod_VALIDATION_METHOD_HTTP_FILE,
}

// CreateChallenges asks for one challenge per name.
func (v Verifier) CreateChallenges(ctx context.Context, application string, attempt int, domains []string, m domain.Method) ([]domain.Challenge, error) {
	resp, err := v.C.CreateChallenges(ctx, &verificationv1.CreateChallengesRequest{
		Application: application, Attempt: int32(attempt), Domains: domains, Method: methods[m],
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

// FromPB copies a verification challenge.
func FromPB(c *verificationv1.Challenge) domain.Challenge {
	return domain.Challenge{
		Name:        c.GetName(),
		Domain:      c.GetDomain(),
		Method:      domain.Method(strings.TrimPrefix(c.GetMethod().String(), "VALIDATION_METHOD_")),
		State:       c.GetState().String(),
		RecordName:  c.GetDnsRecordName(),
		RecordType:  c.GetDnsRecordType(),
		RecordValue: c.GetDnsRecordValue(),
		HTTPURL:     c.GetHttpUrl(),
		HTTPContent: c.GetHttpContent(),
		ExpireTime:  c.GetExpireTime().AsTime(),
	}
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
func (i Issuer) IssueCertificate(ctx context.Context, requestID, application string, domains []string, csr, keyAlgorithm string) (string, error) {
	c, err := i.C.IssueCertificate(ctx, &issuancev1.IssueCertificateRequest{
		RequestId: requestID, Application: application, Domains: domains, Csr: csr, KeyAlgorithm: keyAlgorithms[keyAlgorithm],
	})
	if err != nil {
		return "", err
	}
	return c.GetName(), nil
}
