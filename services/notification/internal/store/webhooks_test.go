package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/sealbox"
	"github.com/certflow/certflow/pkg/testenv"
	"github.com/certflow/certflow/services/notification/internal/domain"
)

func testBox(t *testing.T) *sealbox.Box {
	t.Helper()
	b, err := sealbox.New(bytes.Repeat([]byte{5}, sealbox.KEKSize))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWebhookSecretsSealed: the stored document never holds the secret;
// Get and a retried Create open it; List leaves it out. A record of an
// earlier version, with the secret in the clear, is read as is and sealed
// by SealSecrets.
func TestWebhookSecretsSealed(t *testing.T) {
	db, _ := testenv.Database(t)
	coll := db.Collection("webhooks")
	s := NewWebhooks(docstore.New[domain.Webhook](coll, "webhook"), testBox(t))
	ctx := context.Background()
	secret := domain.NewSecret()
	rec, _, err := s.Create(ctx, "w1", "alice", domain.Webhook{URL: "https://example.com/", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Doc.Secret != secret {
		t.Fatalf("Create returned secret %q; want the one made", rec.Doc.Secret)
	}
	raw := func(id string) string {
		var doc bson.M
		if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&doc); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(doc)
	}
	if strings.Contains(raw("w1"), secret) || strings.Contains(raw("w1"), secret[len(domain.SecretPrefix):]) {
		t.Fatalf("stored webhook holds its secret: %s", raw("w1"))
	}
	if got, err := s.Get(ctx, "alice", "w1"); err != nil || got.Doc.Secret != secret {
		t.Fatalf("Get = %v, %v; want the secret opened", got, err)
	}
	if again, created, err := s.Create(ctx, "w1", "alice", domain.Webhook{URL: "https://example.com/", Secret: domain.NewSecret()}); err != nil || created || again.Doc.Secret != secret {
		t.Fatalf("Create again = %v, %v, %v; want the first secret", again, created, err)
	}
	list, _, err := s.List(ctx, "alice", docstore.ListOptions{Limit: 10})
	if err != nil || len(list) != 1 || list[0].Doc.Secret != "" || list[0].Doc.SealedSecret != nil {
		t.Fatalf("List = %v, %v; want one webhook without its secret", list, err)
	}
	// Another KEK cannot open it.
	other, _ := sealbox.New(bytes.Repeat([]byte{6}, sealbox.KEKSize))
	if _, err := NewWebhooks(docstore.New[domain.Webhook](coll, "webhook"), other).Get(ctx, "alice", "w1"); !errors.Is(err, sealbox.ErrOpen) {
		t.Errorf("Get under another KEK = %v; want sealbox.ErrOpen", err)
	}

	// An earlier version's record, written without sealing.
	legacy := domain.NewSecret()
	if _, _, err := docstore.New[domain.Webhook](coll, "webhook").Create(ctx, "w2", "bob", domain.Webhook{URL: "https://example.org/", Secret: legacy}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, "bob", "w2"); err != nil || got.Doc.Secret != legacy {
		t.Fatalf("Get(legacy) = %v, %v; want its clear secret", got, err)
	}
	if n, err := s.SealSecrets(ctx); err != nil || n != 1 {
		t.Fatalf("SealSecrets = %d, %v; want 1 sealed", n, err)
	}
	if strings.Contains(raw("w2"), legacy) {
		t.Fatalf("legacy webhook still holds its secret: %s", raw("w2"))
	}
	if got, err := s.Get(ctx, "bob", "w2"); err != nil || got.Doc.Secret != legacy {
		t.Fatalf("Get(sealed legacy) = %v, %v; want the same secret", got, err)
	}
	if n, err := s.SealSecrets(ctx); err != nil || n != 0 {
		t.Errorf("SealSecrets again = %d, %v; want nothing to do", n, err)
	}
}

func TestWebhooksDelete(t *testing.T) {
	db, _ := testenv.Database(t)
	s := NewWebhooks(docstore.New[domain.Webhook](db.Collection("webhooks"), "webhook"), testBox(t))
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

func TestDeliveriesDueAndDelete(t *testing.T) {
	db, _ := testenv.Database(t)
	s := NewDeliveries(docstore.New[domain.Delivery](db.Collection("webhook_deliveries"), "webhook delivery"))
	ctx := context.Background()
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for _, d := range []struct {
		id, webhook, account string
		state                domain.DeliveryState
		due                  time.Duration
	}{
		{"d1", "w1", "alice", domain.DeliveryPending, 0},
		{"d2", "w1", "alice", domain.DeliveryDelivered, 0},
		{"d3", "w2", "bob", domain.DeliveryPending, 0},
		{"d4", "w2", "bob", domain.DeliveryFailed, 0},
		{"d5", "w2", "bob", domain.DeliveryPending, time.Minute},
		{"d0", "w1", "alice", domain.DeliveryPending, -time.Minute},
	} {
		doc := domain.NewDelivery(d.webhook, "e-"+d.id, "certflow.order.created", []byte(`{}`), at.Add(d.due))
		doc.State = d.state
		if _, _, err := s.Create(ctx, d.id, d.account, doc); err != nil {
			t.Fatal(err)
		}
	}
	// due pages through Due with the given page size.
	due := func(before time.Time, page int) []string {
		t.Helper()
		var ids []string
		var after *domain.PendingDelivery
		for {
			got, err := s.Due(ctx, before, after, page)
			if err != nil {
				t.Fatalf("Due = %v", err)
			}
			for _, p := range got {
				if wantAccount := map[bool]string{true: "bob", false: "alice"}[p.ID == "d3" || p.ID == "d5"]; p.Account != wantAccount || p.NextAttemptTime.IsZero() {
					t.Errorf("Due: %+v; want account %s and its due time", p, wantAccount)
				}
				ids = append(ids, p.ID)
			}
			if len(got) < page {
				return ids
			}
			after = &got[len(got)-1]
		}
	}
	tests := []struct {
		name   string
		before time.Time
		page   int
		want   []string
	}{
		{"due now, soonest first", at.Add(time.Second), 10, []string{"d0", "d1", "d3"}},
		{"paged one by one", at.Add(time.Second), 1, []string{"d0", "d1", "d3"}},
		{"within the hour", at.Add(time.Hour), 2, []string{"d0", "d1", "d3", "d5"}},
		{"nothing due yet", at.Add(-time.Hour), 10, nil},
	}
	for _, tt := range tests {
		if got := due(tt.before, tt.page); !slices.Equal(got, tt.want) {
			t.Errorf("%s: Due = %v; want %v", tt.name, got, tt.want)
		}
	}
	pending := func() []string { return due(at.Add(time.Hour), 10) }
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
	if got := pending(); !slices.Equal(got, []string{"d5"}) {
		t.Errorf("Due after deletes = %v; want [d5]", got)
	}
	if _, err := s.Get(ctx, "", "d4"); err != nil {
		t.Errorf("Get(d4 of another webhook) = %v; want it kept", err)
	}
}

func TestWebhookLists(t *testing.T) {
	db, _ := testenv.Database(t)
	// Cached, as the service makes it on the embedded default.
	l := NewWebhookLists(docstore.New[domain.WebhookList](db.Collection("webhook_lists"), "webhook list", docstore.SingleWriter(), docstore.ReadCache(1<<20)))
	ctx := context.Background()
	ids := func(account string) []string {
		t.Helper()
		got, err := l.IDs(ctx, account)
		if err != nil {
			t.Fatalf("IDs(%s) = %v", account, err)
		}
		return got
	}
	if got := ids("alice"); len(got) != 0 {
		t.Errorf("IDs(no list) = %v; want none", got)
	}
	if err := l.Remove(ctx, "alice", "w1"); err != nil {
		t.Errorf("Remove(no list) = %v; want nil", err)
	}
	steps := []struct {
		name string
		do   func() error
		want []string
	}{
		{"add", func() error { return l.Add(ctx, "alice", "w1") }, []string{"w1"}},
		{"add two", func() error { return l.Add(ctx, "alice", "w2", "w3") }, []string{"w1", "w2", "w3"}},
		{"add listed", func() error { return l.Add(ctx, "alice", "w2") }, []string{"w1", "w2", "w3"}},
		{"remove", func() error { return l.Remove(ctx, "alice", "w2") }, []string{"w1", "w3"}},
		{"remove unlisted", func() error { return l.Remove(ctx, "alice", "w9") }, []string{"w1", "w3"}},
		{"another account's", func() error { return l.Add(ctx, "bob", "w4") }, []string{"w1", "w3"}},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s = %v", st.name, err)
		}
		if got := ids("alice"); !slices.Equal(got, st.want) {
			t.Errorf("IDs(alice) after %s = %v; want %v", st.name, got, st.want)
		}
	}
	if got := ids("bob"); !slices.Equal(got, []string{"w4"}) {
		t.Errorf("IDs(bob) = %v; want [w4]", got)
	}
}

func TestWebhookListsConcurrentAddsLoseNothing(t *testing.T) {
	db, _ := testenv.Database(t)
	ctx := context.Background()
	for _, opts := range [][]docstore.Option{nil, {docstore.SingleWriter()}} {
		l := NewWebhookLists(docstore.New[domain.WebhookList](db.Collection("webhook_lists"), "webhook list", opts...))
		account := fmt.Sprintf("acct%d", len(opts))
		const n = 12
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- l.Add(ctx, account, fmt.Sprintf("w%02d", i))
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("Add (single writer %v) = %v", opts != nil, err)
			}
		}
		got, err := l.IDs(ctx, account)
		slices.Sort(got)
		if err != nil || len(got) != n {
			t.Errorf("IDs after %d concurrent adds (single writer %v) = %v, %v; want all of them", n, opts != nil, got, err)
		}
	}
}

