// Package grpcapi maps the issuance service's gRPC API to its use cases.
package grpcapi

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	issuancev1 "github.com/certflow/certflow/gen/go/certflow/issuance/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/csr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/domainname"
	"github.com/certflow/certflow/pkg/filter"
	"github.com/certflow/certflow/pkg/page"
	"github.com/certflow/certflow/pkg/resname"
	"github.com/certflow/certflow/services/issuance/internal/app"
	"github.com/certflow/certflow/services/issuance/internal/bundle"
	"github.com/certflow/certflow/services/issuance/internal/domain"
)

// Server implements issuancev1.IssuanceServiceServer.
type Server struct {
	issuancev1.UnimplementedIssuanceServiceServer
	App *app.App
	// Pages issues and checks the keyset page tokens of ListCertificates.
	Pages *page.Keyset
}

var keyAlgorithms = map[issuancev1.KeyAlgorithm]csr.KeyAlgorithm{
	issuancev1.KeyAlgorithm_KEY_ALGORITHM_UNSPECIFIED: "",
	issuancev1.KeyAlgorithm_KEY_ALGORITHM_ECDSA_P256:  csr.ECDSAP256,
	issuancev1.KeyAlgorithm_KEY_ALGORITHM_ECDSA_P384:  csr.ECDSAP384,
	issuancev1.KeyAlgorithm_KEY_ALGORITHM_RSA_2048:    csr.RSA2048,
	issuancev1.KeyAlgorithm_KEY_ALGORITHM_RSA_4096:    csr.RSA4096,
}

