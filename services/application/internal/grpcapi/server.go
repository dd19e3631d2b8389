// Package grpcapi maps the application service's gRPC API to its use cases.
package grpcapi

import (
	"context"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	applicationv1 "github.com/certflow/certflow/gen/go/certflow/application/v1"
	verificationv1 "github.com/certflow/certflow/gen/go/certflow/verification/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/filter"
	"github.com/certflow/certflow/pkg/page"
	"github.com/certflow/certflow/pkg/resname"
	"github.com/certflow/certflow/services/application/internal/app"
	"github.com/certflow/certflow/services/application/internal/domain"
)

// Server implements applicationv1.ApplicationServiceServer.
type Server struct {
	applicationv1.UnimplementedApplicationServiceServer
	App *app.App
	// Pages issues and checks the keyset page tokens of the list methods.
	Pages *page.Keyset
}

// customer returns the caller's account; applications are the customer's.
func customer(ctx context.Context) (string, error) {
	p, err := auth.Require(ctx, auth.Customer)
	return p.Account, err
}

var methodsIn = map[verificationv1.ValidationMethod]domain.Method{
	verificationv1.ValidationMethod_VALIDATION_METHOD_UNSPECIFIED: "",
	verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_TXT:     domain.DNSTXT,
	verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_CNAME:   domain.DNSCNAME,
	verificationv1.ValidationMethod_VALIDATION_METHOD_HTTP_FILE:   domain.HTTPFile,
	verificationv1.ValidationMethod_VALIDATION_METHOD_EMAIL:       domain.Email,
}

var csrModesIn = map[applicationv1.CsrMode]domain.CSRMode{
	applicationv1.CsrMode_CSR_MODE_UNSPECIFIED: "",
	applicationv1.CsrMode_CSR_MODE_AUTOMATIC:   domain.Automatic,
	applicationv1.CsrMode_CSR_MODE_MANUAL:      domain.Manual,
}

var keysIn = map[applicationv1.KeyAlgorithm]string{
	applicationv1.KeyAlgorithm_KEY_ALGORITHM_UNSPECIFIED: "",
	applicationv1.KeyAlgorithm_KEY_ALGORITHM_ECDSA_P256:  "ECDSA-P256",
	applicationv1.KeyAlgorithm_KEY_ALGORITHM_ECDSA_P384:  "ECDSA-P384",
	applicationv1.KeyAlgorithm_KEY_ALGORITHM_RSA_2048:    "RSA-2048",
	applicationv1.KeyAlgorithm_KEY_ALGORITHM_RSA_4096:    "RSA-4096",
}

// fields of Details that UpdateApplication may change, by mask path.
var editable = map[string]func(dst *domain.Details, src domain.Details){
	"domains":           func(d *domain.Details, s domain.Details) { d.Domains = s.Domains },
	"validation_method": func(d *domain.Details, s domain.Details) { d.Method = s.Method },
	"applicant":         func(d *domain.Details, s domain.Details) { d.Applicant = s.Applicant },
	"company":           func(d *domain.Details, s domain.Details) { d.Company = s.Company },
	"csr_mode":          func(d *domain.Details, s domain.Details) { d.CSRMode = s.CSRMode },
	"key_algorithm":     func(d *domain.Details, s domain.Details) { d.KeyAlgorithm = s.KeyAlgorithm },
	"csr":               func(d *domain.Details, s domain.Details) { d.CSR = s.CSR },
	"approver_mailbox":  func(d *domain.Details, s domain.Details) { d.ApproverMailbox = s.ApproverMailbox },
}

