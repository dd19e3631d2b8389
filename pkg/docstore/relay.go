package docstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
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
// document, then clears them. A store tells it which document it just wrote
// (Notify), and the relay publishes that one by _id at once; a sweep every
// interval catches outboxes left by a process that died before publishing.
// Sweeps scan the collection, which the embedded database does slowly, so
// they are the safety net, not the path events normally take. A
// single-writer relay (SingleWriter) is the only one writing its
// collections, so after its start sweep (what an earlier process left) it
// knows every outbox there is: it never scans again, and retries a failed
// publish by _id at the next tick. A periodic scan would cost time in
// proportion to the stored data (at 100,000 records of FerretDB, minutes of
// CPU), which issue 7 rules out.
type Relay struct {
	pub      Publisher
	log      *slog.Logger
	interval time.Duration

	mu      sync.Mutex
	colls   []*mongo.Collection
	queue   []queued
	wake    chan struct{}
	pending map[queued]bool
	// written holds the outbox a store just wrote for a queued document
	// (Written), so that drain publishes it without reading it back.
	written map[queued]pending
	// sent holds, for a document whose outbox is not cleared yet, the
	// events already published from it: a write that lands before the
	// clear appends to the outbox, and publishing the older events again
	// cost a broker round trip each (JetStream dropped them by
	// Nats-Msg-Id), for nearly every application's first event.
	sent map[queued]map[string]bool

	singleWriter bool
	// swept is set once a sweep has read every watched collection; a
	// single writer sweeps until then.
	swept atomic.Bool
	// retry holds the documents whose publish failed, for the next tick.
	retry []queued
	// mems are the memory list indexes of watched collections, by collKey.
	mems map[string][]*memIndex
}

type queued struct {
	coll *mongo.Collection
	id   string
}

// NewRelay returns a relay; interval is the sweep period (default 5s).
func NewRelay(pub Publisher, log *slog.Logger, interval time.Duration) *Relay {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	return &Relay{pub: pub, log: log, interval: interval, wake: make(chan struct{}, 1), pending: map[queued]bool{}, written: map[queued]pending{}, sent: map[queued]map[string]bool{}}
}

// Watch adds a collection of Records to the sweep.
func (r *Relay) Watch(coll *mongo.Collection) { r.watch(coll, nil) }

// watch adds a collection; a single writer's start sweep also fills mem
// (nil: none) from every record it reads.
func (r *Relay) watch(coll *mongo.Collection, mem *memIndex) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.colls = append(r.colls, coll)
	if mem != nil {
		if r.mems == nil {
			r.mems = map[string][]*memIndex{}
		}
		r.mems[collKey(coll)] = append(r.mems[collKey(coll)], mem)
	}
}

// Notify asks for the outbox of one document to be published now; it
// never blocks.
func (r *Relay) Notify(coll *mongo.Collection, id string) { r.notify(coll, id, nil) }

// Written is Notify from the store that has just written the document at
// version with outbox (the whole stored outbox): the relay publishes it
// without reading the document back, one database command fewer per
// write with events. A later write's Written or Notify replaces it.
func (r *Relay) Written(coll *mongo.Collection, id string, version int64, outbox []events.Event) {
	r.notify(coll, id, &pending{ID: id, Version: version, Outbox: outbox})
}

