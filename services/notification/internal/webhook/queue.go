package webhook

import (
	"container/heap"
	"context"
	"slices"
	"sync"
	"time"
)

// Attempt runs one delivery attempt and says whether, and after how long,
// to try again.
type Attempt func(ctx context.Context, id string) (retryAfter time.Duration, retry bool)

// Default limits of a Queue.
const (
	DefaultPerAccount = 4
	DefaultTotal      = 64
)

// Limits bound the attempts a Queue runs at once.
type Limits struct {
	// PerAccount is how many attempts of one account run at once (default
	// DefaultPerAccount): an account whose endpoint hangs holds at most
	// this many slots, each for at most the attempt timeout.
	PerAccount int
	// Total is how many attempts run at once (default DefaultTotal). Only
	// more than Total/PerAccount accounts hanging at once can fill it.
	Total int
}

// Queue holds the deliveries that are due or waiting for a retry, in
// memory: new deliveries are handed over directly and retries wait in a
// timer heap, so nothing polls the database for due work. What a restart
// loses, the caller's sweep schedules again.
//
// Due deliveries are started per account in turn (round robin), each
// account with at most Limits.PerAccount attempts at once, so one account's
// backlog or slow endpoint does not hold up another's deliveries.
type Queue struct {
	limits Limits

	mu       sync.Mutex
	items    timers
	sched    map[string]entry    // scheduled ids (waiting or ready)
	ready    map[string][]string // per account, due ids in the order they came due
	ring     []string            // accounts with ready ids, the next to serve first
	inflight map[string]string   // ids being attempted, and their account
	running  map[string]int      // attempts running per account
	wake     chan struct{}
}

type entry struct {
	account string
	at      time.Time
	ready   bool
}

// NewQueue returns an empty queue; zero limits take the defaults.
func NewQueue(l Limits) *Queue {
	if l.PerAccount <= 0 {
		l.PerAccount = DefaultPerAccount
	}
	if l.Total <= 0 {
		l.Total = DefaultTotal
	}
	return &Queue{
		limits: l, sched: map[string]entry{}, ready: map[string][]string{},
		inflight: map[string]string{}, running: map[string]int{}, wake: make(chan struct{}, 1),
	}
}

// Schedule makes the account's delivery id due after d. An id already
// scheduled keeps the earlier time; an id being attempted is left to its
// attempt, which reschedules it if needed.
func (q *Queue) Schedule(account, id string, d time.Duration) {
	at := time.Now().Add(max(d, 0))
	q.mu.Lock()
	if _, ok := q.inflight[id]; ok {
		q.mu.Unlock()
		return
	}
	if old, ok := q.sched[id]; ok && (old.ready || !at.Before(old.at)) {
		q.mu.Unlock()
		return
	}
	q.sched[id] = entry{account: account, at: at}
	heap.Push(&q.items, timer{at: at, id: id})
	q.mu.Unlock()
	q.signal()
}

func (q *Queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Len returns how many ids are scheduled or being attempted.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.sched) + len(q.inflight)
}

// Run attempts due ids until ctx is done, within the queue's limits, and
// waits for the attempts it started.
func (q *Queue) Run(ctx context.Context, attempt Attempt) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		if ctx.Err() != nil {
			return nil
		}
		id, account, wait := q.next(time.Now())
		if id != "" {
			wg.Go(func() {
				after, retry := attempt(ctx, id)
				q.finish(account, id)
				if retry && ctx.Err() == nil {
					q.Schedule(account, id, after)
				}
			})
			continue
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-q.wake:
		}
	}
}

func (q *Queue) finish(account, id string) {
	q.mu.Lock()
	delete(q.inflight, id)
	if q.running[account]--; q.running[account] <= 0 {
		delete(q.running, account)
	}
	q.mu.Unlock()
	q.signal() // a slot is free
}

// next starts the next due id, taking accounts in turn and skipping those
// at their limit, or returns how long until one may be due.
func (q *Queue) next(now time.Time) (id, account string, wait time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	wait = q.promote(now)
	if len(q.inflight) >= q.limits.Total {
		return "", "", time.Hour // woken when an attempt ends
	}
	for i, acc := range q.ring {
		if q.running[acc] >= q.limits.PerAccount {
			continue
		}
		ids := q.ready[acc]
		id, ids = ids[0], ids[1:]
		// Served: to the back of the ring, or out of it when it has no
		// more due ids.
		q.ring = slices.Delete(q.ring, i, i+1)
		if len(ids) > 0 {
			q.ready[acc] = ids
			q.ring = append(q.ring, acc)
		} else {
			delete(q.ready, acc)
		}
		delete(q.sched, id)
		q.inflight[id] = acc
		q.running[acc]++
		return id, acc, 0
	}
	return "", "", wait
}

// promote moves the ids due by now from the timer heap to their account's
// ready list and returns how long until the next one is due.
func (q *Queue) promote(now time.Time) time.Duration {
	for len(q.items) > 0 {
		top := q.items[0]
		e, ok := q.sched[top.id]
		if !ok || e.ready || !e.at.Equal(top.at) {
			heap.Pop(&q.items) // superseded by an earlier time, or started
			continue
		}
		if wait := top.at.Sub(now); wait > 0 {
			return wait
		}
		heap.Pop(&q.items)
		e.ready = true
		q.sched[top.id] = e
		if len(q.ready[e.account]) == 0 {
			q.ring = append(q.ring, e.account)
		}
		q.ready[e.account] = append(q.ready[e.account], top.id)
	}
	return time.Hour
}

type timer struct {
	at time.Time
	id string
}

// timers is a min-heap by time.
type timers []timer

func (h timers) Len() int           { return len(h) }
func (h timers) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timers) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timers) Push(x any)        { *h = append(*h, x.(timer)) }
func (h *timers) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
