package events_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/testenv"
)

func TestStampAndCloudEventsRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 21, 10, 0, 0, 123, time.UTC)
	msg := &eventsv1.DomainVerified{Account: "acme", Domain: "example.com"}
	ev, err := events.Stamp(events.DomainVerified, "//certflow/test", "challenges/c1", at, msg)
	if err != nil {
		t.Fatal(err)
	}
	if msg.EventId != ev.ID || !msg.OccurredAt.AsTime().Equal(at) {
		t.Fatalf("Stamp set event_id %q occurred_at %v; want %q %v", msg.EventId, msg.OccurredAt.AsTime(), ev.ID, at)
	}
	m := events.ToMsg(ev)
	if m.Subject != events.DomainVerified || m.Header.Get("Nats-Msg-Id") != ev.ID || m.Header.Get(events.HeaderContentType) != events.ContentType {
		t.Fatalf("ToMsg = %s %v; want the subject, Nats-Msg-Id = ce-id and protobuf content type", m.Subject, m.Header)
	}
	back, err := events.FromMsg(m.Subject, m.Header, m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != ev.ID || back.Type != ev.Type || back.Source != ev.Source || back.Subject != ev.Subject || !back.Time.Equal(ev.Time) {
		t.Fatalf("FromMsg(ToMsg(ev)) = %+v; want %+v", back, ev)
	}
	var got eventsv1.DomainVerified
	if err := proto.Unmarshal(back.Data, &got); err != nil || !proto.Equal(&got, msg) {
		t.Fatalf("data = %v, %v; want %v", &got, err, msg)
	}
	m.Header.Del(events.HeaderSpecVersion)
	if _, err := events.FromMsg(m.Subject, m.Header, m.Data); err == nil {
		t.Fatalf("FromMsg without ce-specversion = nil error; want a refusal")
	}
	if _, err := events.Stamp("x", "s", "y", at, &eventsv1.ChallengeInstructions{}); err == nil {
		t.Fatalf("Stamp of a message without event_id = nil error")
	}
}

// Consume retries a failing handler (counting deliveries) and acknowledges
// a permanent failure without retrying it.
func TestConsumeRetriesAndPermanent(t *testing.T) {
	conn := testenv.Conn(t, testenv.NATS(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var (
		mu         sync.Mutex
		deliveries = map[string][]int{}
		done       = make(chan struct{})
	)
	handler := func(ctx context.Context, ev events.Event) error {
		mu.Lock()
		defer mu.Unlock()
		deliveries[ev.Subject] = append(deliveries[ev.Subject], ev.Delivery)
		switch ev.Subject {
		case "flaky":
			if ev.Delivery < 3 {
				return errors.New("not yet")
			}
			close(done)
		case "poison":
			return events.Permanent(errors.New("cannot apply"))
		}
		return nil
	}
	for _, subject := range []string{"poison", "flaky"} {
		ev, _ := events.Stamp(events.DomainVerified, "//certflow/test", subject, time.Now(), &eventsv1.DomainVerified{})
		if err := conn.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	go func() {
		_ = conn.Consume(ctx, events.ConsumeOptions{Durable: "test", Subjects: []string{events.DomainVerified}, RetryDelay: 20 * time.Millisecond, Log: testenv.Logger(t)}, handler)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("the flaky event never succeeded; deliveries %v", deliveries)
	}
	time.Sleep(100 * time.Millisecond) // a wrongly retried poison event would show up here
	mu.Lock()
	defer mu.Unlock()
	if got := deliveries["flaky"]; len(got) != 3 || got[0] != 1 || got[2] != 3 {
		t.Errorf("flaky deliveries = %v; want [1 2 3]", got)
	}
	if got := deliveries["poison"]; len(got) != 1 {
		t.Errorf("poison deliveries = %v; want one (a permanent failure is not retried)", got)
	}
}

func TestMain(m *testing.M) { testenv.Main(m) }

func TestBackoff(t *testing.T) {
	tests := []struct {
		delivery int
		want     time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {7, time.Minute}, {50, time.Minute}}
	for _, tt := range tests {
		if got := events.Backoff(time.Second, tt.delivery); got != tt.want {
			t.Errorf("Backoff(1s, %d) = %v; want %v", tt.delivery, got, tt.want)
		}
	}
}
