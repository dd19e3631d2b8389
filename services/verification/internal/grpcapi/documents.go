package grpcapi

import (
	"context"
	"slices"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	verificationv1 "github.com/certflow/certflow/gen/go/certflow/verification/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/page"
	"github.com/certflow/certflow/pkg/resname"
	"github.com/certflow/certflow/services/verification/internal/orgval"
)

// Documents is the qualification documents' use cases
// (orgapp.Documents).
type Documents interface {
	Upload(ctx context.Context, account, application, displayName string, content []byte) (orgval.ListedDocument, error)
	List(ctx context.Context, account, application string) ([]orgval.ListedDocument, error)
	Get(ctx context.Context, account, application, id string) (*docstore.Record[orgval.Document], error)
}

// UploadDocument stores a qualification image for one of the customer's
// applications.
func (s *Server) UploadDocument(ctx context.Context, req *verificationv1.UploadDocumentRequest) (*verificationv1.Document, error) {
	p, err := auth.Require(ctx, auth.Customer)
	if err != nil {
		return nil, err
	}
	if _, err := resname.ID("parent", "applications", req.GetParent()); err != nil {
		return nil, err
	}
	d := req.GetDocument()
	if d == nil {
		return nil, apierr.Invalid("document", "MISSING_FIELD", "document is required: give its content (a PNG or JPEG image of at most 500 KB) and a display_name")
	}
	got, err := s.Documents.Upload(ctx, p.Account, req.GetParent(), d.GetDisplayName(), d.GetContent())
	if err != nil {
		return nil, err
	}
	return DocumentPB(got.ID, got.Document), nil
}

// ListDocuments lists the caller's documents of an application, oldest
// first, without content. Reviewers see documents through GetReview, which
// scopes them to the review's account.
func (s *Server) ListDocuments(ctx context.Context, req *verificationv1.ListDocumentsRequest) (*verificationv1.ListDocumentsResponse, error) {
	p, err := auth.Require(ctx, auth.Customer, auth.System)
	if err != nil {
		return nil, err
	}
	if _, err := resname.ID("parent", "applications", req.GetParent()); err != nil {
		return nil, err
	}
	// Documents.List returns them all (at most 20, one read by _id); the
	// page is cut here, after the token's document. The token is bound to
	// the account and the parent.
	query := "documents\x00" + p.Account + "\x00" + req.GetParent()
	docs, next, err := page.ListKeyset(s.Pages, query, req, func(after *page.Cursor, limit int64) ([]orgval.ListedDocument, bool, error) {
		all, err := s.Documents.List(ctx, p.Account, req.GetParent())
		if err != nil {
			return nil, false, err
		}
		if after != nil {
			// Documents are never removed, so the token's is still listed.
			i := slices.IndexFunc(all, func(d orgval.ListedDocument) bool { return d.ID == after.ID })
			if i < 0 {
				return nil, false, apierr.Invalid("page_token", "INVALID_PAGE_TOKEN", "page_token is not valid for this query; start again without it")
			}
			all = all[i+1:]
		}
		if int64(len(all)) > limit {
			return all[:limit], true, nil
		}
		return all, false, nil
	}, func(d orgval.ListedDocument) page.Cursor {
		return page.Cursor{Time: d.Document.CreateTime, ID: d.ID}
	}, func(d orgval.ListedDocument) *verificationv1.Document { return DocumentPB(d.ID, d.Document) })
	if err != nil {
		return nil, err
	}
	return &verificationv1.ListDocumentsResponse{Documents: docs, NextPageToken: next}, nil
}

// GetDocument reads a document with its content: the owner's, or any
// account's for a reviewer.
func (s *Server) GetDocument(ctx context.Context, req *verificationv1.GetDocumentRequest) (*verificationv1.Document, error) {
	p, err := auth.Require(ctx, auth.Customer, auth.System, auth.Reviewer)
	if err != nil {
		return nil, err
	}
	parent, id, err := documentName(req.GetName())
	if err != nil {
		return nil, err
	}
	account := p.Account
	if p.Role == auth.Reviewer {
		account = ""
	}
	rec, err := s.Documents.Get(ctx, account, parent, id)
	if err != nil {
		return nil, err
	}
	pb := DocumentPB(rec.ID, rec.Doc)
	pb.Content = rec.Doc.Content
	return pb, nil
}

// documentName splits applications/{application}/documents/{document}.
func documentName(name string) (parent, id string, err error) {
	parts := strings.Split(name, "/")
	if len(parts) != 4 || parts[0] != "applications" || parts[2] != "documents" ||
		!validID(parts[1]) || !validID(parts[3]) {
		return "", "", apierr.Invalid("name", "INVALID_NAME", "name must look like applications/{application}/documents/{document}, got %q", name)
	}
	return parts[0] + "/" + parts[1], parts[3], nil
}

func validID(id string) bool {
	return id != "" && len(id) <= 128 && !strings.ContainsAny(id, " \t\n")
}

// DocumentPB renders a document's metadata (no content).
func DocumentPB(id string, d orgval.Document) *verificationv1.Document {
	return &verificationv1.Document{
		Name:        d.Application + "/documents/" + id,
		DisplayName: d.DisplayName,
		ContentType: d.ContentType,
		SizeBytes:   d.Size,
		Sha256:      d.SHA256,
		Width:       int32(d.Width),
		Height:      int32(d.Height),
		CreateTime:  timestamppb.New(d.CreateTime),
	}
}
