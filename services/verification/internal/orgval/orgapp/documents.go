// Package orgapp is organization validation's use cases: qualification
// documents (upload, list, read) and reviews (open, queue, phone calls,
// decisions, cancel, reuse of an organization's approval), each saved with
// its events in the same write.
package orgapp

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/services/verification/internal/orgval"
)

const source = "//certflow/verification"

// DocumentStore keeps uploaded documents, content included.
type DocumentStore interface {
	Create(ctx context.Context, id, account string, doc orgval.Document, evs ...events.Event) (*docstore.Record[orgval.Document], bool, error)
	Get(ctx context.Context, account, id string) (*docstore.Record[orgval.Document], error)
	Delete(ctx context.Context, id string) error
}

// DocumentListStore keeps each application's list of documents.
type DocumentListStore interface {
	Create(ctx context.Context, id, account string, doc orgval.DocumentList, evs ...events.Event) (*docstore.Record[orgval.DocumentList], bool, error)
	Get(ctx context.Context, account, id string) (*docstore.Record[orgval.DocumentList], error)
	Update(ctx context.Context, account, id string, fn docstore.Mutation[orgval.DocumentList]) (*docstore.Record[orgval.DocumentList], error)
}

// Documents runs the document use cases.
type Documents struct {
	docs  DocumentStore
	lists DocumentListStore
	apps  Applications
	now   func() time.Time
	log   *slog.Logger
}

// Applications says whether documents may be added to an application: it
// exists in the account and is still open. Without it a customer could
// make document lists for names that are no application at all, and the
// stored data would grow with nothing to bound it.
type Applications interface {
	AcceptsDocuments(ctx context.Context, account, application string) error
	// Exists is nil when the application is the account's, NotFound
	// otherwise.
	Exists(ctx context.Context, account, application string) error
}

// NewDocuments returns the document use cases.
func NewDocuments(docs DocumentStore, lists DocumentListStore, apps Applications, now func() time.Time, log *slog.Logger) *Documents {
	return &Documents{docs: docs, lists: lists, apps: apps, now: now, log: log}
}

// listID is the id of an account's document list for an application.
func listID(account, application string) string {
	return docstore.IDFor(account, application+"/documents")
}

// Upload checks and stores a document for one of the account's
// applications and returns its id and metadata. The same content uploaded
// again to the same application returns the document already stored: the
// request has no request_id, and this makes a retried upload harmless.
func (d *Documents) Upload(ctx context.Context, account, application, displayName string, content []byte) (orgval.ListedDocument, error) {
	doc, err := orgval.NewDocument(application, displayName, content, d.now())
	if err != nil {
		return orgval.ListedDocument{}, err
	}
	if err := d.apps.AcceptsDocuments(ctx, account, application); err != nil {
		return orgval.ListedDocument{}, err
	}
	list, err := d.ensureList(ctx, account, application)
	if err != nil {
		return orgval.ListedDocument{}, err
	}
	if dup, ok := list.Doc.Find(doc.SHA256); ok {
		return dup, nil
	}
	if err := list.Doc.CheckRoom(); err != nil {
		return orgval.ListedDocument{}, err
	}
	// The content is written first and listed second: a crash in between
	// leaves an unlisted record nobody has the id of, never a listed
	// document without content.
	id := docstore.NewID()
	if _, _, err := d.docs.Create(ctx, id, account, doc); err != nil {
		return orgval.ListedDocument{}, err
	}
	var dup *orgval.ListedDocument
	_, err = d.lists.Update(ctx, account, list.ID, func(l *orgval.DocumentList) ([]events.Event, error) {
		if e, ok := l.Find(doc.SHA256); ok { // a concurrent upload of the same content
			dup = &e
			return nil, docstore.ErrUnchanged
		}
		if _, err := l.Add(id, doc); err != nil {
			return nil, err
		}
		return nil, nil
	})
	if err != nil || dup != nil {
		if derr := d.docs.Delete(context.WithoutCancel(ctx), id); derr != nil {
			d.log.Warn("unlisted document left behind", "document", id, "err", derr)
		}
	}
	switch {
	case err != nil:
		return orgval.ListedDocument{}, err
	case dup != nil:
		return *dup, nil
	}
	return orgval.ListedDocument{ID: id, Document: doc.Meta()}, nil
}

func (d *Documents) ensureList(ctx context.Context, account, application string) (*docstore.Record[orgval.DocumentList], error) {
	id := listID(account, application)
	rec, err := d.lists.Get(ctx, account, id)
	if errors.Is(err, apierr.ErrNotFound) {
		rec, _, err = d.lists.Create(ctx, id, account, orgval.DocumentList{Application: application})
	}
	return rec, err
}

// List returns an account's documents of an application, oldest first,
// without content: one read by _id.
func (d *Documents) List(ctx context.Context, account, application string) ([]orgval.ListedDocument, error) {
	rec, err := d.lists.Get(ctx, account, listID(account, application))
	if errors.Is(err, apierr.ErrNotFound) {
		// No documents yet, or no such application of the account: the
		// second is NotFound, as for every other name of another account.
		return nil, d.apps.Exists(ctx, account, application)
	}
	if err != nil {
		return nil, err
	}
	return rec.Doc.Documents, nil
}

// Get reads a document of an application with its content. account is the
// owner's, or "" for a reviewer, who may read any account's documents.
func (d *Documents) Get(ctx context.Context, account, application, id string) (*docstore.Record[orgval.Document], error) {
	rec, err := d.docs.Get(ctx, account, id)
	if err != nil {
		return nil, err
	}
	if rec.Doc.Application != application {
		return nil, apierr.NotFoundf("document " + application + "/documents/" + id)
	}
	return rec, nil
}
