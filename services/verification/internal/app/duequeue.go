package app

import (
	"container/heap"
	"sync"
	"time"
)

// DueQueue is the in-memory schedule of pending challenges: one entry per
// challenge still to be checked, ordered by when it is due (then by when it
// was created, then id). It holds nothing but pending challenges, so its
// size is bounded by pending work, not by what the collection has stored.
//
// An entry is only a hint of where to look: whoever acts on it reads the
// challenge by _id first. So an entry may be stale (a challenge no longer
// pending, or due later than the entry says) but a pending challenge must
// never be missing: see QueuedChallenges. It is safe for concurrent use.
type DueQueue struct {
	mu   sync.Mutex
	h    dueHeap
	byID map[string]*DueEntry
}

// DueEntry is one scheduled challenge.
type DueEntry struct {
	ID, Account string
	Due         time.Time
	Created     time.Time
	// Revision is the revision of the record the entry was made from: an
	// older record (read before a later write) does not move it back.
	Revision int64
	index    int
}

// NewDueQueue returns an empty queue.
func NewDueQueue() *DueQueue { return &DueQueue{byID: map[string]*DueEntry{}} }

// Set schedules (or reschedules) a challenge. A record older than the one
// the entry came from changes nothing, unless its revision is 0 (unknown:
// the entry is then due at once, to be read and decided).
func (q *DueQueue) Set(e DueEntry) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if cur, ok := q.byID[e.ID]; ok {
		if e.Revision != 0 && e.Revision < cur.Revision {
			return
		}
		cur.Account, cur.Due, cur.Created = e.Account, e.Due, e.Created
		cur.Revision = max(cur.Revision, e.Revision)
		heap.Fix(&q.h, cur.index)
		return
	}
	n := e
	q.byID[e.ID] = &n
	heap.Push(&q.h, &n)
}

// Remove unschedules a challenge that is no longer pending (a pending
// challenge never comes back from verified, failed or cancelled).
func (q *DueQueue) Remove(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if cur, ok := q.byID[id]; ok {
		heap.Remove(&q.h, cur.index)
		delete(q.byID, id)
	}
}

// Due returns up to limit entries due by now, earliest first, without
// removing them: an entry leaves the queue only when its challenge is seen
// not pending, so a check that fails (or a crash of the sweep) forgets
// nothing. It costs O(limit log n).
func (q *DueQueue) Due(now time.Time, limit int) []DueEntry {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []DueEntry
	// Walk the heap's implicit tree from the root, visiting only due
	// entries, smallest first (a frontier of heap positions).
	f := &frontier{h: q.h}
	if len(q.h) > 0 {
		f.pos = []int{0}
	}
	for len(f.pos) > 0 && len(out) < limit {
		i := heap.Pop(f).(int)
		e := q.h[i]
		if e.Due.After(now) {
			break
		}
		out = append(out, *e)
		for _, c := range []int{2*i + 1, 2*i + 2} {
			if c < len(q.h) {
				heap.Push(f, c)
			}
		}
	}
	for i := range out {
		out[i].index = 0
	}
	return out
}

// Len is how many challenges are scheduled.
func (q *DueQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.h)
}

// dueHeap orders entries by due time, created time and id; index is each
// entry's place in the heap.
type dueHeap []*DueEntry

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if !a.Due.Equal(b.Due) {
		return a.Due.Before(b.Due)
	}
	if !a.Created.Equal(b.Created) {
		return a.Created.Before(b.Created)
	}
	return a.ID < b.ID
}
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *dueHeap) Push(x any) {
	e := x.(*DueEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *dueHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// frontier is a heap of positions in a dueHeap, ordered as the entries
// there are.
type frontier struct {
	h   dueHeap
	pos []int
}

func (f *frontier) Len() int           { return len(f.pos) }
func (f *frontier) Less(i, j int) bool { return f.h.Less(f.pos[i], f.pos[j]) }
func (f *frontier) Swap(i, j int)      { f.pos[i], f.pos[j] = f.pos[j], f.pos[i] }
func (f *frontier) Push(x any)         { f.pos = append(f.pos, x.(int)) }
func (f *frontier) Pop() any {
	x := f.pos[len(f.pos)-1]
	f.pos = f.pos[:len(f.pos)-1]
	return x
}
