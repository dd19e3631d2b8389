// Package duequeue is an in-memory schedule of due work for a service that
// is its database's only writer.
package duequeue

import (
	"container/heap"
	"sync"
	"time"
)

// Queue is an in-memory schedule of due work: one entry per item still to
// be done, ordered by when it is due (then by when it was created, then
// id). It holds only items with work to come, so its size is bounded by
// that work, not by what a collection has stored; Due costs O(due), not
// O(stored). (A copy of the verification service's challenge scheduler's,
// which can switch to it as is.)
//
// An entry is only a hint of where to look: whoever acts on it reads the
// item by _id first. So an entry may be stale (an item with nothing due
// any more, or due later than the entry says) but an item with work due
// must never be missing. It is safe for concurrent use.
type Queue struct {
	mu   sync.Mutex
	h    dueHeap
	byID map[string]*Entry
}

// Entry is one scheduled item.
type Entry struct {
	ID, Account string
	Due         time.Time
	Created     time.Time
	// Revision is the revision of the record the entry was made from: an
	// older record (read before a later write) does not move it back.
	Revision int64
	index    int
}

// New returns an empty queue.
func New() *Queue { return &Queue{byID: map[string]*Entry{}} }

// Set schedules (or reschedules) an item. A record older than the one
// the entry came from changes nothing, unless its revision is 0 (unknown:
// the entry is then due at once, to be read and decided).
func (q *Queue) Set(e Entry) {
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

// Remove unschedules an item with nothing due any more.
func (q *Queue) Remove(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if cur, ok := q.byID[id]; ok {
		heap.Remove(&q.h, cur.index)
		delete(q.byID, id)
	}
}

// Due returns up to limit entries due by now, earliest first, without
// removing them: an entry leaves the queue only when its item is seen
// with nothing due, so a check that fails (or a crash of the sweep) forgets
// nothing. It costs O(limit log n).
func (q *Queue) Due(now time.Time, limit int) []Entry {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []Entry
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

// Len is how many items are scheduled.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.h)
}

// dueHeap orders entries by due time, created time and id; index is each
// entry's place in the heap.
type dueHeap []*Entry

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
	e := x.(*Entry)
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