func TestWebhookListsReconcile(t *testing.T) {
	db, _ := testenv.Database(t)
	ctx := context.Background()
	hooks := NewWebhooks(docstore.New[domain.Webhook](db.Collection("webhooks"), "webhook"), testBox(t))
	l := NewWebhookLists(docstore.New[domain.WebhookList](db.Collection("webhook_lists"), "webhook list", docstore.SingleWriter()))
	if err := l.Reconcile(ctx, hooks); err != nil {
		t.Fatalf("Reconcile(no webhooks) = %v", err)
	}
	for _, h := range []struct{ id, account string }{{"w1", "alice"}, {"w2", "alice"}, {"w3", "bob"}} {
		if _, _, err := hooks.Create(ctx, h.id, h.account, domain.Webhook{URL: "https://example.com/", Secret: "whsec_x"}); err != nil {
			t.Fatal(err)
		}
	}
	// w2 is listed already; the stale id w9 has no webhook and stays (only
	// adding is safe against a concurrent create).
	if err := l.Add(ctx, "alice", "w2", "w9"); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second run changes nothing
		if err := l.Reconcile(ctx, hooks); err != nil {
			t.Fatalf("Reconcile = %v", err)
		}
		for account, want := range map[string][]string{"alice": {"w1", "w2", "w9"}, "bob": {"w3"}} {
			got, err := l.IDs(ctx, account)
			slices.Sort(got)
			if err != nil || !slices.Equal(got, want) {
				t.Errorf("IDs(%s) after Reconcile = %v, %v; want %v", account, got, err, want)
			}
		}
	}
}
