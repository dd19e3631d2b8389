package service_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	notificationv1 "github.com/certflow/certflow/gen/go/certflow/notification/v1"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/service"
	"github.com/certflow/certflow/pkg/tally"
	"github.com/certflow/certflow/pkg/testenv"
	"github.com/certflow/certflow/services/notification/internal/domain"
	"github.com/certflow/certflow/services/notification/internal/webhook"
	notification "github.com/certflow/certflow/services/notification/service"
)

// counter is a webhook endpoint that counts, per event id, the requests it
// got and requests for an id that came while another for the same id was
// still being answered (which only two replicas sending the same delivery
// at once can cause). It holds each request a little so that overlaps
// show.
type counter struct {
	url string

	mu       sync.Mutex
	got      map[string]int
	inflight map[string]int
	overlaps map[string]int
	active   int
}

func newCounter(t *testing.T) *counter {
	c := &counter{got: map[string]int{}, inflight: map[string]int{}, overlaps: map[string]int{}}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	c.url = srv.URL + "/hook"
	return c
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(webhook.HeaderEventID)
	c.mu.Lock()
	c.got[id]++
	if c.inflight[id] > 0 {
		c.overlaps[id]++
	}
	c.inflight[id]++
	c.active++
	c.mu.Unlock()
	time.Sleep(5 * time.Millisecond)
	c.mu.Lock()
	c.inflight[id]--
	c.active--
	c.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// idle says whether no request is being answered.
func (c *counter) idle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.active == 0
}

// states counts a webhook's deliveries by state, 100 a page.
func states(ctx context.Context, t *testing.T, client notificationv1.NotificationServiceClient, parent string) map[notificationv1.WebhookDelivery_State]int {
	t.Helper()
	out := map[notificationv1.WebhookDelivery_State]int{}
	req := &notificationv1.ListWebhookDeliveriesRequest{Parent: parent, PageSize: 100}
	for {
		resp, err := client.ListWebhookDeliveries(ctx, req)
		if err != nil {
			t.Fatalf("ListWebhookDeliveries(%s) = %v", parent, err)
		}
		for _, d := range resp.Deliveries {
			out[d.State]++
		}
		if resp.NextPageToken == "" {
			return out
		}
		req.PageToken = resp.NextPageToken
	}
}

