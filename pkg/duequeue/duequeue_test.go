package duequeue

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func ids(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func TestQueueOrder(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	q := New()
	q.Set(Entry{ID: "c", Due: t0.Add(3 * time.Second), Revision: 1})
	q.Set(Entry{ID: "a", Due: t0.Add(time.Second), Created: t0.Add(2), Revision: 1})
	q.Set(Entry{ID: "b", Due: t0.Add(time.Second), Created: t0.Add(1), Revision: 1})
	q.Set(Entry{ID: "d", Due: t0.Add(time.Hour), Revision: 1})
	if got := ids(q.Due(t0, 10)); len(got) != 0 {
		t.Fatalf("Due before anything is due = %v", got)
	}
	// Same due time: the older challenge first.
	if got, want := ids(q.Due(t0.Add(3*time.Second), 10)), []string{"b", "a", "c"}; !slices.Equal(got, want) {
		t.Fatalf("Due = %v; want %v", got, want)
	}
	if got, want := ids(q.Due(t0.Add(3*time.Second), 2)), []string{"b", "a"}; !slices.Equal(got, want) {
		t.Fatalf("Due limited to 2 = %v; want %v", got, want)
	}
	// Due does not pop: an entry stays until its challenge is seen done.
	if got := q.Len(); got != 4 {
		t.Fatalf("Len after Due = %d; want 4", got)
	}
}

func TestQueueRescheduleAndRemove(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	q := New()
	q.Set(Entry{ID: "a", Account: "x", Due: t0, Revision: 1})
	q.Set(Entry{ID: "b", Account: "x", Due: t0, Revision: 1})
	// A check reschedules a: it is no longer due now.
	q.Set(Entry{ID: "a", Account: "x", Due: t0.Add(time.Minute), Revision: 2})
	if got, want := ids(q.Due(t0, 10)), []string{"b"}; !slices.Equal(got, want) {
		t.Fatalf("Due after rescheduling a = %v; want %v", got, want)
	}
	// A record read before that write does not move it back.
	q.Set(Entry{ID: "a", Account: "x", Due: t0, Revision: 1})
	if got, want := ids(q.Due(t0, 10)), []string{"b"}; !slices.Equal(got, want) {
		t.Fatalf("Due after a stale record of a = %v; want %v", got, want)
	}
	// An unknown outcome (revision 0) makes it due at once.
	q.Set(Entry{ID: "a", Account: "x"})
	if got, want := ids(q.Due(t0, 10)), []string{"a", "b"}; !slices.Equal(got, want) {
		t.Fatalf("Due after an unknown write of a = %v; want %v", got, want)
	}
	if got := q.Due(t0, 10)[0].Revision; got != 2 {
		t.Fatalf("revision after an unknown write = %d; want 2 (kept)", got)
	}
	q.Remove("b")
	q.Remove("b")
	q.Remove("nope")
	if got, want := ids(q.Due(t0.Add(time.Hour), 10)), []string{"a"}; !slices.Equal(got, want) || q.Len() != 1 {
		t.Fatalf("Due after removing b = %v (Len %d); want %v", got, q.Len(), want)
	}
}

// The queue holds one entry per challenge, whatever the writes: its size is
// the pending work. Due returns the due entries in order, as a sort would.
func TestQueueBoundedRandom(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	q := New()
	model := map[string]time.Time{}
	rng := rand.New(rand.NewPCG(1, 2))
	rev := int64(0)
	for range 20_000 {
		id := fmt.Sprintf("c%03d", rng.IntN(500))
		rev++
		if rng.IntN(4) == 0 {
			q.Remove(id)
			delete(model, id)
			continue
		}
		due := t0.Add(time.Duration(rng.IntN(1000)) * time.Second)
		q.Set(Entry{ID: id, Due: due, Revision: rev})
		model[id] = due
	}
	if q.Len() != len(model) || q.Len() > 500 {
		t.Fatalf("Len = %d; want %d (at most 500 challenges)", q.Len(), len(model))
	}
	now := t0.Add(400 * time.Second)
	var want []string
	for id, due := range model {
		if !due.After(now) {
			want = append(want, id)
		}
	}
	slices.SortFunc(want, func(a, b string) int {
		if c := model[a].Compare(model[b]); c != 0 {
			return c
		}
		return map[bool]int{true: -1, false: 1}[a < b]
	})
	if got := ids(q.Due(now, len(model))); !slices.Equal(got, want) {
		t.Fatalf("Due = %d entries %v...; want %d %v...", len(got), got[:min(5, len(got))], len(want), want[:min(5, len(want))])
	}
	if got := ids(q.Due(now, 7)); !slices.Equal(got, want[:7]) {
		t.Fatalf("Due(7) = %v; want %v", got, want[:7])
	}
}
