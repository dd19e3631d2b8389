package grpcapi

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	notificationv1 "github.com/certflow/certflow/gen/go/certflow/notification/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/page"
	"github.com/certflow/certflow/pkg/resname"
	"github.com/certflow/certflow/services/notification/internal/domain"
)

// CreateWebhook registers a webhook for the caller's account and returns it
// with its secret, the only time the secret is shown.
func (s *Server) CreateWebhook(ctx context.Context, req *notificationv1.CreateWebhookRequest) (*notificationv1.Webhook, error) {
	acct, err := auth.Account(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetWebhook() == nil {
		return nil, apierr.Invalid("webhook", "WEBHOOK_REQUIRED", "webhook is required, with the url events are POSTed to")
	}
	if len(req.GetRequestId()) > 128 {
		return nil, apierr.Invalid("request_id", "INVALID_REQUEST_ID", "request_id must be at most 128 characters")
	}
	rec, err := s.App.CreateWebhook(ctx, acct, req.GetRequestId(), req.GetWebhook().GetUrl())
	if err != nil {
		return nil, err
	}
	w := webhookPB(rec)
	w.Secret = rec.Doc.Secret
	return w, nil
}

// GetWebhook reads one of the caller's webhooks, without its secret.
func (s *Server) GetWebhook(ctx context.Context, req *notificationv1.GetWebhookRequest) (*notificationv1.Webhook, error) {
	acct, err := auth.Account(ctx)
	if err != nil {
		return nil, err
	}
	id, err := resname.ID("name", "webhooks", req.GetName())
	if err != nil {
		return nil, err
	}
	rec, err := s.App.GetWebhook(ctx, acct, id)
	if err != nil {
		return nil, err
	}
	return webhookPB(rec), nil
}

// ListWebhooks lists the caller's webhooks newest first, without secrets.
func (s *Server) ListWebhooks(ctx context.Context, req *notificationv1.ListWebhooksRequest) (*notificationv1.ListWebhooksResponse, error) {
	acct, err := auth.Account(ctx)
	if err != nil {
		return nil, err
	}
	webhooks, next, err := page.Records(s.Pages, page.Query("ListWebhooks", acct), req, func(after *docstore.Position, limit int64) ([]*docstore.Record[domain.Webhook], bool, error) {
		return s.App.ListWebhooks(ctx, acct, after, limit)
	}, webhookPB)
	if err != nil {
		return nil, err
	}
	return &notificationv1.ListWebhooksResponse{Webhooks: webhooks, NextPageToken: next}, nil
}

// DeleteWebhook deletes one of the caller's webhooks and its deliveries.
func (s *Server) DeleteWebhook(ctx context.Context, req *notificationv1.DeleteWebhookRequest) (*notificationv1.DeleteWebhookResponse, error) {
	acct, err := auth.Account(ctx)
	if err != nil {
		return nil, err
	}
	id, err := resname.ID("name", "webhooks", req.GetName())
	if err != nil {
		return nil, err
	}
	if err := s.App.DeleteWebhook(ctx, acct, id); err != nil {
		return nil, err
	}
	return &notificationv1.DeleteWebhookResponse{}, nil
}

// ListWebhookDeliveries lists the deliveries of one of the caller's
// webhooks, newest first.
func (s *Server) ListWebhookDeliveries(ctx context.Context, req *notificationv1.ListWebhookDeliveriesRequest) (*notificationv1.ListWebhookDeliveriesResponse, error) {
	acct, err := auth.Account(ctx)
	if err != nil {
		return nil, err
	}
	id, err := resname.ID("parent", "webhooks", req.GetParent())
	if err != nil {
		return nil, err
	}
	// The token is bound to the account and the parent: it cannot page
	// another webhook.
	deliveries, next, err := page.Records(s.Pages, page.Query("ListWebhookDeliveries", acct, req.GetParent()), req, func(after *docstore.Position, limit int64) ([]*docstore.Record[domain.Delivery], bool, error) {
		return s.App.ListDeliveries(ctx, acct, id, after, limit)
	}, deliveryPB)
	if err != nil {
		return nil, err
	}
	return &notificationv1.ListWebhookDeliveriesResponse{Deliveries: deliveries, NextPageToken: next}, nil
}

func webhookPB(r *docstore.Record[domain.Webhook]) *notificationv1.Webhook {
	return &notificationv1.Webhook{
		Name:       resname.Name("webhooks", r.ID),
		Url:        r.Doc.URL,
		CreateTime: timestamppb.New(r.Doc.CreateTime),
	}
}

var deliveryStates = map[domain.DeliveryState]notificationv1.WebhookDelivery_State{
	domain.DeliveryPending:   notificationv1.WebhookDelivery_PENDING,
	domain.DeliveryDelivered: notificationv1.WebhookDelivery_DELIVERED,
	domain.DeliveryFailed:    notificationv1.WebhookDelivery_FAILED,
}

func deliveryPB(r *docstore.Record[domain.Delivery]) *notificationv1.WebhookDelivery {
	d := r.Doc
	pb := &notificationv1.WebhookDelivery{
		Name:           resname.Name("webhooks", d.Webhook) + "/deliveries/" + r.ID,
		EventId:        d.EventID,
		EventType:      d.EventType,
		State:          deliveryStates[d.State],
		Attempts:       int32(d.Attempts),
		LastStatusCode: int32(d.LastStatusCode),
		LastError:      d.LastError,
		CreateTime:     timestamppb.New(d.CreateTime),
	}
	if !d.NextAttemptTime.IsZero() {
		pb.NextAttemptTime = timestamppb.New(d.NextAttemptTime)
	}
	if !d.DeliverTime.IsZero() {
		pb.DeliverTime = timestamppb.New(d.DeliverTime)
	}
	return pb
}
