package grpcapi

import (
	"context"
	"time"

	notificationv1 "github.com/certflow/certflow/gen/go/certflow/notification/v1"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/services/notification/internal/app"
)

// SendDomainValidationEmail mails an EMAIL challenge's code. Only a service
// acting for the account (the verification service) may ask: a customer or
// reviewer, through the gateway, is refused, so the code cannot be mailed
// to an address of the caller's choosing, nor sent anywhere but in the mail.
func (s *Server) SendDomainValidationEmail(ctx context.Context, req *notificationv1.SendDomainValidationEmailRequest) (*notificationv1.SendDomainValidationEmailResponse, error) {
	p, err := auth.Require(ctx, auth.System)
	if err != nil {
		return nil, err
	}
	var expires time.Time
	if req.GetExpireTime() != nil {
		expires = req.GetExpireTime().AsTime()
	}
	rec, err := s.App.SendDomainValidationEmail(ctx, p.Account, app.DomainValidationEmail{
		RequestID: req.GetRequestId(), Challenge: req.GetChallenge(), Application: req.GetApplication(),
		Domain: req.GetDomain(), Recipient: req.GetRecipient(), Code: req.GetCode(), ExpireTime: expires,
	})
	if err != nil {
		return nil, err
	}
	return &notificationv1.SendDomainValidationEmailResponse{Notification: notificationPB(rec)}, nil
}
