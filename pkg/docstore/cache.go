package docstore

import (
	"container/list"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// A readCache keeps the stored bytes of recently read records of one
// collection so that Get need not ask the database: on FerretDB v1 a find
// by _id costs about 1.6 ms of CPU converting the stored JSON, which caps a
// read-mostly method near 1,250 requests/s on two cores (README,
// Benchmarks). It is correct only while this process is the collection's
// one writer (SingleWriter) and every write goes through the Store or the
// relay, both of which take lockDoc: lockDoc drops the record and bumps its
// stripe's generation when the lock is taken and again when it is released,
// and a read fills the cache only if no write of the stripe is in progress
// and the generation it saw before asking the database is still current. A
// read racing a write therefore never leaves the older bytes behind
// (TestReadCacheNeverGoesBack caught a fill made while a writer held the
// lock, which a later read of the new bytes could not replace). A write that failed may still have been made by
// the database (a connection cut after the command was sent), so its
// record is not cached again for suspectFor; reads go to the database.
type readCache struct {
	mu      sync.Mutex
	max     int // bytes
	size    int
	lru     *list.List // of *cacheEntry, most recent first
	items   map[string]*list.Element
	gen     [1024]uint64
	writing [1024]int // writers holding a lock in the stripe
	suspect map[string]time.Time
	now     func() time.Time

	hits, misses atomic.Int64
}

type cacheEntry struct {
	id  string
	raw []byte
}

const suspectFor = time.Minute

func newReadCache(maxBytes int) *readCache {
	return &readCache{max: maxBytes, lru: list.New(), items: map[string]*list.Element{}, suspect: map[string]time.Time{}, now: time.Now}
}

// caches finds a collection's caches from lockDoc, which the relay calls
// with the collection alone. Each Store has its own cache, made empty when
// the Store is (a service started again in one process, as tests do, must
// not read what its predecessor kept); weak pointers let a dropped Store's
// cache go.
var caches struct {
	sync.Mutex
	m map[string][]weak.Pointer[readCache]
}

func collKey(c *mongo.Collection) string { return c.Database().Name() + "\x00" + c.Name() }

// cachesOf returns the live caches of the collection (usually none or one).
func cachesOf(c *mongo.Collection) []*readCache {
	caches.Lock()
	defer caches.Unlock()
	ps := caches.m[collKey(c)]
	if len(ps) == 0 {
		return nil
	}
	out := make([]*readCache, 0, len(ps))
	live := ps[:0]
	for _, p := range ps {
		if rc := p.Value(); rc != nil {
			out = append(out, rc)
			live = append(live, p)
		}
	}
	caches.m[collKey(c)] = live
	return out
}

func registerCache(c *mongo.Collection, maxBytes int) *readCache {
	rc := newReadCache(maxBytes)
	caches.Lock()
	defer caches.Unlock()
	if caches.m == nil {
		caches.m = map[string][]weak.Pointer[readCache]{}
	}
	caches.m[collKey(c)] = append(caches.m[collKey(c)], weak.Make(rc))
	return rc
}

func stripeOf(id string) int {
	// FNV-1a, inline: this runs on every read.
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return int(h % 1024)
}

// get returns the cached bytes of id, or the generation a fill must match.
func (c *readCache) get(id string) (raw []byte, gen uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[id]; ok {
		c.lru.MoveToFront(el)
		c.hits.Add(1)
		return el.Value.(*cacheEntry).raw, 0, true
	}
	c.misses.Add(1)
	return nil, c.gen[stripeOf(id)], false
}

// put keeps raw as id's bytes if no write of its stripe began or ended
// since get returned gen.
func (c *readCache) put(id string, raw []byte, gen uint64) {
	if len(raw) > c.max/8 {
		return // a huge record would evict everything else
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := stripeOf(id); c.gen[st] != gen || c.writing[st] > 0 {
		return
	}
	if until, ok := c.suspect[id]; ok {
		if c.now().Before(until) {
			return
		}
		delete(c.suspect, id)
	}
	if _, ok := c.items[id]; ok {
		return
	}
	c.items[id] = c.lru.PushFront(&cacheEntry{id: id, raw: raw})
	c.size += len(raw)
	for c.size > c.max {
		el := c.lru.Back()
		e := el.Value.(*cacheEntry)
		c.lru.Remove(el)
		delete(c.items, e.id)
		c.size -= len(e.raw)
	}
}

// beginWrite and endWrite bracket a writer's hold of id's lock: the record
// is dropped, and no read fills its stripe in between.
func (c *readCache) beginWrite(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writing[stripeOf(id)]++
	c.dropLocked(id)
}

func (c *readCache) endWrite(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writing[stripeOf(id)]--
	c.dropLocked(id)
}

func (c *readCache) dropLocked(id string) {
	c.gen[stripeOf(id)]++
	if el, ok := c.items[id]; ok {
		c.lru.Remove(el)
		delete(c.items, id)
		c.size -= len(el.Value.(*cacheEntry).raw)
	}
}

// writeFailed keeps id out of the cache for a while: the database may yet
// make the write whose answer was lost.
func (c *readCache) writeFailed(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.suspect) > 10000 {
		for k, until := range c.suspect {
			if now.After(until) {
				delete(c.suspect, k)
			}
		}
	}
	c.suspect[id] = now.Add(suspectFor)
	c.dropLocked(id)
}

// CacheStats are a store's read-cache counters (zero without ReadCache).
type CacheStats struct{ Hits, Misses int64 }

// CacheStats reports how often Get was answered from the read cache.
func (s *Store[T]) CacheStats() CacheStats {
	if s.cache == nil {
		return CacheStats{}
	}
	return CacheStats{Hits: s.cache.hits.Load(), Misses: s.cache.misses.Load()}
}

// writeFailed marks id in c's cache, if it has one.
func writeFailed(c *mongo.Collection, id string) {
	for _, rc := range cachesOf(c) {
		rc.writeFailed(id)
	}
}
