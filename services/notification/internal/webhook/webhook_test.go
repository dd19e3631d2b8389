package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certflow/certflow/services/notification/webhooksig"
)

func TestAddressPolicy(t *testing.T) {
	tests := []struct {
		ip           string
		allowed      bool // by the zero policy
		allowPrivate bool // with AllowPrivate
	}{
		{"93.184.215.14", true, true},
		{"2606:2800:21f:cb07:6820:80da:af6b:8b2c", true, true},
		{"127.0.0.1", false, true},
		{"::1", false, true},
		{"10.1.2.3", false, true},
		{"172.16.0.1", false, true},
		{"192.168.1.1", false, true},
		{"fd00::1", false, true},
		{"::ffff:10.0.0.1", false, true},
		{"169.254.169.254", false, false},
		{"fe80::1", false, false},
		{"0.0.0.0", false, false},
		{"::", false, false},
		{"224.0.0.1", false, false},
		{"100.64.0.1", false, false},
		{"198.18.0.1", false, false},
		{"64:ff9b::a00:1", false, false},
		{"255.255.255.255", false, false},
	}
	for _, tt := range tests {
		ip := netip.MustParseAddr(tt.ip)
		for _, p := range []struct {
			policy AddressPolicy
			want   bool
		}{{AddressPolicy{}, tt.allowed}, {AddressPolicy{AllowPrivate: true}, tt.allowPrivate}} {
			err := p.policy.Allowed(ip)
			if (err == nil) != p.want || err != nil && !errors.Is(err, ErrForbiddenAddress) {
				t.Errorf("%+v.Allowed(%s) = %v; want allowed %v", p.policy, tt.ip, err, p.want)
			}
		}
	}
}

func TestClientPost(t *testing.T) {
	var got *http.Request
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, body = r, must(io.ReadAll(r.Body))
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "/big":
			_, _ = w.Write([]byte(strings.Repeat("x", 10*MaxResponseBody)))
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	defer srv.Close()
	now := time.Unix(1_795_000_000, 0)
	c := NewClient(AddressPolicy{AllowPrivate: true}, func() time.Time { return now })
	req := Request{URL: srv.URL + "/hook", Secret: "whsec_s", EventID: "e1", EventType: "certflow.order.created", Body: []byte(`{"id":"e1"}`)}

	status, err := c.Post(context.Background(), req)
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("Post = %d, %v; want 202", status, err)
	}
	if got.Method != http.MethodPost || got.Header.Get("Content-Type") != "application/json" ||
		got.Header.Get(HeaderEventID) != "e1" || got.Header.Get(HeaderEventType) != "certflow.order.created" || string(body) != `{"id":"e1"}` {
		t.Errorf("request = %s %v %s; want a POST of the body with the event headers", got.Method, got.Header, body)
	}
	if err := webhooksig.Verify("whsec_s", got.Header.Get(webhooksig.Header), body, now, time.Minute); err != nil {
		t.Errorf("Verify(%s) = %v; want nil", got.Header.Get(webhooksig.Header), err)
	}

	req.URL = srv.URL + "/redirect"
	if status, err := c.Post(context.Background(), req); err != nil || status != http.StatusFound || got.URL.Path != "/redirect" {
		t.Errorf("Post(redirect) = %d, %v, last path %s; want 302 and not followed", status, err, got.URL.Path)
	}
	req.URL = srv.URL + "/big"
	if status, err := c.Post(context.Background(), req); err != nil || status != http.StatusOK {
		t.Errorf("Post(large answer) = %d, %v; want 200", status, err)
	}

	strict := NewClient(AddressPolicy{}, time.Now)
	req.URL = srv.URL + "/hook"
	if _, err := strict.Post(context.Background(), req); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("Post(loopback) without AllowPrivate = %v; want ErrForbiddenAddress", err)
	}
	req.URL = strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/hook"
	if _, err := strict.Post(context.Background(), req); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("Post(localhost) without AllowPrivate = %v; want ErrForbiddenAddress (checked after resolving)", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestQueue(t *testing.T) {
	q := NewQueue(Limits{PerAccount: 2})
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var order []string
	tries := map[string]int{}
	done := make(chan struct{})
	stopped := make(chan error, 1)
	go func() {
		stopped <- q.Run(ctx, func(_ context.Context, id string) (time.Duration, bool) {
			mu.Lock()
			defer mu.Unlock()
			order = append(order, id)
			tries[id]++
			if id == "retry" && tries[id] < 3 {
				return 10 * time.Millisecond, true
			}
			if len(order) == 5 {
				close(done)
			}
			return 0, false
		})
	}()
	q.Schedule("a", "later", 300*time.Millisecond)
	q.Schedule("a", "retry", 0)
	q.Schedule("a", "now", 0)
	q.Schedule("a", "now", 0)                      // already scheduled: once
	q.Schedule("a", "later", 600*time.Millisecond) // later than scheduled: ignored
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("queue did not run the attempts within 10s")
	}
	cancel()
	if err := <-stopped; err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if tries["now"] != 1 || tries["retry"] != 3 || tries["later"] != 1 || order[len(order)-1] != "later" {
		t.Errorf("attempts = %v in order %v; want now once, retry 3 times, later once and last", tries, order)
	}
	if n := q.Len(); n != 0 {
		t.Errorf("Len() = %d after every attempt; want 0", n)
	}
}

