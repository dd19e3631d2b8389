package app

import (
	"context"

	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/services/application/internal/domain"
)

// TemplateRecord is a stored template.
type TemplateRecord = docstore.Record[domain.Template]

// Templates is the template repository.
type Templates interface {
	Create(ctx context.Context, id, account string, doc domain.Template, evs ...events.Event) (*TemplateRecord, bool, error)
	Get(ctx context.Context, account, id string) (*TemplateRecord, error)
	List(ctx context.Context, account string, o docstore.ListOptions) ([]*TemplateRecord, bool, error)
	Delete(ctx context.Context, account, id string) error
}

// CreateTemplate saves application details for later use.
func (a *App) CreateTemplate(ctx context.Context, account, requestID string, t domain.Template) (*TemplateRecord, error) {
	t, err := t.Normalize(a.now())
	if err != nil {
		return nil, err
	}
	id := docstore.NewID()
	if requestID != "" {
		id = docstore.IDFor(account, "template/"+requestID)
	}
	rec, _, err := a.templates.Create(ctx, id, account, t)
	return rec, err
}

// GetTemplate reads a template.
func (a *App) GetTemplate(ctx context.Context, account, id string) (*TemplateRecord, error) {
	return a.templates.Get(ctx, account, id)
}

// ListTemplates lists templates newest first, those after the position
// after (nil: from the newest).
func (a *App) ListTemplates(ctx context.Context, account string, after *docstore.Position, limit int64) ([]*TemplateRecord, bool, error) {
	return a.templates.List(ctx, account, docstore.ListOptions{After: after, Limit: limit})
}

// DeleteTemplate deletes a template.
func (a *App) DeleteTemplate(ctx context.Context, account, id string) error {
	return a.templates.Delete(ctx, account, id)
}
