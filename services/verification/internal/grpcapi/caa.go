package grpcapi

import (
	"context"

	verificationv1 "github.com/certflow/certflow/gen/go/certflow/verification/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/domainname"
	"github.com/certflow/certflow/services/verification/internal/caa"
)

// CAAChecker decides CAA for normalized names (caa.Checker).
type CAAChecker interface {
	Check(ctx context.Context, q caa.Query) (caa.Result, error)
}

// maxCAANames bounds one request's lookups (each name may climb a few
// labels).
const maxCAANames = 500

// CheckCaa is internal (the application asks before it asks the CA to
// sign); it needs no account, since it reads only public DNS. When the
// caller speaks for an account, accounturi parameters are evaluated for it;
// validationmethods are not (the methods are known once the names are
// validated): AuthorizeIssuance, right before signing, evaluates both.
func (s *Server) CheckCaa(ctx context.Context, req *verificationv1.CheckCaaRequest) (*verificationv1.CheckCaaResponse, error) {
	if len(req.GetDomains()) == 0 {
		return nil, apierr.Invalid("domains", "MISSING_FIELD", "at least one domain is required")
	}
	if len(req.GetDomains()) > maxCAANames {
		return nil, apierr.Invalid("domains", "TOO_MANY_DOMAINS", "at most %d domains can be checked at once; split the request", maxCAANames)
	}
	names := make([]string, 0, len(req.GetDomains()))
	for _, d := range req.GetDomains() {
		n, err := domainname.Normalize(d)
		if err != nil {
			return nil, apierr.Invalid("domains", "INVALID_DOMAIN", "%v", err)
		}
		names = append(names, n)
	}
	if s.CAA == nil {
		return nil, apierr.New(apierr.Unavailable, "CAA_NOT_CONFIGURED", "CAA checking is not configured on this server; retry against a configured one")
	}
	q := caa.Query{Names: names}
	if p, ok := auth.From(ctx); ok {
		q.Account = p.Account
	}
	r, err := s.CAA.Check(ctx, q)
	if err != nil {
		return nil, err
	}
	return &verificationv1.CheckCaaResponse{Allowed: r.Allowed, Domain: r.Domain, Reason: r.Reason, LookupFailed: r.LookupFailed}, nil
}