// TestQueueRoundRobin: with one attempt at a time, due deliveries are
// started one account after another, not in the order they came due.
func TestQueueRoundRobin(t *testing.T) {
	q := NewQueue(Limits{PerAccount: 1, Total: 1})
	for _, id := range []string{"a1", "a2", "a3", "b1", "b2", "c1"} {
		q.Schedule(id[:1], id, 0)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var order []string // one attempt at a time: no lock needed
	done := make(chan struct{})
	go func() {
		_ = q.Run(ctx, func(_ context.Context, id string) (time.Duration, bool) {
			if order = append(order, id); len(order) == 6 {
				close(done)
			}
			return 0, false
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("queue ran %v within 10s; want 6 attempts", order)
	}
	accounts := func(ids []string) map[string]bool {
		m := map[string]bool{}
		for _, id := range ids {
			m[id[:1]] = true
		}
		return m
	}
	if len(accounts(order[:3])) != 3 || len(accounts(order[3:5])) != 2 || order[5] != "a3" {
		t.Errorf("attempts in order %v; want each account in turn: a, b, c once each, then a and b, then a3", order)
	}
}

// TestQueueFairness: an account whose endpoint hangs holds at most
// PerAccount attempts; another account's deliveries all run meanwhile.
func TestQueueFairness(t *testing.T) {
	const perAccount = 4
	q := NewQueue(Limits{PerAccount: perAccount, Total: 16})
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	var mu sync.Mutex
	hanging, maxHanging, fastDone := 0, 0, 0
	allFast := make(chan struct{})
	stopped := make(chan error, 1)
	go func() {
		stopped <- q.Run(ctx, func(_ context.Context, id string) (time.Duration, bool) {
			mu.Lock()
			if strings.HasPrefix(id, "slow") {
				hanging++
				maxHanging = max(maxHanging, hanging)
				mu.Unlock()
				<-release
				mu.Lock()
				hanging--
				mu.Unlock()
				return 0, false
			}
			if fastDone++; fastDone == 20 {
				close(allFast)
			}
			mu.Unlock()
			return 0, false
		})
	}()
	// The slow account's backlog came due first.
	for i := range 20 {
		q.Schedule("slow", fmt.Sprintf("slow%d", i), 0)
	}
	for i := range 20 {
		q.Schedule("fast", fmt.Sprintf("fast%d", i), 0)
	}
	select {
	case <-allFast:
	case <-time.After(10 * time.Second):
		t.Fatalf("fast account: %d of 20 attempted within 10s while the slow one hangs", fastDone)
	}
	mu.Lock()
	if maxHanging > perAccount {
		t.Errorf("slow account had %d attempts at once; want at most %d", maxHanging, perAccount)
	}
	mu.Unlock()
	// The last fast attempts may still be returning when allFast closes:
	// Len counts them until they have.
	deadline := time.Now().Add(5 * time.Second)
	n := q.Len()
	for ; n != 20 && time.Now().Before(deadline); n = q.Len() {
		time.Sleep(time.Millisecond)
	}
	if n != 20 {
		t.Errorf("Len() = %d with the fast account done; want the slow account's 20 (4 running, 16 waiting)", n)
	}
	close(release)
	cancel()
	if err := <-stopped; err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
}
