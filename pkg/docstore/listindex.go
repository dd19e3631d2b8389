package docstore

import (
	"slices"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// A memIndex is a single writer's in-memory list index: each account's
// records in the listing order, with the values of a few filter fields, so
// that List finds a page by binary search and reads only the records on it
// (FerretDB v1 would read and decode the whole collection for every page:
// 2–3 s at 20,000 records, page 1 and page 1,000 alike). The relay's start
// sweep, which reads every record once anyway, fills it; until that is
// done List asks the database. Every later write goes through this
// process's Store, which keeps it current; a write that failed leaves the
// record's fields unknown, and List then reads that record to decide.
type memIndex struct {
	fields   []string // filter keys kept, e.g. "doc.state"
	orderKey string   // the time records list by, newest first: "created"
	// everyAccount also keeps one list of every account's records,
	// listed as account "" (a reviewer's view of a trail).
	everyAccount bool

	all []*memEntry // every account's, newest first, if everyAccount

	mu        sync.RWMutex
	ready     bool
	byAccount map[string][]*memEntry // newest first
	byID      map[string]*memEntry
	// gone holds the records removed before the index was ready, so a
	// start sweep that read one before its removal does not list it again.
	gone map[string]bool
}

type memEntry struct {
	id      string
	account string
	created time.Time         // millisecond precision, as stored
	values  [][]bson.RawValue // by the index's fields, in order
	unknown bool              // a failed write: read the record to match
}

func newMemIndex(fields []string) *memIndex { return newOrderedIndex("created", false, fields) }

func newOrderedIndex(orderKey string, everyAccount bool, fields []string) *memIndex {
	return &memIndex{fields: fields, orderKey: orderKey, everyAccount: everyAccount,
		byAccount: map[string][]*memEntry{}, byID: map[string]*memEntry{}, gone: map[string]bool{}}
}

// stored is t as the database keeps it (BSON dates are milliseconds).
func stored(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }

// before reports whether a lists before b: newer, or as new with a greater id.
func before(a, b Position) bool {
	if !a.Created.Equal(b.Created) {
		return a.Created.After(b.Created)
	}
	return a.ID > b.ID
}

func (e *memEntry) pos() Position { return Position{Created: e.created, ID: e.id} }

// set records raw (a whole stored record, or one projected to the index's
// fields) as the record's current state: what a write of this process made.
func (x *memIndex) set(raw bson.Raw) { x.put(raw, true) }

// found records what the start sweep read, unless a write of this process
// has already said more recently what the record holds.
func (x *memIndex) found(raw bson.Raw) { x.put(raw, false) }

func (x *memIndex) put(raw bson.Raw, write bool) {
	id, _ := raw.Lookup("_id").StringValueOK()
	if id == "" {
		return
	}
	account, _ := raw.Lookup("account").StringValueOK()
	at, _ := raw.Lookup(x.orderKey).TimeOK()
	e := &memEntry{id: id, account: account, created: stored(at), values: make([][]bson.RawValue, len(x.fields))}
	for i, f := range x.fields {
		vals := valuesAt(raw, strings.Split(f, "."))
		for j := range vals { // raw may be reused by its reader
			vals[j].Value = slices.Clone(vals[j].Value)
		}
		e.values[i] = vals
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if !write && x.gone[e.id] {
		return
	}
	if old, ok := x.byID[e.id]; ok {
		if write {
			*old = *e // created and account never change
		}
		return
	}
	x.byID[e.id] = e
	if !x.ready {
		// Filling: setReady sorts once, since inserting in order would
		// move the list for every record read (the sweep reads oldest
		// first, each one going to the front).
		x.byAccount[e.account] = append(x.byAccount[e.account], e)
		if x.everyAccount {
			x.all = append(x.all, e)
		}
		return
	}
	list := x.byAccount[e.account]
	x.byAccount[e.account] = slices.Insert(list, firstAfter(list, e.pos()), e)
	if x.everyAccount {
		x.all = slices.Insert(x.all, firstAfter(x.all, e.pos()), e)
	}
}

// newestFirst orders entries as lists are kept.
func newestFirst(a, b *memEntry) int {
	switch {
	case before(a.pos(), b.pos()):
		return -1
	case before(b.pos(), a.pos()):
		return 1
	}
	return 0
}

// forget marks a record's fields unknown (its write failed).
func (x *memIndex) forget(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if e, ok := x.byID[id]; ok {
		e.unknown = true
	}
}

func (x *memIndex) remove(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.ready {
		x.gone[id] = true
	}
	e, ok := x.byID[id]
	if !ok {
		return
	}
	delete(x.byID, id)
	x.byAccount[e.account] = slices.DeleteFunc(x.byAccount[e.account], func(o *memEntry) bool { return o == e })
	if x.everyAccount {
		x.all = slices.DeleteFunc(x.all, func(o *memEntry) bool { return o == e })
	}
}

func (x *memIndex) setReady() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ready {
		return
	}
	for _, list := range x.byAccount {
		slices.SortFunc(list, newestFirst)
	}
	slices.SortFunc(x.all, newestFirst)
	x.ready, x.gone = true, nil
}

// covers reports whether the index can answer a filter: ready, and every
// key one it keeps.
func (x *memIndex) covers(filter bson.D) bool {
	x.mu.RLock()
	ready := x.ready
	x.mu.RUnlock()
	if !ready {
		return false
	}
	for _, e := range filter {
		if !slices.Contains(x.fields, e.Key) {
			return false
		}
	}
	return true
}

// candidate is a record the index puts on a page: matched by its kept
// fields, or to be read and matched (unknown).
type candidate struct {
	pos     Position
	unknown bool
}

// page returns up to n records of the account after the position (nil:
// from the newest) that filter selects by the kept fields, in order.
// Account "" is every account's if the index keeps them.
func (x *memIndex) page(account string, after *Position, filter bson.D, n int) ([]candidate, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	list := x.byAccount[account]
	if account == "" && x.everyAccount {
		list = x.all
	}
	i := 0
	if after != nil {
		p := Position{Created: stored(after.Created), ID: after.ID}
		i = firstAfter(list, p)
	}
	var out []candidate
	for ; i < len(list) && len(out) < n; i++ {
		e := list[i]
		if e.unknown {
			out = append(out, candidate{pos: e.pos(), unknown: true})
			continue
		}
		ok := true
		for _, f := range filter {
			m, err := cond(e.values[slices.Index(x.fields, f.Key)], f.Value)
			if err != nil {
				return nil, err
			}
			if !m {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, candidate{pos: e.pos()})
		}
	}
	return out, nil
}

// firstAfter is the index of the first entry that lists after p.
func firstAfter(list []*memEntry, p Position) int {
	lo, hi := 0, len(list)
	for lo < hi {
		mid := (lo + hi) / 2
		if before(p, list[mid].pos()) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}
