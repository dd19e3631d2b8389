package grpcapi

import (
	"context"
	"fmt"

	verificationv1 "github.com/certflow/certflow/gen/go/certflow/verification/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/domainname"
	"github.com/certflow/certflow/services/verification/internal/caa"
	"github.com/certflow/certflow/services/verification/internal/domain"
)

// Prover looks for a challenge's proof (the service's DNS/HTTP prover).
type Prover interface {
	Prove(ctx context.Context, c *domain.Challenge) error
}

// PerspectiveServer is the verification service in its perspective role
// (BR 3.2.2.9): it repeats the primary's checks with its own resolver and
// keeps nothing. Only the primary verification service may call it
// (pkg/callpolicy).
type PerspectiveServer struct {
	verificationv1.UnimplementedPerspectiveServiceServer
	// Name is the perspective's configured name (its region); RIR its
	// Regional Internet Registry.
	Name, Region, RIR string
	Prover            Prover
	CAA               CAAChecker
}

var methodsDomain = map[verificationv1.ValidationMethod]domain.Method{
	verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_TXT:   domain.DNSTXT,
	verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_CNAME: domain.DNSCNAME,
	verificationv1.ValidationMethod_VALIDATION_METHOD_HTTP_FILE: domain.HTTPFile,
}

func (s *PerspectiveServer) result(ok bool, detail string) *verificationv1.PerspectiveResult {
	return &verificationv1.PerspectiveResult{Perspective: s.Name, Region: s.Region, Rir: s.RIR, Corroborates: ok, Detail: detail}
}

// CorroborateChallenge looks for the proof from here.
func (s *PerspectiveServer) CorroborateChallenge(ctx context.Context, req *verificationv1.CorroborateChallengeRequest) (*verificationv1.CorroborateChallengeResponse, error) {
	method, ok := methodsDomain[req.GetMethod()]
	if !ok {
		return nil, apierr.Invalid("method", "INVALID_METHOD", "only DNS_TXT, DNS_CNAME and HTTP_FILE are corroborated")
	}
	name, err := domainname.Normalize(req.GetDomain())
	if err != nil {
		return nil, apierr.Invalid("domain", "INVALID_DOMAIN", "%v", err)
	}
	c := &domain.Challenge{Method: method, Domain: name, RecordName: req.GetRecordName(), Token: req.GetToken(),
		CNAMETarget: req.GetCnameTarget(), FilePath: req.GetFilePath()}
	if err := s.Prover.Prove(ctx, c); err != nil {
		return &verificationv1.CorroborateChallengeResponse{Result: s.result(false, err.Error())}, nil
	}
	return &verificationv1.CorroborateChallengeResponse{Result: s.result(true, fmt.Sprintf("%s proof for %s found", method, name))}, nil
}

// CorroborateCaa decides CAA from here, for the same account and methods.
func (s *PerspectiveServer) CorroborateCaa(ctx context.Context, req *verificationv1.CorroborateCaaRequest) (*verificationv1.CorroborateCaaResponse, error) {
	if len(req.GetNames()) == 0 || len(req.GetNames()) > maxCAANames {
		return nil, apierr.Invalid("names", "INVALID_NAMES", "between 1 and %d names are checked at once", maxCAANames)
	}
	q := caa.Query{Account: req.GetAccount()}
	methods := map[string][]string{}
	known := true
	for _, n := range req.GetNames() {
		name, err := domainname.Normalize(n.GetDomain())
		if err != nil {
			return nil, apierr.Invalid("names", "INVALID_DOMAIN", "%v", err)
		}
		q.Names = append(q.Names, name)
		methods[name] = n.GetMethodLabels()
		known = known && n.GetMethodsKnown()
	}
	if known {
		q.Methods = func(name string) []string { return methods[name] }
	}
	r, err := s.CAA.Check(ctx, q)
	if err != nil {
		return nil, err
	}
	detail := r.Reason
	if r.Allowed {
		detail = "CAA permits issuance"
	}
	return &verificationv1.CorroborateCaaResponse{Result: s.result(r.Allowed, detail), Domain: r.Domain, LookupFailed: r.LookupFailed}, nil
}

// PerspectivesPB renders remote perspectives' results.
func PerspectivesPB(rs []domain.PerspectiveResult) []*verificationv1.PerspectiveResult {
	var out []*verificationv1.PerspectiveResult
	for _, r := range rs {
		out = append(out, &verificationv1.PerspectiveResult{Perspective: r.Perspective, Region: r.Region, Rir: r.RIR, Corroborates: r.Corroborates, Detail: r.Detail})
	}
	return out
}