func (r *Relay) notify(coll *mongo.Collection, id string, w *pending) {
	q := queued{coll, id}
	r.mu.Lock()
	if w != nil {
		r.written[q] = *w
	} else {
		delete(r.written, q) // what was written is not known: read it
	}
	if !r.pending[q] {
		r.pending[q] = true
		r.queue = append(r.queue, q)
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// retryLater queues a document to be read and published at the next tick
// (a tick, not at once, so that a version that keeps moving cannot spin).
func (r *Relay) retryLater(coll *mongo.Collection, id string) {
	r.mu.Lock()
	r.retry = append(r.retry, queued{coll, id})
	r.mu.Unlock()
}

// Run relays until ctx is done.
func (r *Relay) Run(ctx context.Context) error {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	sweep := true
	for {
		if sweep {
			if err := r.Pass(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("outbox sweep failed; will retry", "err", err)
			} else if err == nil {
				r.swept.Store(true)
			}
		}
		r.drain(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			sweep = !r.singleWriter || !r.swept.Load()
			r.requeueFailed()
		case <-r.wake:
			sweep = false
		}
	}
}

// requeueFailed puts the documents whose publish failed back in the queue.
func (r *Relay) requeueFailed() {
	r.mu.Lock()
	retry := r.retry
	r.retry = nil
	r.mu.Unlock()
	for _, q := range retry {
		r.Notify(q.coll, q.id)
	}
}

// drain publishes the notified documents.
func (r *Relay) drain(ctx context.Context) {
	for {
		r.mu.Lock()
		if len(r.queue) == 0 {
			r.mu.Unlock()
			return
		}
		q := r.queue[0]
		r.queue = r.queue[1:]
		delete(r.pending, q)
		d, known := r.written[q]
		delete(r.written, q)
		r.mu.Unlock()
		var err error
		if !known {
			err = q.coll.FindOne(ctx, bson.D{{Key: "_id", Value: q.id}},
				options.FindOne().SetProjection(bson.D{{Key: "version", Value: 1}, {Key: "outbox", Value: 1}})).Decode(&d)
		}
		if err == nil {
			err = r.publish(ctx, q.coll, d)
		}
		if errors.Is(err, mongo.ErrNoDocuments) {
			// Removed, or a create that was never made: nothing to send.
			r.mu.Lock()
			delete(r.sent, q)
			r.mu.Unlock()
			continue
		}
		if err != nil && ctx.Err() == nil {
			r.mu.Lock()
			r.retry = append(r.retry, q)
			r.mu.Unlock()
			r.log.Warn("outbox publish failed; retrying at the next tick", "id", q.id, "err", err)
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
		r.mu.Lock()
		mems := r.mems[collKey(c)]
		r.mu.Unlock()
		if r.singleWriter && len(mems) > 0 {
			if err := r.passAll(ctx, c, mems); err != nil {
				return err
			}
			continue
		}
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
	// On MongoDB {pending: true} is answered from PendingIndex. A single
	// writer (FerretDB) scans either way, once at start, and asks about the
	// outbox itself so that records written before pending existed count.
	filter := bson.D{{Key: "pending", Value: true}}
	if r.singleWriter {
		filter = bson.D{{Key: "outbox.0", Value: bson.D{{Key: "$exists", Value: true}}}}
	}
	cur, err := c.Find(ctx, filter,
		options.Find().SetProjection(bson.D{{Key: "version", Value: 1}, {Key: "outbox", Value: 1}}).SetLimit(100))
	if err != nil {
		return 0, fmt.Errorf("find outboxes in %s: %w", c.Name(), err)
	}
	var docs []pending
	if err := cur.All(ctx, &docs); err != nil {
		return 0, fmt.Errorf("read outboxes in %s: %w", c.Name(), err)
	}
	for _, d := range docs {
		if err := r.publish(ctx, c, d); err != nil {
			return 0, err
		}
	}
	return len(docs), nil
}

// passAll reads every record of c once, in one cursor: it fills the
// memory list indexes and publishes the outboxes it finds. FerretDB
// decodes every record for the outbox query anyway, so reading them all
// costs the start no more than the sweep did.
func (r *Relay) passAll(ctx context.Context, c *mongo.Collection, mems []*memIndex) error {
	proj := bson.D{{Key: "version", Value: 1}, {Key: "outbox", Value: 1}, {Key: "account", Value: 1}, {Key: "created", Value: 1}}
	for _, m := range mems {
		for _, f := range m.fields {
			proj = append(proj, bson.E{Key: f, Value: 1})
		}
	}
	cur, err := c.Find(ctx, bson.D{}, options.Find().SetProjection(proj))
	if err != nil {
		return fmt.Errorf("read %s: %w", c.Name(), err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		for _, m := range mems {
			m.found(cur.Current)
		}
		var d pending
		if err := bson.Unmarshal(cur.Current, &d); err != nil {
			return fmt.Errorf("read %s: %w", c.Name(), err)
		}
		if err := r.publish(ctx, c, d); err != nil {
			return err
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("read %s: %w", c.Name(), err)
	}
	for _, m := range mems {
		m.setReady()
	}
	return nil
}

// publish sends one document's outbox and clears it.
func (r *Relay) publish(ctx context.Context, c *mongo.Collection, d pending) error {
	q := queued{c, d.ID}
	r.mu.Lock()
	if len(d.Outbox) == 0 {
		delete(r.sent, q) // cleared, perhaps by another process
		r.mu.Unlock()
		return nil
	}
	sent := r.sent[q]
	if sent == nil {
		sent = map[string]bool{}
		r.sent[q] = sent
	}
	r.mu.Unlock()
	for _, ev := range d.Outbox {
		r.mu.Lock()
		done := sent[ev.ID]
		r.mu.Unlock()
		if done {
			continue
		}
		if err := r.pub.Publish(ctx, ev); err != nil {
			return err
		}
		r.mu.Lock()
		sent[ev.ID] = true
		r.mu.Unlock()
	}
	// Clear only if nobody wrote since we read; otherwise the newer outbox
	// is published again on its own notification (or the sweep), and
	// JetStream drops the repeats by Nats-Msg-Id.
	unlock := lockDoc(c, d.ID)
	defer unlock()
	// Reading the version by _id under the lock and then writing by _id is
	// what a SingleWriter store does too; on MongoDB the version filter
	// alone would do, and is kept as well.
	var cur struct {
		Version int64 `bson:"version"`
	}
	if v, ok := heldVersion(c, d.ID); ok {
		cur.Version = v // what the store's last write or read under the lock left
	} else if err := c.FindOne(ctx, bson.D{{Key: "_id", Value: d.ID}}, options.FindOne().SetProjection(bson.D{{Key: "version", Value: 1}})).Decode(&cur); err != nil {
		return fmt.Errorf("reread %s: %w", d.ID, err)
	}
	if cur.Version != d.Version {
		// Written since. A write with events has queued the document
		// again; one without (or another process's) has not, and the
		// outbox, published now, would stay until the next start: read
		// it again at the next tick and clear it.
		r.retryLater(c, d.ID)
		return nil
	}
	filter := bson.D{{Key: "_id", Value: d.ID}}
	if !r.singleWriter {
		filter = append(filter, bson.E{Key: "version", Value: d.Version})
	}
	_, err := c.UpdateOne(ctx, filter,
		bson.D{{Key: "$set", Value: bson.D{{Key: "outbox", Value: bson.A{}}, {Key: "pending", Value: false}, {Key: "version", Value: d.Version + 1}}}})
	if err != nil {
		writeFailed(c, d.ID)
		return fmt.Errorf("clear outbox of %s: %w", d.ID, err)
	}
	outboxCleared(c, d.ID, d.Version+1)
	r.mu.Lock()
	delete(r.sent, q)
	r.mu.Unlock()
	return nil
}

// SingleWriter makes the relay clear outboxes by _id alone (see the store
// option of the same name).
func (r *Relay) SingleWriter() { r.singleWriter = true }
