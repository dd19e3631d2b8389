package service_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	notificationv1 "github.com/certflow/certflow/gen/go/certflow/notification/v1"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/config"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/service"
	"github.com/certflow/certflow/pkg/tally"
	"github.com/certflow/certflow/pkg/testenv"
	"github.com/certflow/certflow/services/notification/internal/domain"
	notification "github.com/certflow/certflow/services/notification/service"
	"github.com/certflow/certflow/services/notification/webhooksig"
)

// increasingClock is the real clock, made strictly increasing so "newest
// first" is well defined; webhook signatures need real time.
func increasingClock() func() time.Time {
	var mu sync.Mutex
	var last time.Time
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		if !now.After(last.Add(time.Millisecond)) {
			now = last.Add(time.Millisecond)
		}
		last = now
		return now
	}
}

// receiver is a webhook endpoint on loopback that records what it gets and
// answers with the scripted statuses first, then 200.
type receiver struct {
	url    string
	mu     sync.Mutex
	reqs   []received
	script []int
}

type received struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, script ...int) *receiver {
	r := &receiver{script: script}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	r.url = srv.URL + "/hooks/certflow"
	return r
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.reqs = append(r.reqs, received{header: req.Header.Clone(), body: body})
	status := http.StatusOK
	if n := len(r.reqs); n <= len(r.script) {
		status = r.script[n-1]
	}
	r.mu.Unlock()
	w.WriteHeader(status)
	_, _ = io.WriteString(w, "ok")
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.reqs...)
}

// waitFor polls until the receiver has at least n requests.
func (r *receiver) waitFor(t *testing.T, n int) []received {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := r.requests()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook endpoint received %d requests; want %d within 15s", len(got), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func startWebhooks(t *testing.T, cfg notification.Config) (notificationv1.NotificationServiceClient, *events.Conn) {
	t.Helper()
	cfg.WebhookRetryInitial = 50 * time.Millisecond
	cfg.Now = increasingClock()
	_, client, conn := startWith(t, cfg)
	return client, conn
}

func createWebhook(ctx context.Context, t *testing.T, client notificationv1.NotificationServiceClient, url, requestID string) *notificationv1.Webhook {
	t.Helper()
	w, err := client.CreateWebhook(ctx, &notificationv1.CreateWebhookRequest{Webhook: &notificationv1.Webhook{Url: url}, RequestId: requestID})
	if err != nil {
		t.Fatalf("CreateWebhook(%s) = %v", url, err)
	}
	return w
}

// deliveries pages through a webhook's delivery log, one at a time.
func deliveries(ctx context.Context, t *testing.T, client notificationv1.NotificationServiceClient, parent string) []*notificationv1.WebhookDelivery {
	t.Helper()
	var all []*notificationv1.WebhookDelivery
	req := &notificationv1.ListWebhookDeliveriesRequest{Parent: parent, PageSize: 1}
	for {
		resp, err := client.ListWebhookDeliveries(ctx, req)
		if err != nil {
			t.Fatalf("ListWebhookDeliveries(%s) = %v", parent, err)
		}
		all = append(all, resp.Deliveries...)
		if resp.NextPageToken == "" {
			return all
		}
		req.PageToken = resp.NextPageToken
	}
}

