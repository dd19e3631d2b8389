// Package grpcapi maps the notification service's gRPC API to its use
// cases.
package grpcapi

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	notificationv1 "github.com/certflow/certflow/gen/go/certflow/notification/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/filter"
	"github.com/certflow/certflow/pkg/page"
	"github.com/certflow/certflow/pkg/resname"
	"github.com/certflow/certflow/services/notification/internal/app"
	"github.com/certflow/certflow/services/notification/internal/domain"
)

// Server implements notificationv1.NotificationServiceServer.
type Server struct {
	notificationv1.UnimplementedNotificationServiceServer
	App *app.App
	// Pages issues and checks the keyset page tokens of the list methods.
	Pages *page.Keyset
}

// ListNotifications lists the caller's notifications newest first; filter
// `application = "applications/{id}"`.
func (s *Server) ListNotifications(ctx context.Context, req *notificationv1.ListNotificationsRequest) (*notificationv1.ListNotificationsResponse, error) {
	acct, err := auth.Account(ctx)
	if err != nil {
		return nil, err
	}
	f, err := filter.Parse(req.GetFilter(), "application")
	if err != nil {
		return nil, apierr.Invalid("filter", "INVALID_FILTER", "%v", err)
	}
	application, ok := f["application"]
	if ok {
		if _, err := resname.ID("filter", "applications", application); err != nil {
			return nil, apierr.Invalid("filter", "INVALID_FILTER", "application must look like \"applications/{id}\", got %q", application)
		}
	}
	// The token is bound to the account and the filter as given.
	notifications, next, err := page.Records(s.Pages, page.Query("ListNotifications", acct, req.GetFilter()), req, func(after *docstore.Position, limit int64) ([]*docstore.Record[domain.Notification], bool, error) {
		return s.App.ListNotifications(ctx, acct, application, after, limit)
	}, notificationPB)
	if err != nil {
		return nil, err
	}
	return &notificationv1.ListNotificationsResponse{Notifications: notifications, NextPageToken: next}, nil
}

// GetNotification reads one of the caller's notifications.
func (s *Server) GetNotification(ctx context.Context, req *notificationv1.GetNotificationRequest) (*notificationv1.Notification, error) {
	acct, err := auth.Account(ctx)
	if err != nil {
		return nil, err
	}
	id, err := resname.ID("name", "notifications", req.GetName())
	if err != nil {
		return nil, err
	}
	rec, err := s.App.GetNotification(ctx, acct, id)
	if err != nil {
		return nil, err
	}
	return notificationPB(rec), nil
}

// PENDING has no API value: it shows as STATE_UNSPECIFIED.
var states = map[domain.State]notificationv1.Notification_State{
	domain.Sent:   notificationv1.Notification_SENT,
	domain.Failed: notificationv1.Notification_FAILED,
}

var channels = map[domain.Channel]notificationv1.Channel{
	domain.Email: notificationv1.Channel_CHANNEL_EMAIL,
	domain.SMS:   notificationv1.Channel_CHANNEL_SMS,
}

func notificationPB(r *docstore.Record[domain.Notification]) *notificationv1.Notification {
	n := r.Doc
	return &notificationv1.Notification{
		Name:        resname.Name("notifications", r.ID),
		Channel:     channels[n.Channel],
		Recipient:   n.Recipient,
		Subject:     n.Subject,
		Body:        n.Body,
		EventType:   n.EventType,
		EventId:     n.EventID,
		Application: n.Application,
		State:       states[n.State],
		Error:       n.Error,
		CreateTime:  timestamppb.New(n.CreateTime),
	}
}
