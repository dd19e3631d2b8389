package service

import (
	"context"
	"time"

	verificationv1 "github.com/certflow/certflow/gen/go/certflow/verification/v1"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/page"
	"github.com/certflow/certflow/pkg/service"
	"github.com/certflow/certflow/services/verification/internal/grpcapi"
	"github.com/certflow/certflow/services/verification/internal/orgval"
	"github.com/certflow/certflow/services/verification/internal/orgval/orgapp"
	"github.com/certflow/certflow/services/verification/internal/orgval/orgstore"
)

// startOrgValidation makes the organization validation stores, registers
// the ReviewService, and returns the document use cases for the
// VerificationService's document methods.
//
// The documents collection is kept out of the outbox relay: its records
// carry no events and hold up to 500 KB each, and the relay's sweep scans
// every collection it watches. Records there are written once and never
// updated, so they need no single-writer option either.
func startOrgValidation(ctx context.Context, b *service.Base, apps orgapp.Applications, pages *page.Keyset, now func() time.Time) (*orgapp.Documents, *orgapp.Reviews, error) {
	docs := orgstore.Documents{Store: docstore.New[orgval.Document](b.DB.Collection("documents"), "document", b.StoreOptions(now)...)}
	lists := docstore.New[orgval.DocumentList](b.DB.Collection("document_lists"), "document list", b.StoreOptions(now)...)
	reviews := orgstore.Reviews{Store: docstore.New[orgval.Review](b.DB.Collection("reviews"), "review",
		append(b.OutboxStoreOptions(now), orgstore.ReviewStoreOptions()...)...)}
	// Each application's reviews are found through its index record, by
	// _id (orgapp.Reviews.Cancel); it carries no events.
	reviewIndexes := docstore.New[orgval.ReviewIndex](b.DB.Collection("review_indexes"), "review index", b.StoreOptions(now)...)
	orgs := docstore.New[orgval.OrganizationApproval](b.DB.Collection("organizations"), "organization", b.StoreOptions(now)...)
	if err := docs.EnsureIndexes(ctx); err != nil {
		return nil, nil, err
	}
	if err := lists.EnsureIndexes(ctx); err != nil {
		return nil, nil, err
	}
	if err := reviews.EnsureIndexes(ctx); err != nil {
		return nil, nil, err
	}
	if err := orgs.EnsureIndexes(ctx); err != nil {
		return nil, nil, err
	}
	if err := orgapp.BuildReviewIndexes(ctx, reviews, reviewIndexes); err != nil {
		return nil, nil, err
	}
	documents := orgapp.NewDocuments(docs, lists, apps, now, b.Log)
	rs := orgapp.NewReviews(reviews, reviewIndexes, orgs, documents, now, b.Log)
	b.GRPC.Register(&verificationv1.ReviewService_ServiceDesc, &grpcapi.ReviewServer{Reviews: rs, Pages: pages})
	return documents, rs, nil
}