// waitDeliveries polls the delivery log until every one of n deliveries
// is in state.
func waitDeliveries(ctx context.Context, t *testing.T, client notificationv1.NotificationServiceClient, parent string, n int, state notificationv1.WebhookDelivery_State) []*notificationv1.WebhookDelivery {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := deliveries(ctx, t, client, parent)
		done := len(got) == n
		for _, d := range got {
			done = done && d.State == state
		}
		if done {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("ListWebhookDeliveries(%s) = %v; want %d in state %s within 15s", parent, got, n, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// payload is the JSON body of a delivery.
type payload struct {
	ID      string         `json:"id"`
	Type    string         `json:"type"`
	Source  string         `json:"source"`
	Subject string         `json:"subject"`
	Time    string         `json:"time"`
	Data    map[string]any `json:"data"`
}

func TestWebhookDeliveries(t *testing.T) {
	client, conn := startWebhooks(t, notification.Config{WebhookAllowPrivate: true})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice := testenv.As(ctx, "alice", auth.Customer)
	bob := testenv.As(ctx, "bob", auth.Customer)
	aliceEndpoint, bobEndpoint := newReceiver(t), newReceiver(t)

	hook := createWebhook(alice, t, client, aliceEndpoint.url, "req-1")
	if !strings.HasPrefix(hook.Name, "webhooks/") || hook.Url != aliceEndpoint.url || !strings.HasPrefix(hook.Secret, "whsec_") || len(hook.Secret) < 40 || hook.CreateTime == nil {
		t.Fatalf("CreateWebhook = %v; want a webhooks/ name, the URL and a whsec_ secret", hook)
	}
	if again := createWebhook(alice, t, client, aliceEndpoint.url, "req-1"); again.Name != hook.Name || again.Secret != hook.Secret {
		t.Errorf("CreateWebhook retried with the same request_id = %v; want the first webhook %s", again, hook.Name)
	}
	if _, err := client.CreateWebhook(alice, &notificationv1.CreateWebhookRequest{Webhook: &notificationv1.Webhook{Url: bobEndpoint.url}, RequestId: "req-1"}); testenv.Code(err) != codes.AlreadyExists {
		t.Errorf("CreateWebhook(request_id reused for another URL) = %v; want AlreadyExists", err)
	}
	got, err := client.GetWebhook(alice, &notificationv1.GetWebhookRequest{Name: hook.Name})
	if err != nil || got.Url != hook.Url || got.Secret != "" {
		t.Errorf("GetWebhook(%s) = %v, %v; want the webhook without its secret", hook.Name, got, err)
	}
	list, err := client.ListWebhooks(alice, &notificationv1.ListWebhooksRequest{})
	if err != nil || len(list.Webhooks) != 1 || list.Webhooks[0].Name != hook.Name || list.Webhooks[0].Secret != "" {
		t.Errorf("ListWebhooks = %v, %v; want %s without its secret", list, err, hook.Name)
	}
	bobHook := createWebhook(bob, t, client, bobEndpoint.url, "")

	for _, url := range []string{"", "ftp://example.com/hook", "/relative/hook", "http://", "example.com/hook", "https://example.com/#frag", "https://example.com/" + strings.Repeat("a", 2048)} {
		if _, err := client.CreateWebhook(alice, &notificationv1.CreateWebhookRequest{Webhook: &notificationv1.Webhook{Url: url}}); testenv.Code(err) != codes.InvalidArgument {
			t.Errorf("CreateWebhook(%.40q) = %v; want InvalidArgument", url, err)
		}
	}

	// Two events of alice's with one of bob's in between.
	created := publish(ctx, t, conn, events.ApplicationCreated, "applications/w1", &eventsv1.ApplicationCreated{
		Account: "alice", Application: "applications/w1", Instance: "instances/o1-1", Domains: []string{"example.com"}, ApplicantEmail: "alice@example.com",
	})
	bobs := publish(ctx, t, conn, events.OrderCreated, "orders/o9", &eventsv1.OrderCreated{Account: "bob", Order: "orders/o9", Product: "products/dv"})
	issued := publish(ctx, t, conn, events.CertificateIssued, "certificates/c1", &eventsv1.CertificateIssued{
		Account: "alice", Certificate: "certificates/c1", Application: "applications/w1", Domains: []string{"example.com"}, SerialNumber: "01ab",
	})

	log := waitDeliveries(alice, t, client, hook.Name, 2, notificationv1.WebhookDelivery_DELIVERED)
	reqs := aliceEndpoint.waitFor(t, 2)
	if len(reqs) != 2 {
		t.Fatalf("alice's endpoint received %d requests; want exactly 2", len(reqs))
	}
	want := map[string]events.Event{created.ID: created, issued.ID: issued}
	for i, r := range reqs {
		if err := webhooksig.Verify(hook.Secret, r.header.Get("Certflow-Signature"), r.body, time.Now(), webhooksig.DefaultTolerance); err != nil {
			t.Errorf("request %d: Verify(Certflow-Signature %q) = %v; want nil", i+1, r.header.Get("Certflow-Signature"), err)
		}
		var p payload
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatalf("request %d body %s: %v", i+1, r.body, err)
		}
		ev, ok := want[p.ID]
		if !ok {
			t.Fatalf("request %d is event %s (%s); want one of alice's", i+1, p.ID, p.Type)
		}
		delete(want, p.ID)
		if p.Type != ev.Type || p.Source != "//certflow/test" || p.Subject != ev.Subject || p.Data["account"] != "alice" {
			t.Errorf("request %d payload = %+v; want type %s, source //certflow/test, subject %s, data of alice", i+1, p, ev.Type, ev.Subject)
		}
		if at, err := time.Parse(time.RFC3339, p.Time); err != nil || !at.Equal(ev.Time) {
			t.Errorf("request %d time = %q, %v; want %s", i+1, p.Time, err, ev.Time.Format(time.RFC3339Nano))
		}
		if r.header.Get("Content-Type") != "application/json" || r.header.Get("Certflow-Event-Id") != ev.ID || r.header.Get("Certflow-Event-Type") != ev.Type {
			t.Errorf("request %d headers = %v; want application/json with the event id and type", i+1, r.header)
		}
		if ev.ID == created.ID && p.Data["applicant_email"] != "alice@example.com" {
			t.Errorf("ApplicationCreated data = %v; want applicant_email (proto field names)", p.Data)
		}
		if ev.ID == issued.ID && p.Data["serial_number"] != "01ab" {
			t.Errorf("CertificateIssued data = %v; want serial_number 01ab", p.Data)
		}
	}
	if b := bobEndpoint.waitFor(t, 1); len(b) != 1 || b[0].header.Get("Certflow-Event-Id") != bobs.ID {
		t.Errorf("bob's endpoint received %d requests; want exactly bob's event %s", len(b), bobs.ID)
	}
	if log[0].EventId != issued.ID || log[1].EventId != created.ID {
		t.Errorf("delivery log = %s, %s; want newest first: %s, %s", log[0].EventId, log[1].EventId, issued.ID, created.ID)
	}
	for _, d := range log {
		if d.Attempts != 1 || d.LastStatusCode != 200 || d.LastError != "" || d.DeliverTime == nil || !strings.HasPrefix(d.Name, hook.Name+"/deliveries/") {
			t.Errorf("delivery %s = %v; want delivered on the first attempt", d.Name, d)
		}
	}

	// Another account sees none of it.
	if _, err := client.ListWebhookDeliveries(bob, &notificationv1.ListWebhookDeliveriesRequest{Parent: hook.Name}); testenv.Code(err) != codes.NotFound {
		t.Errorf("ListWebhookDeliveries(alice's webhook) as bob = %v; want NotFound", err)
	}
	if _, err := client.GetWebhook(bob, &notificationv1.GetWebhookRequest{Name: hook.Name}); testenv.Code(err) != codes.NotFound {
		t.Errorf("GetWebhook(alice's webhook) as bob = %v; want NotFound", err)
	}
	if _, err := client.DeleteWebhook(bob, &notificationv1.DeleteWebhookRequest{Name: hook.Name}); testenv.Code(err) != codes.NotFound {
		t.Errorf("DeleteWebhook(alice's webhook) as bob = %v; want NotFound", err)
	}
	if _, err := client.ListWebhooks(ctx, &notificationv1.ListWebhooksRequest{}); testenv.Code(err) != codes.Unauthenticated {
		t.Errorf("ListWebhooks without account = %v; want Unauthenticated", err)
	}

	// A deleted webhook gets nothing more: bob's next delivery proves
	// alice's later event was handled.
	if _, err := client.DeleteWebhook(alice, &notificationv1.DeleteWebhookRequest{Name: hook.Name}); err != nil {
		t.Fatalf("DeleteWebhook(%s) = %v", hook.Name, err)
	}
	if _, err := client.GetWebhook(alice, &notificationv1.GetWebhookRequest{Name: hook.Name}); testenv.Code(err) != codes.NotFound {
		t.Errorf("GetWebhook(deleted) = %v; want NotFound", err)
	}
	publish(ctx, t, conn, events.ApplicationWithdrawn, "applications/w1", &eventsv1.ApplicationWithdrawn{Account: "alice", Application: "applications/w1"})
	publish(ctx, t, conn, events.OrderCreated, "orders/o10", &eventsv1.OrderCreated{Account: "bob", Order: "orders/o10"})
	bobEndpoint.waitFor(t, 2)
	waitDeliveries(bob, t, client, bobHook.Name, 2, notificationv1.WebhookDelivery_DELIVERED)
	if n := len(aliceEndpoint.requests()); n != 2 {
		t.Errorf("deleted webhook's endpoint received %d requests; want still 2", n)
	}
}

func TestWebhookRetriedWithBackoff(t *testing.T) {
	client, conn := startWebhooks(t, notification.Config{WebhookAllowPrivate: true})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	carol := testenv.As(ctx, "carol", auth.Customer)
	endpoint := newReceiver(t, http.StatusInternalServerError, http.StatusInternalServerError)
	hook := createWebhook(carol, t, client, endpoint.url, "")
	ev := publish(ctx, t, conn, events.OrderCreated, "orders/o1", &eventsv1.OrderCreated{Account: "carol", Order: "orders/o1"})

	d := waitDeliveries(carol, t, client, hook.Name, 1, notificationv1.WebhookDelivery_DELIVERED)[0]
	if d.Attempts != 3 || d.LastStatusCode != 200 || d.EventId != ev.ID || d.EventType != events.OrderCreated || d.LastError != "" || d.NextAttemptTime != nil {
		t.Errorf("delivery = %v; want DELIVERED on the 3rd attempt with status 200", d)
	}
	reqs := endpoint.requests()
	if len(reqs) != 3 {
		t.Fatalf("endpoint received %d requests; want 3", len(reqs))
	}
	for i, r := range reqs {
		if string(r.body) != string(reqs[0].body) || r.header.Get("Certflow-Event-Id") != ev.ID {
			t.Errorf("attempt %d body = %s; want the same body and event id every time", i+1, r.body)
		}
		if err := webhooksig.Verify(hook.Secret, r.header.Get("Certflow-Signature"), r.body, time.Now(), webhooksig.DefaultTolerance); err != nil {
			t.Errorf("attempt %d: Verify = %v; want nil", i+1, err)
		}
	}
}

func TestWebhookGivesUp(t *testing.T) {
	client, conn := startWebhooks(t, notification.Config{WebhookAllowPrivate: true, WebhookMaxAttempts: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dave := testenv.As(ctx, "dave", auth.Customer)
	endpoint := newReceiver(t, 500, 500, 500, 500)
	hook := createWebhook(dave, t, client, endpoint.url, "")
	publish(ctx, t, conn, events.OrderCreated, "orders/o2", &eventsv1.OrderCreated{Account: "dave", Order: "orders/o2"})

	d := waitDeliveries(dave, t, client, hook.Name, 1, notificationv1.WebhookDelivery_FAILED)[0]
	if d.Attempts != 2 || d.LastStatusCode != 500 || d.LastError == "" || d.DeliverTime != nil {
		t.Errorf("delivery = %v; want FAILED after 2 attempts with status 500", d)
	}
	if n := len(endpoint.requests()); n != 2 {
		t.Errorf("endpoint received %d requests; want 2", n)
	}
}

func TestWebhookRefusesLoopbackByDefault(t *testing.T) {
	client, conn := startWebhooks(t, notification.Config{WebhookMaxAttempts: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	erin := testenv.As(ctx, "erin", auth.Customer)
	endpoint := newReceiver(t)
	hook := createWebhook(erin, t, client, endpoint.url, "")
	publish(ctx, t, conn, events.OrderCreated, "orders/o3", &eventsv1.OrderCreated{Account: "erin", Order: "orders/o3"})

	d := waitDeliveries(erin, t, client, hook.Name, 1, notificationv1.WebhookDelivery_FAILED)[0]
	if d.LastStatusCode != 0 || !strings.Contains(d.LastError, "not allowed") {
		t.Errorf("delivery = %v; want FAILED with the address refused", d)
	}
	if n := len(endpoint.requests()); n != 0 {
		t.Errorf("loopback endpoint received %d requests; want 0", n)
	}
}

func TestWebhookSweepPicksUpLeftovers(t *testing.T) {
	// A delivery an earlier process recorded but never attempted (it
	// stopped first): only the sweep at start can find it. Written before
	// the service starts, since on FerretDB the running service is its
	// database's only writer.
	db, name := testenv.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	endpoint := newReceiver(t)
	doc, err := domain.NewWebhook(endpoint.url, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := docstore.New[domain.Webhook](db.Collection("webhooks"), "webhook").Create(ctx, "left-hook", "frank", doc); err != nil {
		t.Fatal(err)
	}
	store := docstore.New[domain.Delivery](db.Collection("webhook_deliveries"), "webhook delivery")
	body := `{"id":"e-left","type":"certflow.order.created","data":{"account":"frank"}}`
	if _, _, err := store.Create(ctx, "left1", "frank", domain.NewDelivery("left-hook", "e-left", events.OrderCreated, []byte(body), time.Now())); err != nil {
		t.Fatal(err)
	}
	_, client, _ := startOn(t, name, notification.Config{
		WebhookAllowPrivate: true, WebhookSweepInterval: 100 * time.Millisecond, Now: increasingClock(),
	})
	frank := testenv.As(ctx, "frank", auth.Customer)
	reqs := endpoint.waitFor(t, 1)
	if string(reqs[0].body) != body || reqs[0].header.Get("Certflow-Event-Id") != "e-left" {
		t.Errorf("endpoint received %s; want the left-over delivery's body", reqs[0].body)
	}
	waitDeliveries(frank, t, client, "webhooks/left-hook", 1, notificationv1.WebhookDelivery_DELIVERED)
}

// On FerretDB, the service's database has one writer, itself: the PENDING
// deliveries are read back once, at start, and never again (MongoDB, which
// other replicas may write, keeps sweeping every interval).
func TestWebhookSweepOnceOnSingleWriter(t *testing.T) {
	counts := &tally.Counters{}
	svc, _, _ := startWith(t, notification.Config{
		Config:              service.Config{Tally: counts},
		WebhookAllowPrivate: true, WebhookSweepInterval: 20 * time.Millisecond, Now: increasingClock(),
	})
	time.Sleep(200 * time.Millisecond)
	before := counts.Snapshot()
	time.Sleep(500 * time.Millisecond)
	finds := counts.Snapshot()["db notification find"] - before["db notification find"]
	if svc.SingleWriter() && finds != 0 {
		t.Errorf("%d finds in 500ms of an idle single-writer service; want none (no periodic sweep)", finds)
	}
	if !svc.SingleWriter() && finds == 0 {
		t.Errorf("no find in 500ms with a 20ms sweep on MongoDB; want the periodic sweep")
	}
}

func TestUnlistedWebhooksAreDelivered(t *testing.T) {
	// A webhook whose create stopped before listing it: in the webhooks
	// collection, in no account's list. The start-up lists it.
	db, name := testenv.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	endpoint := newReceiver(t)
	hooks := docstore.New[domain.Webhook](db.Collection("webhooks"), "webhook")
	doc, err := domain.NewWebhook(endpoint.url, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := hooks.Create(ctx, "old1", "gina", doc); err != nil {
		t.Fatal(err)
	}
	_, client, conn := startOn(t, name, notification.Config{WebhookAllowPrivate: true, Now: increasingClock()})
	ev := publish(ctx, t, conn, events.OrderCreated, "orders/o1", &eventsv1.OrderCreated{Account: "gina", Order: "orders/o1"})
	reqs := endpoint.waitFor(t, 1)
	if reqs[0].header.Get("Certflow-Event-Id") != ev.ID {
		t.Errorf("endpoint received event %s; want %s", reqs[0].header.Get("Certflow-Event-Id"), ev.ID)
	}
	gina := testenv.As(ctx, "gina", auth.Customer)
	waitDeliveries(gina, t, client, "webhooks/old1", 1, notificationv1.WebhookDelivery_DELIVERED)
}

func TestNewRejectsBadWebhookAndSMSSettings(t *testing.T) {
	tests := []struct {
		name string
		cfg  notification.Config
	}{
		{"unknown SMS driver", notification.Config{SMSDriver: "twilio"}},
		{"max below initial", notification.Config{WebhookRetryInitial: time.Minute, WebhookRetryMax: time.Second}},
		{"negative initial", notification.Config{WebhookRetryInitial: -time.Second}},
		{"negative attempts", notification.Config{WebhookMaxAttempts: -1}},
		{"negative per-account concurrency", notification.Config{WebhookAccountConcurrency: -1}},
		{"per-account concurrency above the total", notification.Config{WebhookAccountConcurrency: 10, WebhookConcurrency: 5}},
	}
	for _, tt := range tests {
		// The settings are checked before anything is connected to.
		if _, err := notification.New(context.Background(), tt.cfg); err == nil {
			t.Errorf("New(%s) = nil error; want one", tt.name)
		}
	}
}

func TestFlags(t *testing.T) {
	var cfg notification.Config
	s := config.New("notification")
	cfg.Flags(s, "notification", notification.DefaultPort)
	if err := s.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if cfg.SMSDriver != "dev" || cfg.WebhookRetryInitial != 5*time.Second || cfg.WebhookRetryMax != 10*time.Minute || cfg.WebhookMaxAttempts != 8 || cfg.WebhookAllowPrivate ||
		cfg.WebhookAccountConcurrency != 4 || cfg.WebhookConcurrency != 64 {
		t.Errorf("default flags = %+v; want dev, 5s, 10m, 8, private refused", cfg)
	}
	cfg = notification.Config{}
	s = config.New("notification")
	cfg.Flags(s, "notification", notification.DefaultPort)
	args := []string{"-sms-driver", "dev", "-webhook-retry-initial", "1s", "-webhook-retry-max", "1m", "-webhook-max-attempts", "3", "-webhook-allow-private",
		"-webhook-account-concurrency", "2", "-webhook-concurrency", "10"}
	if err := s.Parse(args); err != nil {
		t.Fatal(err)
	}
	if cfg.WebhookRetryInitial != time.Second || cfg.WebhookRetryMax != time.Minute || cfg.WebhookMaxAttempts != 3 || !cfg.WebhookAllowPrivate ||
		cfg.WebhookAccountConcurrency != 2 || cfg.WebhookConcurrency != 10 {
		t.Errorf("flags %q = %+v; want 1s, 1m, 3, private allowed", args, cfg)
	}
}

// TestWebhookKEKRequiredAndNeverAFlag: webhook secrets are sealed, so the
// service does not start without the key, which comes from a file or the
// environment only.
func TestWebhookKEKRequiredAndNeverAFlag(t *testing.T) {
	if _, err := notification.New(context.Background(), notification.Config{}); err == nil || !strings.Contains(err.Error(), "webhook key-encryption key") {
		t.Errorf("New(no webhook KEK) = %v; want a refusal naming the key", err)
	}
	t.Setenv("CERTFLOW_WEBHOOK_KEK", testWebhookKEK)
	var cfg notification.Config
	s := config.New("notification")
	cfg.Flags(s, "notification", notification.DefaultPort)
	if s.FS.Lookup("webhook-kek") != nil || s.FS.Lookup("webhook-kek-file") == nil {
		t.Errorf("want -webhook-kek-file and no -webhook-kek flag")
	}
	if cfg.WebhookKEK != testWebhookKEK {
		t.Errorf("WebhookKEK = %q; want it from CERTFLOW_WEBHOOK_KEK", cfg.WebhookKEK)
	}
}