// until polls cond every 20ms, failing the test after 60s (a deadline
// against hanging, not a measure of speed).
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	defer func() { t.Logf("%s after %v", what, time.Since(start)) }()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 60s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWebhookReplicasSendOnce: 200 due deliveries that an earlier process
// left; two replicas of the service on one database start together, and
// the sweep of each schedules all 200. The claim lets one replica send
// each: the endpoint gets every delivery exactly once, never two requests
// for one at once, and both replicas took part.
func TestWebhookReplicasSendOnce(t *testing.T) {
	const n = 200
	db, name := testenv.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	endpoint := newCounter(t)
	doc, err := domain.NewWebhook(endpoint.url, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Written before the replicas start: on FerretDB the running service
	// is its database's only writer (the replicas share this process's
	// per-document locks).
	if _, _, err := docstore.New[domain.Webhook](db.Collection("webhooks"), "webhook").Create(ctx, "shared-hook", "acme", doc); err != nil {
		t.Fatal(err)
	}
	store := docstore.New[domain.Delivery](db.Collection("webhook_deliveries"), "webhook delivery")
	for i := range n {
		ev := fmt.Sprintf("e%03d", i)
		body := fmt.Sprintf(`{"id":%q,"type":"certflow.order.created","data":{"account":"acme"}}`, ev)
		if _, _, err := store.Create(ctx, "d"+ev, "acme", domain.NewDelivery("shared-hook", ev, events.OrderCreated, []byte(body), time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	natsURL := testenv.NATS(t)
	counts := []*tally.Counters{{}, {}}
	var replicas []*notification.Service
	for _, c := range counts {
		replicas = append(replicas, newReplica(t, name, natsURL, notification.Config{
			Config:              service.Config{Tally: c},
			WebhookAllowPrivate: true, WebhookAccountConcurrency: 16, Now: increasingClock(),
		}))
	}
	for _, r := range replicas {
		testenv.Run(t, r.Run)
	}
	client := notificationv1.NewNotificationServiceClient(testenv.Dial(t, replicas[0].GRPC.Addr()))
	acme := testenv.As(ctx, "acme", auth.Customer)
	until(t, "all deliveries DELIVERED", func() bool {
		return states(acme, t, client, "webhooks/shared-hook")[notificationv1.WebhookDelivery_DELIVERED] == n
	})
	until(t, "no request left in flight", endpoint.idle)

	endpoint.mu.Lock()
	defer endpoint.mu.Unlock()
	for id, k := range endpoint.got {
		if k != 1 {
			t.Errorf("event %s received %d times; want exactly once", id, k)
		}
	}
	if len(endpoint.got) != n {
		t.Errorf("%d events received; want %d", len(endpoint.got), n)
	}
	for id, k := range endpoint.overlaps {
		t.Errorf("event %s: %d requests while another for it was in flight; want none", id, k)
	}
	for i, c := range counts {
		// Claim and record: two writes per delivery sent.
		if w := c.Snapshot()["db notification findAndModify"]; w == 0 || w >= 2*n {
			t.Errorf("replica %d wrote %d times; want some of the deliveries, not all", i+1, w)
		}
	}
}

// hanging is a webhook endpoint on loopback that never answers (until the
// test ends), counting the requests it holds at once.
type hanging struct {
	url            string
	mu             sync.Mutex
	now, most, all int
}

func newHanging(t *testing.T) *hanging {
	h := &hanging{}
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.now++
		h.all++
		h.most = max(h.most, h.now)
		h.mu.Unlock()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		h.mu.Lock()
		h.now--
		h.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: Close waits for handlers
	h.url = srv.URL + "/hook"
	return h
}

// TestWebhookAccountsDoNotStallEachOther: account A's endpoint hangs or
// fails and A's 20 deliveries came due first; account B's 20 are all
// delivered while A's are still pending, and a hanging endpoint holds at
// most the per-account limit of attempts.
func TestWebhookAccountsDoNotStallEachOther(t *testing.T) {
	tests := []struct {
		name  string
		hangs bool
	}{
		{"A's endpoint hangs", true},
		{"A's endpoint fails", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, conn := startWebhooks(t, notification.Config{WebhookAllowPrivate: true, WebhookMaxAttempts: 1000})
			ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
			defer cancel()
			a, b := testenv.As(ctx, "acct-a", auth.Customer), testenv.As(ctx, "acct-b", auth.Customer)
			var slow *hanging
			aURL := ""
			if tt.hangs {
				slow = newHanging(t)
				aURL = slow.url
			} else {
				aURL = newReceiver(t, repeat(http.StatusInternalServerError, 10000)...).url
			}
			bEndpoint := newReceiver(t)
			aHook := createWebhook(a, t, client, aURL, "")
			bHook := createWebhook(b, t, client, bEndpoint.url, "")
			for i := range 20 {
				publish(ctx, t, conn, events.OrderCreated, fmt.Sprintf("orders/a%d", i), &eventsv1.OrderCreated{Account: "acct-a"})
			}
			for i := range 20 {
				publish(ctx, t, conn, events.OrderCreated, fmt.Sprintf("orders/b%d", i), &eventsv1.OrderCreated{Account: "acct-b"})
			}
			until(t, "B's 20 deliveries DELIVERED", func() bool {
				return states(b, t, client, bHook.Name)[notificationv1.WebhookDelivery_DELIVERED] == 20
			})
			if got := len(bEndpoint.requests()); got != 20 {
				t.Errorf("B's endpoint received %d requests; want 20, one per delivery", got)
			}
			if got := states(a, t, client, aHook.Name); got[notificationv1.WebhookDelivery_PENDING] != 20 {
				t.Errorf("A's deliveries by state = %v; want all 20 still PENDING", got)
			}
			if slow != nil {
				slow.mu.Lock()
				most, all := slow.most, slow.all
				slow.mu.Unlock()
				if most > webhook.DefaultPerAccount || all == 0 {
					t.Errorf("hanging endpoint held %d requests at once (%d in all); want 1 to %d", most, all, webhook.DefaultPerAccount)
				}
			}
		})
	}
}

func repeat(status, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = status
	}
	return out
}
