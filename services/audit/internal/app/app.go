// Package app is the audit service's use cases: record an audit event once,
// list the trail.
package app

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/services/audit/internal/domain"
)

// App runs the use cases.
type App struct{ trail domain.Trail }

// New returns the use cases over trail.
func New(trail domain.Trail) *App { return &App{trail: trail} }

// Handle stores the record an audit event carries. The action must be the
// one its subject names: NATS lets each service publish only its own
// actions' subjects (pkg/events.Publishes), so a record naming another
// action would be one service writing another's trail. A record that cannot
// be read is dropped (redelivering it cannot help); one stored already is
// left alone.
func (a *App) Handle(ctx context.Context, ev events.Event) error {
	var m eventsv1.AuditEvent
	if err := proto.Unmarshal(ev.Data, &m); err != nil {
		return events.Permanent(fmt.Errorf("audit event %s: %w", ev.ID, err))
	}
	if ev.Type != events.AuditSubject(m.GetAction()) || m.GetEventId() != ev.ID {
		return events.Permanent(fmt.Errorf("audit event %s on %s records %q as %s: refused", ev.ID, ev.Type, m.GetAction(), m.GetEventId()))
	}
	r := domain.Record{
		ID: ev.ID, Account: m.GetAccount(), Actor: m.GetActor(), ActorAccount: m.GetActorAccount(), Role: m.GetRole(),
		Action: m.GetAction(), Resource: m.GetResource(), Source: m.GetSource(), RequestID: m.GetRequestId(),
	}
	if m.GetOccurredAt() != nil {
		r.Time = m.GetOccurredAt().AsTime()
	}
	if err := r.Check(); err != nil {
		return events.Permanent(err)
	}
	return a.trail.Append(ctx, r)
}

// List lists the trail newest first.
func (a *App) List(ctx context.Context, q domain.Query, after *domain.Position, limit int64) ([]domain.Record, bool, error) {
	return a.trail.List(ctx, q, after, limit)
}
