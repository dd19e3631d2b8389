package docstore

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/certflow/certflow/pkg/events"
)

// Publisher sends one event and returns once the broker has stored it.
type Publisher interface {
	Publish(ctx context.Context, ev events.Event) error
}

// Relay publishes the outboxes of the collections it watches, in order per
// document, then clears them. It runs at once when kicked and sweeps every
// interval for outboxes left by a process that died before publishing.
type Relay struct {
	pub      Publisher
	log      *slog.Logger
	interval time.Duration

	mu    sync.Mutex
	colls []*mongo.Collection
	kick  chan struct{}
}

// NewRelay returns a relay; interval is the sweep period (default 2s).
func NewRelay(pub Publisher, log *slog.Logger, interval time.Duration) *Relay {
	if interval <= 0 {
		interval = 2 * time.Second
	}
	return &Relay{pub: pub, log: log, interval: interval, kick: make(chan struct{}, 1)}
}

// Watch adds a collection of Records.
func (r *Relay) Watch(coll *mongo.Collection) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.colls = append(r.colls, coll)
}

// Kick asks for a pass now; it never blocks.
func (r *Relay) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run relays until ctx is done.
func (r *Relay) Run(ctx context.Context) error {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		if err := r.Pass(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("outbox relay pass failed; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-r.kick:
		}
	}
}

type pending struct {
	ID      string         `bson:"_id"`
	Version int64          `bson:"version"`
	Outbox  []events.Event `bson:"outbox"`
}

// Pass publishes every pending outbox once.
func (r *Relay) Pass(ctx context.Context) error {
	r.mu.Lock()
	colls := append([]*mongo.Collection(nil), r.colls...)
	r.mu.Unlock()
	for _, c := range colls {
		for {
			n, err := r.passCollection(ctx, c)
			if err != nil {
				return err
			}
			if n < 100 {
				break
			}
		}
	}
	return nil
}

func (r *Relay) passCollection(ctx context.Context, c *mongo.Collection) (int, error) {
	cur, err := c.Find(ctx, bson.D{{Key: "outbox.0", Value: bson.D{{Key: "$exists", Value: true}}}},
		options.Find().SetProjection(bson.D{{Key: "version", Value: 1}, {Key: "outbox", Value: 1}}).SetLimit(100))
	if err != nil {
		return 0, fmt.Errorf("find outboxes in %s: %w", c.Name(), err)
	}
	var docs []pending
	if err := cur.All(ctx, &docs); err != nil {
		return 0, fmt.Errorf("read outboxes in %s: %w", c.Name(), err)
	}
	for _, d := range docs {
		for _, ev := range d.Outbox {
			if err := r.pub.Publish(ctx, ev); err != nil {
				return 0, err
			}
		}
		// Clear only if nobody wrote since we read; otherwise the next pass
		// sees the newer outbox and republishes, which JetStream deduplicates
		// by Nats-Msg-Id.
		unlock := lockDoc(c, d.ID)
		_, err := c.UpdateOne(ctx,
			bson.D{{Key: "_id", Value: d.ID}, {Key: "version", Value: d.Version}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "outbox", Value: bson.A{}}, {Key: "version", Value: d.Version + 1}}}})
		unlock()
		if err != nil {
			return 0, fmt.Errorf("clear outbox of %s: %w", d.ID, err)
		}
	}
	return len(docs), nil
}
