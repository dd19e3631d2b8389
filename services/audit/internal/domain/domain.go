// Package domain is the audit trail's records and the rules of reading
// them. It knows no gRPC, Mongo or NATS.
package domain

import (
	"context"
	"fmt"
	"time"
)

// Record is one recorded action. It is never changed or deleted.
type Record struct {
	// ID is the id of the event that carried it: a redelivered event
	// finds its record already there.
	ID           string
	Account      string
	Actor        string
	ActorAccount string
	Role         string
	Action       string
	Resource     string
	Source       string
	RequestID    string
	Time         time.Time
}

// Check refuses a record that cannot be one.
func (r Record) Check() error {
	switch {
	case r.ID == "":
		return fmt.Errorf("audit record without an id")
	case r.Account == "" || r.Action == "" || r.Resource == "":
		return fmt.Errorf("audit record %s lacks its account, action or resource", r.ID)
	case r.Time.IsZero():
		return fmt.Errorf("audit record %s has no time", r.ID)
	}
	return nil
}

// Query selects records; zero fields select all. Account "" is every
// account (reviewers only; the API decides).
type Query struct {
	Account, Action, Resource, Actor string
	// Lower and Upper bound Time; LowerOp is ">" or ">=", UpperOp "<" or
	// "<=" (empty: unbounded).
	LowerOp, UpperOp string
	Lower, Upper     time.Time
}

// Position is a record's place in the newest-first order.
type Position struct {
	Time time.Time
	ID   string
}

// Trail is the append-only store: it can add a record and list them,
// nothing else.
type Trail interface {
	// Append stores r unless a record with its id is stored already.
	Append(ctx context.Context, r Record) error
	// List returns records newest first after the position (nil: from
	// the newest), and whether more follow.
	List(ctx context.Context, q Query, after *Position, limit int64) ([]Record, bool, error)
}
