package events

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Chaos makes every consumer of a connection receive every event twice
// and out of order, for tests that prove handlers idempotent and
// independent of arrival order (JetStream promises neither exactly-once
// nor an order across subjects once redeliveries happen). Events are held
// for Window, shuffled, handed to the handler in that order, shuffled
// again and handed over a second time; only then is each acknowledged.
type Chaos struct {
	// Window is how long arriving events are held to be shuffled together
	// (default 30ms).
	Window time.Duration
	// Seed makes the shuffles repeatable (0: random).
	Seed uint64

	deliveries atomic.Int64
	// reordered counts batches of more than one event, which the shuffle
	// may hand over in another order than they arrived.
	reordered atomic.Int64
	// notIdempotent counts events whose first delivery was applied and
	// whose second failed: the handler is not idempotent.
	notIdempotent atomic.Int64
	mu            sync.Mutex
	rnd           *rand.Rand
}

// Deliveries is how many times handlers were called under chaos.
func (c *Chaos) Deliveries() int64 { return c.deliveries.Load() }

// Reordered is how many batches held more than one event to shuffle.
func (c *Chaos) Reordered() int64 { return c.reordered.Load() }

// NotIdempotent is how many events failed on their duplicate delivery
// after their first delivery succeeded.
func (c *Chaos) NotIdempotent() int64 { return c.notIdempotent.Load() }

func (c *Chaos) shuffle(ms []jetstream.Msg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rnd == nil {
		seed := c.Seed
		if seed == 0 {
			seed = rand.Uint64()
		}
		c.rnd = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	}
	c.rnd.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
}

// run collects messages from in and delivers each batch twice, shuffled;
// settle acknowledges or redelivers a message from its last result.
func (c *Chaos) run(ctx context.Context, in <-chan jetstream.Msg, apply func(jetstream.Msg) error, settle func(jetstream.Msg, error), log *slog.Logger) {
	window := c.Window
	if window <= 0 {
		window = 30 * time.Millisecond
	}
	for {
		var batch []jetstream.Msg
		select {
		case <-ctx.Done():
			return
		case m := <-in:
			batch = append(batch, m)
		}
		deadline := time.After(window)
	collect:
		for {
			select {
			case m := <-in:
				batch = append(batch, m)
			case <-deadline:
				break collect
			case <-ctx.Done():
				return
			}
		}
		if len(batch) > 1 {
			c.reordered.Add(1)
		}
		first := make(map[jetstream.Msg]error, len(batch))
		c.shuffle(batch)
		for _, m := range batch {
			first[m] = apply(m)
		}
		c.shuffle(batch)
		for _, m := range batch {
			err := apply(m)
			c.deliveries.Add(2)
			if first[m] == nil && err != nil && !IsPermanent(err) {
				c.notIdempotent.Add(1)
				log.Error("chaos: event applied once failed on its duplicate delivery", "subject", m.Subject(), "err", err)
			}
			if first[m] == nil {
				err = nil // applied once: acknowledge it
			}
			settle(m, err)
		}
	}
}
