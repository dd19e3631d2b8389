// Package grpcapi serves the audit trail over gRPC.
package grpcapi

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/certflow/certflow/gen/go/certflow/audit/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/filter"
	"github.com/certflow/certflow/pkg/page"
	"github.com/certflow/certflow/services/audit/internal/app"
	"github.com/certflow/certflow/services/audit/internal/domain"
)

// Server implements AuditService.
type Server struct {
	auditv1.UnimplementedAuditServiceServer
	App *app.App
	// Pages issues and checks the keyset page tokens.
	Pages *page.Keyset
}

// ListAuditEvents lists the trail newest first: a customer its own
// account's, a reviewer every account's (or one, with account = ...).
func (s *Server) ListAuditEvents(ctx context.Context, req *auditv1.ListAuditEventsRequest) (*auditv1.ListAuditEventsResponse, error) {
	p, err := auth.Require(ctx, auth.Customer, auth.Reviewer)
	if err != nil {
		return nil, err
	}
	q, err := parseFilter(req.GetFilter(), p.Role == auth.Reviewer)
	if err != nil {
		return nil, err
	}
	if p.Role == auth.Customer {
		q.Account = p.Account
	}
	// The token is bound to who asks and the filter as given.
	query := string(p.Role) + "\x00" + p.Account + "\x00" + req.GetFilter()
	out, next, err := page.ListKeyset(s.Pages, query, req, func(after *page.Cursor, limit int64) ([]domain.Record, bool, error) {
		var pos *domain.Position
		if after != nil {
			pos = &domain.Position{Time: after.Time, ID: after.ID}
		}
		return s.App.List(ctx, q, pos, limit)
	}, func(r domain.Record) page.Cursor {
		return page.Cursor{Time: r.Time, ID: r.ID}
	}, recordPB)
	if err != nil {
		return nil, err
	}
	return &auditv1.ListAuditEventsResponse{AuditEvents: out, NextPageToken: next}, nil
}

var fields = filter.Fields{"action": nil, "resource": nil, "actor": nil, "account": nil, "time": {"<", "<=", ">", ">="}}

// parseFilter parses a ListAuditEvents filter (the grammar is in
// ListAuditEventsRequest.filter).
func parseFilter(s string, reviewer bool) (domain.Query, error) {
	terms, err := filter.ParseRanges(s, fields, "time")
	if err != nil {
		return domain.Query{}, apierr.Invalid("filter", "INVALID_FILTER", "%v", err)
	}
	var q domain.Query
	for _, t := range terms {
		switch t.Field {
		case "action":
			q.Action = t.Value
		case "resource":
			q.Resource = t.Value
		case "actor":
			q.Actor = t.Value
		case "account":
			if !reviewer {
				// Refused rather than ignored: a customer asking for
				// another account must not read an empty answer as "none".
				return domain.Query{}, apierr.Invalid("filter", "INVALID_FILTER", "%v",
					filter.At(s, t, "account is a reviewer's filter; a customer's key lists its own account's records only, so leave it out"))
			}
			q.Account = t.Value
		case "time":
			at, err := time.Parse(time.RFC3339, t.Value)
			if err != nil {
				return domain.Query{}, apierr.Invalid("filter", "INVALID_FILTER", "%v", filter.At(s, t, "time needs an RFC 3339 time such as \"2026-12-01T00:00:00Z\", got %q", t.Value))
			}
			if t.Op == ">" || t.Op == ">=" {
				q.LowerOp, q.Lower = t.Op, at
			} else {
				q.UpperOp, q.Upper = t.Op, at
			}
		}
	}
	return q, nil
}

func recordPB(r domain.Record) *auditv1.AuditEvent {
	return &auditv1.AuditEvent{
		Name: "auditEvents/" + r.ID, Account: r.Account, Actor: r.Actor, ActorAccount: r.ActorAccount, Role: r.Role,
		Action: r.Action, Resource: r.Resource, Source: r.Source, RequestId: r.RequestID, Time: timestamppb.New(r.Time),
	}
}