// maskPaths turns an update mask into editable top-level fields (all of
// them for an empty mask). The mask grpc-gateway infers from a JSON body
// without update_mask names leaves (applicant.email) and the name and etag
// sent beside the fields: a leaf of applicant or company stands for its
// whole message, which must then be given whole (a missing detail is
// refused as on create); name and etag identify and guard, they edit
// nothing.
func maskPaths(in []string) ([]string, error) {
	var out []string
	for _, p := range in {
		if p == "name" || p == "etag" {
			continue
		}
		if head, _, nested := strings.Cut(p, "."); nested && (head == "applicant" || head == "company") {
			p = head
		}
		if _, ok := editable[p]; !ok {
			return nil, apierr.Invalid("update_mask", "FIELD_NOT_EDITABLE", "%q cannot be updated; editable fields are domains, validation_method, applicant, company, csr_mode, key_algorithm, csr and approver_mailbox", p)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	if len(in) == 0 {
		for p := range editable {
			out = append(out, p)
		}
	}
	return out, nil
}

// detailsSource is what Application and Template have in common.
type detailsSource interface {
	GetDomains() []string
	GetValidationMethod() verificationv1.ValidationMethod
	GetCsrMode() applicationv1.CsrMode
	GetKeyAlgorithm() applicationv1.KeyAlgorithm
	GetApplicant() *applicationv1.Applicant
	GetCompany() *applicationv1.Company
	GetApproverMailbox() string
}

func detailsIn(a detailsSource, csr string) (domain.Details, error) {
	m, ok := methodsIn[a.GetValidationMethod()]
	if !ok {
		return domain.Details{}, apierr.Invalid("application.validation_method", "UNSUPPORTED_METHOD", "unknown validation_method %v", a.GetValidationMethod())
	}
	mode, ok := csrModesIn[a.GetCsrMode()]
	if !ok {
		return domain.Details{}, apierr.Invalid("application.csr_mode", "UNSUPPORTED_CSR_MODE", "unknown csr_mode %v", a.GetCsrMode())
	}
	key, ok := keysIn[a.GetKeyAlgorithm()]
	if !ok {
		return domain.Details{}, apierr.Invalid("application.key_algorithm", "UNSUPPORTED_KEY_ALGORITHM", "unknown key_algorithm %v", a.GetKeyAlgorithm())
	}
	ap, co := a.GetApplicant(), a.GetCompany()
	return domain.Details{
		Domains: a.GetDomains(), Method: m, CSRMode: mode, KeyAlgorithm: key, CSR: csr, ApproverMailbox: a.GetApproverMailbox(),
		Applicant: domain.Applicant{Name: ap.GetName(), Phone: ap.GetPhone(), Email: ap.GetEmail(), IDNumber: ap.GetIdNumber()},
		Company: domain.Company{
			Name: co.GetName(), Type: co.GetType(), Phone: co.GetPhone(), OrganizationID: co.GetOrganizationId(),
			Country: co.GetCountry(), Province: co.GetProvince(), City: co.GetCity(), Address: co.GetAddress(), ZipCode: co.GetZipCode(),
		},
	}, nil
}

// CreateApplication makes a DRAFT.
func (s *Server) CreateApplication(ctx context.Context, req *applicationv1.CreateApplicationRequest) (*applicationv1.Application, error) {
	acct, err := customer(ctx)
	if err != nil {
		return nil, err
	}
	a := req.GetApplication()
	if a == nil {
		return nil, apierr.Invalid("application", "MISSING_FIELD", "application is required")
	}
	if _, err := resname.ID("application.instance", "instances", a.GetInstance()); err != nil {
		return nil, err
	}
	if len(req.GetRequestId()) > 128 {
		return nil, apierr.Invalid("request_id", "INVALID_REQUEST_ID", "request_id must be at most 128 characters")
	}
	d, err := detailsIn(a, a.GetCsr())
	if err != nil {
		return nil, err
	}
	var template string
	if req.GetTemplate() != "" {
		if template, err = resname.ID("template", "templates", req.GetTemplate()); err != nil {
			return nil, err
		}
	}
	rec, err := s.App.Create(ctx, acct, req.GetRequestId(), a.GetInstance(), template, d)
	if err != nil {
		return nil, err
	}
	return s.toPB(rec), nil
}

// GetApplication reads an application.
func (s *Server) GetApplication(ctx context.Context, req *applicationv1.GetApplicationRequest) (*applicationv1.Application, error) {
	// The customer, or a service for it (verification, before it stores a
	// document; pkg/callpolicy says which may).
	acct, err := auth.Account(ctx)
	if err != nil {
		return nil, err
	}
	id, err := resname.ID("name", "applications", req.GetName())
	if err != nil {
		return nil, err
	}
	rec, err := s.App.Get(ctx, acct, id)
	if err != nil {
		return nil, err
	}
	return s.toPB(rec), nil
}

// ListApplications lists applications; filter on state.
func (s *Server) ListApplications(ctx context.Context, req *applicationv1.ListApplicationsRequest) (*applicationv1.ListApplicationsResponse, error) {
	acct, err := customer(ctx)
	if err != nil {
		return nil, err
	}
	f, err := filter.Parse(req.GetFilter(), "state")
	if err != nil {
		return nil, apierr.Invalid("filter", "INVALID_FILTER", "%v", err)
	}
	state := f["state"]
	if v, ok := applicationv1.Application_State_value[state]; state != "" && (!ok || v == 0) {
		return nil, apierr.Invalid("filter", "INVALID_FILTER", "unknown state %q; use DRAFT, PENDING_DOMAIN_VERIFICATION, …, ISSUED, VALIDATION_FAILED or WITHDRAWN", state)
	}
	// The token is bound to the account and the filter as given.
	apps, next, err := page.Records(s.Pages, page.Query("ListApplications", acct, req.GetFilter()), req, func(after *docstore.Position, limit int64) ([]*app.Record, bool, error) {
		return s.App.List(ctx, acct, domain.State(state), after, limit)
	}, s.toPB)
	if err != nil {
		return nil, err
	}
	return &applicationv1.ListApplicationsResponse{Applications: apps, NextPageToken: next}, nil
}

// UpdateApplication edits the fields in the mask (all editable ones if
// empty).
func (s *Server) UpdateApplication(ctx context.Context, req *applicationv1.UpdateApplicationRequest) (*applicationv1.Application, error) {
	a := req.GetApplication()
	acct, id, err := target(ctx, a.GetName())
	if err != nil {
		return nil, err
	}
	src, err := detailsIn(a, a.GetCsr())
	if err != nil {
		return nil, err
	}
	paths, err := maskPaths(req.GetUpdateMask().GetPaths())
	if err != nil {
		return nil, err
	}
	rec, err := s.App.Update(ctx, acct, id, a.GetEtag(), func(d *domain.Details) {
		for _, p := range paths {
			editable[p](d, src)
		}
	})
	if err != nil {
		return nil, err
	}
	return s.toPB(rec), nil
}

// SubmitApplication sends the application to the CA.
func (s *Server) SubmitApplication(ctx context.Context, req *applicationv1.SubmitApplicationRequest) (*applicationv1.Application, error) {
	acct, id, err := target(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	rec, err := s.App.Submit(ctx, acct, id)
	if err != nil {
		return nil, err
	}
	return s.toPB(rec), nil
}

// ReissueApplication starts a new certificate for an issued application
// within its subscription (app.Reissue).
func (s *Server) ReissueApplication(ctx context.Context, req *applicationv1.ReissueApplicationRequest) (*applicationv1.Application, error) {
	acct, id, err := target(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	alg, ok := keysIn[req.GetKeyAlgorithm()]
	if !ok {
		return nil, apierr.Invalid("key_algorithm", "UNSUPPORTED_KEY_ALGORITHM", "key_algorithm %v is not offered", req.GetKeyAlgorithm())
	}
	rec, err := s.App.Reissue(ctx, acct, id, domain.Reissue{
		RequestID: req.GetRequestId(), Domains: req.GetDomains(), CSR: req.GetCsr(), KeyAlgorithm: alg,
	})
	if err != nil {
		return nil, err
	}
	return s.toPB(rec), nil
}

// WithdrawApplication cancels the application before issuance.
func (s *Server) WithdrawApplication(ctx context.Context, req *applicationv1.WithdrawApplicationRequest) (*applicationv1.Application, error) {
	acct, id, err := target(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	rec, err := s.App.Withdraw(ctx, acct, id)
	if err != nil {
		return nil, err
	}
	return s.toPB(rec), nil
}

func target(ctx context.Context, name string) (string, string, error) {
	acct, err := customer(ctx)
	if err != nil {
		return "", "", err
	}
	id, err := resname.ID("name", "applications", name)
	return acct, id, err
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

var keysOut = func() map[string]applicationv1.KeyAlgorithm {
	m := map[string]applicationv1.KeyAlgorithm{}
	for k, v := range keysIn {
		m[v] = k
	}
	return m
}()

func (s *Server) toPB(r *app.Record) *applicationv1.Application {
	a := r.Doc
	d := a.Details
	pb := &applicationv1.Application{
		Name:             resname.Name("applications", r.ID),
		Instance:         a.Instance,
		Domains:          d.Domains,
		ValidationMethod: verificationv1.ValidationMethod(verificationv1.ValidationMethod_value["VALIDATION_METHOD_"+string(d.Method)]),
		Applicant:        &applicationv1.Applicant{Name: d.Applicant.Name, Phone: d.Applicant.Phone, Email: d.Applicant.Email, IdNumber: d.Applicant.IDNumber},
		CsrMode:          applicationv1.CsrMode(applicationv1.CsrMode_value["CSR_MODE_"+string(d.CSRMode)]),
		KeyAlgorithm:     keysOut[d.KeyAlgorithm],
		State:            applicationv1.Application_State(applicationv1.Application_State_value[string(a.State)]),
		ProgressPercent:  int32(a.State.Progress()),
		FailureCause:     a.FailureCause,
		Certificate:      a.Certificate,
		ReissueOf:        a.ReissueOf,
		Attempt:          int32(a.Attempt),
		ServiceHoldsKey:  d.CSRMode == domain.Automatic,
		CreateTime:       ts(r.Created),
		UpdateTime:       ts(r.Updated),
		SubmitTime:       ts(a.SubmitTime),
		Etag:             app.Etag(r),
		ApproverMailbox:  d.ApproverMailbox,
		FlaggedWords:     a.FlaggedWords,
		Warnings:         app.Warnings(&a, s.App.Now()),
	}
	if a.State != domain.Issued && a.State != domain.Withdrawn && a.State != domain.ValidationFailed {
		pb.ExpectedIssueTime = ts(a.ExpectedIssueTime)
	}
	pb.Company = companyPB(d.Company)
	for _, c := range a.Challenges {
		pb.Challenges = append(pb.Challenges, &verificationv1.Challenge{
			Name: c.Name, Application: pb.Name, Attempt: int32(a.Attempt), Domain: c.Domain,
			Method:        verificationv1.ValidationMethod(verificationv1.ValidationMethod_value["VALIDATION_METHOD_"+string(c.Method)]),
			State:         verificationv1.Challenge_State(verificationv1.Challenge_State_value[c.State]),
			DnsRecordName: c.RecordName, DnsRecordType: c.RecordType, DnsRecordValue: c.RecordValue,
			HttpUrl: c.HTTPURL, HttpContent: c.HTTPContent, ExpireTime: ts(c.ExpireTime), VerifyTime: ts(c.VerifyTime),
			EmailAddress: c.EmailAddress, RuleVersion: c.RuleVersion, Reused: c.Reused,
		})
	}
	for _, h := range a.History {
		pb.History = append(pb.History, &applicationv1.HistoryEntry{
			State: applicationv1.Application_State(applicationv1.Application_State_value[string(h.State)]),
			Time:  ts(h.Time), Actor: h.Actor, Cause: h.Cause,
		})
	}
	return pb
}

func companyPB(c domain.Company) *applicationv1.Company {
	if c == (domain.Company{}) {
		return nil
	}
	return &applicationv1.Company{
		Name: c.Name, Type: c.Type, Phone: c.Phone, OrganizationId: c.OrganizationID, Country: c.Country,
		Province: c.Province, City: c.City, Address: c.Address, ZipCode: c.ZipCode,
	}
}
