package docstore

import (
	"hash/fnv"
	"sync"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// FerretDB v1's SQLite handler does not apply an update's filter atomically
// with its write: two concurrent version-guarded updates can both succeed
// (TestConcurrentUpdatesLoseNothing caught it). Each service is the only
// writer of its database, so writes to one document are also serialized
// within the process. On MongoDB the version filter alone is atomic, which
// is what keeps several replicas of a service correct.
var stripes [256]sync.Mutex

func lockDoc(c *mongo.Collection, id string) func() {
	h := fnv.New32a()
	_, _ = h.Write([]byte(c.Database().Name()))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(c.Name()))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(id))
	m := &stripes[h.Sum32()%uint32(len(stripes))]
	m.Lock()
	rcs := cachesOf(c)
	if len(rcs) == 0 {
		return m.Unlock
	}
	for _, rc := range rcs {
		rc.beginWrite(id)
	}
	return func() {
		for _, rc := range rcs {
			rc.endWrite(id)
		}
		m.Unlock()
	}
}
