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
	orderKey string   // the time records list by: "created"
	// everyAccount also keeps one list of every account's records,
	// listed as account "" (a reviewer's view of a trail, a review queue).
	everyAccount bool

	// Lists are kept oldest first, so that a new record (the newest) is
	// appended: inserting at the front moved the whole list, 200,000
	// pointers for every audit event at 100,000 lifecycles.
	all []*memEntry // every account's, if everyAccount

	mu        sync.RWMutex
	ready     bool
	byAccount map[string][]*memEntry
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

// older reports whether a is older than b: created earlier, or at the
// same time with a smaller id (the listing order, read backwards).
func older(a, b Position) bool {
	if !a.Created.Equal(b.Created) {
		return a.Created.Before(b.Created)
	}
	return a.ID < b.ID
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
		// Filling: setReady sorts once (the sweep reads in no set order).
		x.byAccount[e.account] = append(x.byAccount[e.account], e)
		if x.everyAccount {
			x.all = append(x.all, e)
		}
		return
	}
	x.byAccount[e.account] = insert(x.byAccount[e.account], e)
	if x.everyAccount {
		x.all = insert(x.all, e)
	}
}

// insert puts e in its place in list: at the end for the newest record.
func insert(list []*memEntry, e *memEntry) []*memEntry {
	return slices.Insert(list, firstNotOlder(list, e.pos()), e)
}

// drop removes e from list.
func drop(list []*memEntry, e *memEntry) []*memEntry {
	if i := firstNotOlder(list, e.pos()); i < len(list) && list[i] == e {
		return slices.Delete(list, i, i+1)
	}
	return slices.DeleteFunc(list, func(o *memEntry) bool { return o == e })
}

// oldestFirst orders entries as lists are kept.
func oldestFirst(a, b *memEntry) int {
	switch {
	case older(a.pos(), b.pos()):
		return -1
	case older(b.pos(), a.pos()):
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
	x.byAccount[e.account] = drop(x.byAccount[e.account], e)
	if x.everyAccount {
		x.all = drop(x.all, e)
	}
}

func (x *memIndex) setReady() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ready {
		return
	}
	for _, list := range x.byAccount {
		slices.SortFunc(list, oldestFirst)
	}
	slices.SortFunc(x.all, oldestFirst)
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
// from the start) that filter selects by the kept fields, newest first,
// or oldest first if ascending. Account "" is every account's if the
// index keeps them.
func (x *memIndex) page(account string, after *Position, filter bson.D, n int, ascending bool) ([]candidate, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	list := x.byAccount[account]
	if account == "" && x.everyAccount {
		list = x.all
	}
	i, step := len(list)-1, -1
	if ascending {
		i, step = 0, 1
	}
	if after != nil {
		p := Position{Created: stored(after.Created), ID: after.ID}
		if ascending {
			i = firstNewer(list, p)
		} else {
			i = firstNotOlder(list, p) - 1
		}
	}
	var out []candidate
	for ; i >= 0 && i < len(list) && len(out) < n; i += step {
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

// firstNotOlder is the index of the first entry at p or newer.
func firstNotOlder(list []*memEntry, p Position) int {
	i, _ := slices.BinarySearchFunc(list, p, func(e *memEntry, p Position) int {
		if older(e.pos(), p) {
			return -1
		}
		return 1
	})
	return i
}

// firstNewer is the index of the first entry newer than p.
func firstNewer(list []*memEntry, p Position) int {
	i, _ := slices.BinarySearchFunc(list, p, func(e *memEntry, p Position) int {
		if older(p, e.pos()) {
			return 1
		}
		return -1
	})
	return i
}
