package webhook

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// Attempt runs one delivery attempt and says whether, and after how long,
// to try again.
type Attempt func(ctx context.Context, id string) (retryAfter time.Duration, retry bool)

// Queue holds the deliveries that are due or waiting for a retry, in
// memory: new deliveries are handed over directly and retries wait in a
// timer heap, so nothing polls the database for due work. What a restart
// loses, the caller's periodic sweep schedules again.
type Queue struct {
	mu       sync.Mutex
	items    timers
	due      map[string]time.Time // scheduled ids and their time
	inflight map[string]bool
	wake     chan struct{}
}

// NewQueue returns an empty queue.
func NewQueue() *Queue {
	return &Queue{due: map[string]time.Time{}, inflight: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// Schedule makes id due after d. An id already scheduled keeps the earlier
// time; an id being attempted is left to its attempt, which reschedules it
// if needed.
func (q *Queue) Schedule(id string, d time.Duration) {
	at := time.Now().Add(max(d, 0))
	q.mu.Lock()
	if q.inflight[id] {
		q.mu.Unlock()
		return
	}
	if old, ok := q.due[id]; ok && !at.Before(old) {
		q.mu.Unlock()
		return
	}
	q.due[id] = at
	heap.Push(&q.items, timer{at: at, id: id})
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Len returns how many ids are scheduled or being attempted.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.due) + len(q.inflight)
}

// Run attempts due ids with workers concurrent attempts until ctx is done.
func (q *Queue) Run(ctx context.Context, workers int, attempt Attempt) error {
	jobs := make(chan string)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for id := range jobs {
				after, retry := attempt(ctx, id)
				q.mu.Lock()
				delete(q.inflight, id)
				q.mu.Unlock()
				if retry && ctx.Err() == nil {
					q.Schedule(id, after)
				}
			}
		})
	}
	defer wg.Wait()
	defer close(jobs)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		id, wait := q.next()
		if id != "" {
			select {
			case jobs <- id:
				continue
			case <-ctx.Done():
				return nil
			}
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

// next takes the first due id off the queue and marks it in flight, or
// returns how long until one is due.
func (q *Queue) next() (string, time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) > 0 {
		top := q.items[0]
		if at, ok := q.due[top.id]; !ok || !at.Equal(top.at) {
			heap.Pop(&q.items) // superseded by an earlier time
			continue
		}
		if wait := time.Until(top.at); wait > 0 {
			return "", wait
		}
		heap.Pop(&q.items)
		delete(q.due, top.id)
		q.inflight[top.id] = true
		return top.id, 0
	}
	return "", time.Hour
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
