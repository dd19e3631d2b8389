// Package tally counts what a run does — database commands, gRPC calls —
// by name, cheaply and safely from many goroutines, so that a benchmark
// can report a budget per lifecycle. A nil *Counters counts nothing.
package tally

import (
	"sort"
	"sync"
	"sync/atomic"
)

// Counters is a set of named counters.
type Counters struct {
	m sync.Map // string -> *atomic.Int64
}

// Add adds n to the counter key.
func (c *Counters) Add(key string, n int64) {
	if c == nil {
		return
	}
	v, ok := c.m.Load(key)
	if !ok {
		v, _ = c.m.LoadOrStore(key, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(n)
}

// Snapshot returns every counter's value now.
func (c *Counters) Snapshot() map[string]int64 {
	out := map[string]int64{}
	if c == nil {
		return out
	}
	c.m.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

// Since returns how much each counter grew after the snapshot before,
// sorted by name; counters that did not grow are left out.
func (c *Counters) Since(before map[string]int64) []Count {
	var out []Count
	for k, v := range c.Snapshot() {
		if d := v - before[k]; d != 0 {
			out = append(out, Count{k, d})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Count is one counter's growth.
type Count struct {
	Key string
	N   int64
}
