package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/testenv"
	"github.com/certflow/certflow/services/notification/internal/domain"
)

func TestWebhooksDelete(t *testing.T) {
	db, _ := testenv.Database(t)
	s := NewWebhooks(docstore.New[domain.Webhook](db.Collection("webhooks"), "webhook"))
	ctx := context.Background()
	if _, _, err := s.Create(ctx, "w1", "alice", domain.Webhook{URL: "https://example.com/", Secret: "whsec_x"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		account, id string
		want        error
	}{
		{"bob", "w1", apierr.ErrNotFound}, // another account's
		{"alice", "w9", apierr.ErrNotFound},
		{"alice", "w1", nil},
		{"alice", "w1", apierr.ErrNotFound}, // already gone
	}
	for _, tt := range tests {
		if err := s.Delete(ctx, tt.account, tt.id); tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("Delete(%s, %s) = %v; want %v", tt.account, tt.id, err, tt.want)
		}
	}
}

func TestDeliveriesPendingAndDelete(t *testing.T) {
	db, _ := testenv.Database(t)
	s := NewDeliveries(docstore.New[domain.Delivery](db.Collection("webhook_deliveries"), "webhook delivery"))
	ctx := context.Background()
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for _, d := range []struct {
		id, webhook string
		state       domain.DeliveryState
	}{
		{"d1", "w1", domain.DeliveryPending},
		{"d2", "w1", domain.DeliveryDelivered},
		{"d3", "w2", domain.DeliveryPending},
		{"d4", "w2", domain.DeliveryFailed},
	} {
		doc := domain.NewDelivery(d.webhook, "e-"+d.id, "certflow.order.created", []byte(`{}`), at)
		doc.State = d.state
		if _, _, err := s.Create(ctx, d.id, "alice", doc); err != nil {
			t.Fatal(err)
		}
	}
	pending := func() []string {
		t.Helper()
		got, err := s.Pending(ctx)
		if err != nil {
			t.Fatalf("Pending = %v", err)
		}
		var ids []string
		for _, p := range got {
			if !p.NextAttemptTime.Equal(at) {
				t.Errorf("Pending: %s due %v; want %v", p.ID, p.NextAttemptTime, at)
			}
			ids = append(ids, p.ID)
		}
		slices.Sort(ids)
		return ids
	}
	if got := pending(); !slices.Equal(got, []string{"d1", "d3"}) {
		t.Errorf("Pending = %v; want [d1 d3]", got)
	}
	if err := s.DeleteForWebhook(ctx, "w1"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"d1", "d2"} {
		if _, err := s.Get(ctx, "", id); !errors.Is(err, apierr.ErrNotFound) {
			t.Errorf("Get(%s) after DeleteForWebhook(w1) = %v; want NotFound", id, err)
		}
	}
	if err := s.Delete(ctx, "d3"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "d3"); err != nil {
		t.Errorf("Delete(missing) = %v; want nil", err)
	}
	if got := pending(); len(got) != 0 {
		t.Errorf("Pending after deletes = %v; want none", got)
	}
	if _, err := s.Get(ctx, "", "d4"); err != nil {
		t.Errorf("Get(d4 of another webhook) = %v; want it kept", err)
	}
}
