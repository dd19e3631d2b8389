package docstore

import (
	"container/list"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"go.mongodb.org/mongo-driver/v2/bson"
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
// lock, which a later read of the new bytes could not replace).
//
// The cache is also written through: the holder of a record's lock sees its
// bytes in held, decides an update on them instead of reading the database
// again, and leaves there what it wrote (the relay patches in its cleared
// outbox), which readers get once the lock is released. With one writer
// process and every write under the lock, held is what the database has;
// TestConcurrentUpdatesLoseNothing and TestReadCacheWriteThroughAgrees check
// it against the database. A write that failed may still have been made by
// the database (a connection cut after the command was sent), so its
// record is neither cached nor held for suspectFor; reads and updates of it
// go to the database.
type readCache struct {
	mu      sync.Mutex
	max     int // bytes
	size    int
	lru     *list.List // of *cacheEntry, most recent first
	items   map[string]*list.Element
	gen     [1024]uint64
	writing [1024]int // writers holding a lock in the stripe
	// held are the stored bytes of records whose lock is held, known to the
	// holder alone: taken out of items when the lock is taken (readers
	// without the lock must not see bytes a write is replacing) and put
	// back, as the write left them, when it is released.
	held    map[string][]byte
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
	return &readCache{max: maxBytes, lru: list.New(), items: map[string]*list.Element{}, held: map[string][]byte{}, suspect: map[string]time.Time{}, now: time.Now}
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

// genOf is the generation a fill of id must match (get without the lookup).
func (c *readCache) genOf(id string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen[stripeOf(id)]
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
	if c.suspectLocked(id) {
		return
	}
	if _, ok := c.items[id]; ok {
		return
	}
	c.insertLocked(id, raw)
}

func (c *readCache) insertLocked(id string, raw []byte) {
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

func (c *readCache) suspectLocked(id string) bool {
	until, ok := c.suspect[id]
	if ok && !c.now().Before(until) {
		delete(c.suspect, id)
		return false
	}
	return ok
}

// beginWrite and endWrite bracket a writer's hold of id's lock: the record
// leaves items for held, and no read fills its stripe in between. What held
// has at the end (the bytes the writer wrote or read under the lock, see
// hold) is what the next reader gets.
func (c *readCache) beginWrite(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writing[stripeOf(id)]++
	if el, ok := c.items[id]; ok {
		c.held[id] = el.Value.(*cacheEntry).raw
	}
	c.dropLocked(id)
}

func (c *readCache) endWrite(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writing[stripeOf(id)]--
	c.dropLocked(id)
	raw, ok := c.held[id]
	delete(c.held, id)
	if ok && len(raw) <= c.max/8 && !c.suspectLocked(id) {
		c.insertLocked(id, raw)
	}
}

// heldBytes returns id's stored bytes to the holder of its lock, if known.
func (c *readCache) heldBytes(id string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	raw, ok := c.held[id]
	if ok {
		c.hits.Add(1)
	}
	return raw, ok
}

// hold records, for the holder of id's lock, the bytes the database now
// holds for id: read under the lock, or just written. raw nil forgets them
// (the record is gone, or what the write left is not known).
func (c *readCache) hold(id string, raw []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if raw == nil || c.suspectLocked(id) {
		delete(c.held, id)
		return
	}
	c.held[id] = raw
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
	delete(c.held, id)
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

// heldVersion is, for the relay holding id's lock, the version the caches
// know id to have in the database (none: ask the database).
func heldVersion(c *mongo.Collection, id string) (int64, bool) {
	for _, rc := range cachesOf(c) {
		if raw, ok := rc.heldBytes(id); ok {
			if v, ok := bson.Raw(raw).Lookup("version").AsInt64OK(); ok {
				return v, true
			}
		}
	}
	return 0, false
}

// outboxCleared tells the caches, under id's lock, that the relay cleared
// its outbox and set its version: held bytes are changed to match, so the
// next update need not read the record again.
func outboxCleared(c *mongo.Collection, id string, version int64) {
	for _, rc := range cachesOf(c) {
		raw, ok := rc.heldBytes(id)
		if !ok {
			continue
		}
		var d bson.D
		if err := bson.Unmarshal(raw, &d); err != nil {
			rc.hold(id, nil)
			continue
		}
		for i := range d {
			switch d[i].Key {
			case "outbox":
				d[i].Value = bson.A{}
			case "pending":
				d[i].Value = false
			case "version":
				d[i].Value = version
			}
		}
		patched, err := bson.Marshal(d)
		if err != nil {
			patched = nil
		}
		rc.hold(id, patched)
	}
}
