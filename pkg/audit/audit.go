// Package audit builds the audit records of customer and reviewer actions.
// A service appends the record to the outbox of the same document write as
// the change the action made (pkg/docstore), so an action is never done
// without its record nor recorded without being done. The audit service
// stores them; audit teams read them on certflow.audit.>.
package audit

import (
	"context"
	"time"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/events"
)

// Actions, as recorded and as the last part of the subject.
const (
	ApplicationCreate      = "application.create"
	ApplicationUpdate      = "application.update"
	ApplicationSubmit      = "application.submit"
	ApplicationWithdraw    = "application.withdraw"
	ApplicationReissue     = "application.reissue"
	ReviewApprove          = "review.approve"
	ReviewReject           = "review.reject"
	ReviewPhoneCall        = "review.phone_call"
	CertificateRevoke      = "certificate.revoke"
	CertificateKeyDownload = "certificate.key_download"
)

// Recorded reports whether ctx's caller is one whose actions are recorded:
// a customer or a reviewer (through the gateway). The system acting on its
// own or for an account is not.
func Recorded(ctx context.Context) (auth.Principal, bool) {
	p, ok := auth.From(ctx)
	return p, ok && (p.Role == auth.Customer || p.Role == auth.Reviewer)
}

// Record returns the audit record of action on resource, a resource of
// account, by ctx's caller at now, with ce-source source; ok is false (and
// the event empty) when the caller's actions are not recorded.
func Record(ctx context.Context, source, action, account, resource string, now time.Time) (ev events.Event, ok bool, err error) {
	p, ok := Recorded(ctx)
	if !ok {
		return events.Event{}, false, nil
	}
	ev, err = events.Stamp(events.AuditSubject(action), source, resource, now, &eventsv1.AuditEvent{
		Account: account, Actor: p.Actor, ActorAccount: p.Account, Role: string(p.Role),
		Action: action, Resource: resource, Source: p.Source, RequestId: p.RequestID,
	})
	return ev, err == nil, err
}

// Append returns evs with the audit record of action (see Record) added
// when ctx's caller is recorded: the form an Update closure returns.
func Append(ctx context.Context, evs []events.Event, source, action, account, resource string, now time.Time) ([]events.Event, error) {
	ev, ok, err := Record(ctx, source, action, account, resource, now)
	if err != nil || !ok {
		return evs, err
	}
	return append(evs, ev), nil
}
