package grpcapi

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	applicationv1 "github.com/certflow/certflow/gen/go/certflow/application/v1"
	verificationv1 "github.com/certflow/certflow/gen/go/certflow/verification/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/page"
	"github.com/certflow/certflow/pkg/resname"
	"github.com/certflow/certflow/services/application/internal/app"
	"github.com/certflow/certflow/services/application/internal/domain"
)

// CreateTemplate saves application details for later use.
func (s *Server) CreateTemplate(ctx context.Context, req *applicationv1.CreateTemplateRequest) (*applicationv1.Template, error) {
	acct, err := customer(ctx)
	if err != nil {
		return nil, err
	}
	t := req.GetTemplate()
	if t == nil {
		return nil, apierr.Invalid("template", "MISSING_FIELD", "template is required")
	}
	d, err := detailsIn(t, "")
	if err != nil {
		return nil, err
	}
	rec, err := s.App.CreateTemplate(ctx, acct, req.GetRequestId(), domain.Template{DisplayName: t.GetDisplayName(), Details: d})
	if err != nil {
		return nil, err
	}
	return templatePB(rec), nil
}

// GetTemplate reads a template.
func (s *Server) GetTemplate(ctx context.Context, req *applicationv1.GetTemplateRequest) (*applicationv1.Template, error) {
	acct, id, err := templateTarget(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	rec, err := s.App.GetTemplate(ctx, acct, id)
	if err != nil {
		return nil, err
	}
	return templatePB(rec), nil
}

// ListTemplates lists templates newest first.
func (s *Server) ListTemplates(ctx context.Context, req *applicationv1.ListTemplatesRequest) (*applicationv1.ListTemplatesResponse, error) {
	acct, err := customer(ctx)
	if err != nil {
		return nil, err
	}
	templates, next, err := page.Records(s.Pages, page.Query("ListTemplates", acct), req, func(after *docstore.Position, limit int64) ([]*app.TemplateRecord, bool, error) {
		return s.App.ListTemplates(ctx, acct, after, limit)
	}, templatePB)
	if err != nil {
		return nil, err
	}
	return &applicationv1.ListTemplatesResponse{Templates: templates, NextPageToken: next}, nil
}

// DeleteTemplate deletes a template.
func (s *Server) DeleteTemplate(ctx context.Context, req *applicationv1.DeleteTemplateRequest) (*applicationv1.DeleteTemplateResponse, error) {
	acct, id, err := templateTarget(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	if err := s.App.DeleteTemplate(ctx, acct, id); err != nil {
		return nil, err
	}
	return &applicationv1.DeleteTemplateResponse{}, nil
}

func templateTarget(ctx context.Context, name string) (string, string, error) {
	acct, err := customer(ctx)
	if err != nil {
		return "", "", err
	}
	id, err := resname.ID("name", "templates", name)
	return acct, id, err
}

func templatePB(r *app.TemplateRecord) *applicationv1.Template {
	d := r.Doc.Details
	pb := &applicationv1.Template{
		Name:             resname.Name("templates", r.ID),
		DisplayName:      r.Doc.DisplayName,
		Domains:          d.Domains,
		ValidationMethod: verificationv1.ValidationMethod(verificationv1.ValidationMethod_value["VALIDATION_METHOD_"+string(d.Method)]),
		CsrMode:          applicationv1.CsrMode(applicationv1.CsrMode_value["CSR_MODE_"+string(d.CSRMode)]),
		KeyAlgorithm:     keysOut[d.KeyAlgorithm],
		ApproverMailbox:  d.ApproverMailbox,
		Company:          companyPB(d.Company),
		CreateTime:       timestamppb.New(r.Doc.CreateTime),
	}
	if a := d.Applicant; a != (domain.Applicant{}) {
		pb.Applicant = &applicationv1.Applicant{Name: a.Name, Phone: a.Phone, Email: a.Email, IdNumber: a.IDNumber}
	}
	return pb
}
