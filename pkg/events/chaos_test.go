package events_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/testenv"
)

// TestChaosDeliversTwiceShuffled: under Chaos a handler sees every event
// exactly twice, not in the order published, and each is acknowledged
// (nothing comes a third time).
func TestChaosDeliversTwiceShuffled(t *testing.T) {
	conn := testenv.Conn(t, testenv.NATS(t))
	chaos := &events.Chaos{Window: 100 * time.Millisecond, Seed: 7}
	conn.Chaos = chaos
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 20
	var (
		mu    sync.Mutex
		order []string
		count = map[string]int{}
	)
	for i := range n {
		ev, _ := events.Stamp(events.DomainVerified, "//certflow/test", fmt.Sprintf("e%02d", i), time.Now(), &eventsv1.DomainVerified{})
		if err := conn.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	go func() {
		_ = conn.Consume(ctx, events.ConsumeOptions{Durable: "chaos", Subjects: []string{events.DomainVerified}, Log: testenv.Logger(t)}, func(_ context.Context, ev events.Event) error {
			mu.Lock()
			defer mu.Unlock()
			order = append(order, ev.Subject)
			count[ev.Subject]++
			return nil
		})
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		got := len(order)
		mu.Unlock()
		if got >= 2*n || time.Now().After(deadline) {
			break
		}
	}
	time.Sleep(300 * time.Millisecond) // a third delivery would show up here
	mu.Lock()
	defer mu.Unlock()
	for i := range n {
		if s := fmt.Sprintf("e%02d", i); count[s] != 2 {
			t.Errorf("%s delivered %d times; want 2", s, count[s])
		}
	}
	first := slices.Clone(order[:min(n, len(order))])
	if slices.IsSorted(first) {
		t.Errorf("first deliveries in publish order %v; want them shuffled", first)
	}
	if chaos.Deliveries() != 2*n || chaos.NotIdempotent() != 0 {
		t.Errorf("chaos counted %d deliveries, %d not idempotent; want %d, 0", chaos.Deliveries(), chaos.NotIdempotent(), 2*n)
	}
}