// IssueCertificate is internal: the application service asks for a
// certificate once every check passed; the CA checks again with the
// verification service immediately before it signs.
func (s *Server) IssueCertificate(ctx context.Context, req *issuancev1.IssueCertificateRequest) (*issuancev1.Certificate, error) {
	acct, err := auth.Account(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := resname.ID("application", "applications", req.GetApplication()); err != nil {
		return nil, err
	}
	alg, ok := keyAlgorithms[req.GetKeyAlgorithm()]
	if !ok {
		return nil, apierr.Invalid("key_algorithm", "UNSUPPORTED_KEY_ALGORITHM", "key_algorithm %v is not supported", req.GetKeyAlgorithm())
	}
	rec, err := s.App.Issue(ctx, acct, app.IssueRequest{
		RequestID: req.GetRequestId(), Application: req.GetApplication(), Attempt: int(req.GetAttempt()),
		Domains: req.GetDomains(), CSR: req.GetCsr(), KeyAlgorithm: alg, ValidationLevel: req.GetValidationLevel(),
		Replaces:      req.GetReplaces(),
		NotAfterLimit: limit(req.GetNotAfterLimit()),
	})
	if err != nil {
		return nil, err
	}
	return certPB(rec), nil
}

// GetCertificate reads a certificate's details.
func (s *Server) GetCertificate(ctx context.Context, req *issuancev1.GetCertificateRequest) (*issuancev1.Certificate, error) {
	acct, id, err := target(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	rec, err := s.App.Get(ctx, acct, id)
	if err != nil {
		return nil, err
	}
	return certPB(rec), nil
}

// ListCertificates lists certificates newest first, filtered by state,
// domain and notAfter, a page at a time after a keyset token.
func (s *Server) ListCertificates(ctx context.Context, req *issuancev1.ListCertificatesRequest) (*issuancev1.ListCertificatesResponse, error) {
	acct, err := auth.Account(ctx)
	if err != nil {
		return nil, err
	}
	f, err := listFilter(req.GetFilter())
	if err != nil {
		return nil, err
	}
	// The token is bound to the account and the filter as given.
	query := acct + "\x00" + req.GetFilter()
	certs, next, err := page.Records(s.Pages, query, req, func(after *docstore.Position, limit int64) ([]*docstore.Record[domain.Certificate], bool, error) {
		return s.App.List(ctx, acct, f, after, limit)
	}, certPB)
	if err != nil {
		return nil, err
	}
	return &issuancev1.ListCertificatesResponse{Certificates: certs, NextPageToken: next}, nil
}

// listFields are the fields of the certificates filter and their
// operators (the grammar is in ListCertificatesRequest.filter).
var listFields = filter.Fields{"state": nil, "domain": nil, "not_after": {"<", "<=", ">", ">="}}

// listFilter parses a ListCertificates filter.
func listFilter(s string) (app.ListFilter, error) {
	terms, err := filter.ParseTerms(s, listFields)
	if err != nil {
		return app.ListFilter{}, apierr.Invalid("filter", "INVALID_FILTER", "%v", err)
	}
	var f app.ListFilter
	for _, t := range terms {
		switch t.Field {
		case "state":
			switch t.Value {
			case "ISSUED":
				f.State = domain.Issued
			case "REVOKED":
				f.State = domain.Revoked
			default:
				return app.ListFilter{}, apierr.Invalid("filter", "INVALID_FILTER", "%v", filter.At(s, t, "unknown state %q; use ISSUED or REVOKED", t.Value))
			}
		case "domain":
			name, err := domainname.Normalize(t.Value)
			if err != nil {
				return app.ListFilter{}, apierr.Invalid("filter", "INVALID_FILTER", "%v", filter.At(s, t, "domain %q is not a domain name: %v", t.Value, err))
			}
			f.Domain = name
		case "not_after":
			at, err := time.Parse(time.RFC3339, t.Value)
			if err != nil {
				return app.ListFilter{}, apierr.Invalid("filter", "INVALID_FILTER", "%v", filter.At(s, t, "not_after needs an RFC 3339 time such as \"2027-01-01T00:00:00Z\", got %q", t.Value))
			}
			f.NotAfterOp, f.NotAfter = t.Op, at
		}
	}
	return f, nil
}

// DownloadCertificate returns the PEM bundle.
func (s *Server) DownloadCertificate(ctx context.Context, req *issuancev1.DownloadCertificateRequest) (*issuancev1.CertificateBundle, error) {
	acct, id, err := target(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	b, err := s.App.Download(ctx, acct, id)
	if err != nil {
		return nil, err
	}
	return &issuancev1.CertificateBundle{
		Name: req.GetName(), CertificatePem: b.Certificate, ChainPem: b.Chain, FullChainPem: b.FullChain, PrivateKeyPem: b.PrivateKey,
	}, nil
}

var serverTypes = map[issuancev1.ServerType]bundle.ServerType{
	issuancev1.ServerType_SERVER_TYPE_NGINX:  bundle.Nginx,
	issuancev1.ServerType_SERVER_TYPE_APACHE: bundle.Apache,
	issuancev1.ServerType_SERVER_TYPE_TOMCAT: bundle.Tomcat,
	issuancev1.ServerType_SERVER_TYPE_IIS:    bundle.IIS,
	issuancev1.ServerType_SERVER_TYPE_OTHER:  bundle.Other,
}

// ExportCertificate returns the files of one server type.
func (s *Server) ExportCertificate(ctx context.Context, req *issuancev1.ExportCertificateRequest) (*issuancev1.ExportCertificateResponse, error) {
	acct, id, err := target(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	st, ok := serverTypes[req.GetServerType()]
	if !ok {
		return nil, apierr.Invalid("server_type", "INVALID_SERVER_TYPE", "server_type is required: SERVER_TYPE_NGINX, SERVER_TYPE_APACHE, SERVER_TYPE_TOMCAT, SERVER_TYPE_IIS or SERVER_TYPE_OTHER")
	}
	x, err := s.App.Export(ctx, acct, id, app.ExportRequest{Type: st, Password: req.GetPassword(), Legacy: req.GetLegacyPkcs12(), Zip: req.GetZip()})
	if err != nil {
		return nil, err
	}
	resp := &issuancev1.ExportCertificateResponse{Name: req.GetName(), ServerType: req.GetServerType(), Password: x.Password}
	for _, f := range x.Files {
		resp.Files = append(resp.Files, filePB(f))
	}
	if x.Archive != nil {
		resp.Archive = filePB(*x.Archive)
	}
	return resp, nil
}

func filePB(f bundle.File) *issuancev1.BundleFile {
	return &issuancev1.BundleFile{FileName: f.Name, MediaType: f.MediaType, Content: f.Content}
}

// GetCaCertificates returns the CA certificates; they are public.
func (s *Server) GetCaCertificates(ctx context.Context, req *issuancev1.GetCaCertificatesRequest) (*issuancev1.GetCaCertificatesResponse, error) {
	root, inter := s.App.CA()
	return &issuancev1.GetCaCertificatesResponse{RootPem: root, IntermediatePem: inter}, nil
}

// RevokeCertificate revokes a certificate: a customer its own, a reviewer
// any (the use case checks role and reason).
func (s *Server) RevokeCertificate(ctx context.Context, req *issuancev1.RevokeCertificateRequest) (*issuancev1.Certificate, error) {
	id, err := resname.ID("name", "certificates", req.GetName())
	if err != nil {
		return nil, err
	}
	rec, err := s.App.Revoke(ctx, id, domain.Reason(req.GetReason()), req.GetRequestId())
	if err != nil {
		return nil, err
	}
	return certPB(rec), nil
}

func target(ctx context.Context, name string) (string, string, error) {
	acct, err := auth.Account(ctx)
	if err != nil {
		return "", "", err
	}
	id, err := resname.ID("name", "certificates", name)
	return acct, id, err
}

func certPB(r *docstore.Record[domain.Certificate]) *issuancev1.Certificate {
	d := r.Doc
	c := &issuancev1.Certificate{
		Name:              resname.Name("certificates", r.ID),
		Application:       d.Application,
		Domains:           d.Domains,
		SerialNumber:      d.SerialHex,
		NotBefore:         timestamppb.New(d.NotBefore),
		NotAfter:          timestamppb.New(d.NotAfter),
		KeyAlgorithm:      d.KeyAlgorithm,
		ServiceHoldsKey:   d.ServiceHoldsKey,
		Sha256Fingerprint: d.Fingerprint,
		Issuer:            d.Issuer,
		CreateTime:        timestamppb.New(d.CreateTime),
		State:             issuancev1.Certificate_ISSUED,
		ValidationLevel:   d.ValidationLevel,
		LintNotices:       d.LintNotices,
		Replaces:          d.Replaces,
		ReplacedBy:        d.ReplacedBy,
	}
	if d.State == domain.Revoked {
		c.State = issuancev1.Certificate_REVOKED
		c.RevokeTime = timestamppb.New(d.RevokeTime)
		c.RevocationReason = issuancev1.RevocationReason(d.RevocationReason)
	}
	return c
}

// limit is an optional time limit: zero when unset.
func limit(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}
