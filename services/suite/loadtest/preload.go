package loadtest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/certflow/certflow/pkg/docstore"
)

// Preloading fills the databases with copies of one real lifecycle, straight
// into the stores (not through the API), so that the lifecycle and the reads
// can be measured with much data stored. Snapshot reads every document a
// finished lifecycle wrote (those of its account); Clone rewrites every id,
// name, domain, account and time in them consistently for copy k. Nothing
// here knows a service's types: what a document is, is read from the
// documents themselves, and the few ids the services derive from other
// fields instead of drawing at random are recomputed by idRules.

// Template is the documents of one finished lifecycle, ready to be cloned.
type Template struct {
	Account string
	Domains []string
	colls   []templateColl
	tokens  []token
	rules   []boundRule
	// Spacing: copy k's times are k·Spacing before the lifecycle's.
	Spacing time.Duration
	raw     []rawColl
}

// savedTemplate is a Template in a file, with the preload it made.
type savedTemplate struct {
	Account  string
	Domains  []string
	Copies   int
	Accounts int
	Colls    []struct {
		DB, Coll string
		Docs     []json.RawMessage // canonical extended JSON
	}
}

// Write saves the template in path with the preload's numbers, so that a
// kept data folder can be measured again without preloading it again.
func (t *Template) Write(path string, copies, accounts int) error {
	st := savedTemplate{Account: t.Account, Domains: t.Domains, Copies: copies, Accounts: accounts}
	for _, r := range t.raw {
		c := struct {
			DB, Coll string
			Docs     []json.RawMessage
		}{DB: r.DB, Coll: r.Coll}
		for _, d := range r.Docs {
			b, err := bson.MarshalExtJSON(d, true, false)
			if err != nil {
				return err
			}
			c.Docs = append(c.Docs, b)
		}
		st.Colls = append(st.Colls, c)
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// ReadTemplate reads a template Write saved, if it was for this many copies
// over this many accounts.
func ReadTemplate(path string, copies, accounts int) (*Template, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var st savedTemplate
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, err
	}
	if st.Copies != copies || st.Accounts != accounts {
		return nil, fmt.Errorf("%s was preloaded with %d copies over %d accounts", path, st.Copies, st.Accounts)
	}
	var raw []rawColl
	for _, c := range st.Colls {
		r := rawColl{DB: c.DB, Coll: c.Coll}
		for _, j := range c.Docs {
			var d bson.D
			if err := bson.UnmarshalExtJSON(j, true, &d); err != nil {
				return nil, err
			}
			r.Docs = append(r.Docs, d)
		}
		raw = append(raw, r)
	}
	return compileTemplate(raw, st.Account, st.Domains)
}

type templateColl struct {
	db, coll string
	docs     []node
}

// token is a string of the lifecycle that each copy replaces.
type token struct {
	old   string
	shape shape
}

type shape int

const (
	shapeID      shape = iota // docstore.NewID: 20 lower-case base32
	shapeHex32                // event and request ids
	shapeHEX32                // certificate serials
	shapeHex64                // fingerprints
	shapeToken43              // DCV tokens (base64url of 32 bytes)
	shapeDomain
)

// Recognised by their form: docstore ids, hex ids and serials, fingerprints.
var tokenForms = []struct {
	re    *regexp.Regexp
	shape shape
}{
	{regexp.MustCompile(`\b[a-z2-7]{20}\b`), shapeID},
	{regexp.MustCompile(`\b[0-9a-f]{32}\b`), shapeHex32},
	{regexp.MustCompile(`\b[0-9A-F]{32}\b`), shapeHEX32},
	{regexp.MustCompile(`\b[0-9a-f]{64}\b`), shapeHex64},
}

// A whole string of this form is a DCV token (it also appears inside
// record values and mail bodies).
var token43 = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// idRule says how a service derives a document's _id from its other fields
// (docstore.IDFor) rather than drawing it at random; a copy's id must be
// derived the same way from the copy's fields, or the service, looking the
// id up, would not find it. Snapshot checks every rule against the
// lifecycle's own documents, so a changed derivation fails loudly here
// instead of making unreadable copies.
type idRule struct {
	db, coll string
	derive   func(get func(path string) string) string
}

var idRules = []idRule{
	// verification app.ChallengeID
	{"certflow_verification", "challenges", func(get func(string) string) string {
		return docstore.IDFor(get("account"), get("doc.application")+"/attempts/"+get("doc.attempt")+"/"+get("doc.domain"))
	}},
	// verification app.ChallengeIndexID
	{"certflow_verification", "challenge_indexes", func(get func(string) string) string {
		return docstore.IDFor(get("account"), get("doc.application")+"/challenges")
	}},
	// verification app.ValidationID
	{"certflow_verification", "validations", func(get func(string) string) string {
		return docstore.IDFor(get("account"), "validations/"+get("doc.domain"))
	}},
	// issuance app.Issue (the issuances record shares the certificate's id)
	{"certflow_issuance", "certificates", func(get func(string) string) string {
		return docstore.IDFor(get("account"), get("doc.requestid"))
	}},
	// notification app.email / app.text
	{"certflow_notification", "notifications", func(get func(string) string) string {
		return docstore.IDFor(strings.ToLower(get("doc.channel")), get("doc.eventid"))
	}},
}

type boundRule struct {
	derive func(get func(path string) string) string
	doc    node
	id     string // the lifecycle's id this rule derives
}

// node is a document value with its strings split into literal text and
// tokens, so a copy is built without searching strings again.
type node struct {
	kind  int // nodeDoc, nodeArray, nodeString, nodeDate, nodeOther
	keys  []string
	kids  []node
	parts []part
	// exact: the whole string is the account (only whole strings are
	// accounts: "dev" also occurs inside words).
	account bool
	date    time.Time
	other   any
}

const (
	nodeDoc = iota
	nodeArray
	nodeString
	nodeDate
	nodeOther
)

type part struct {
	lit string
	tok int // index into tokens, or -1
}

// ErrUnsettled is Snapshot's answer while the lifecycle's last events are
// still being published or sent: try again shortly.
var ErrUnsettled = errors.New("the lifecycle has not settled")

// Snapshot reads every document of account in every certflow database;
// domains are the lifecycle's names. The lifecycle must have settled:
// outboxes empty (their events are protobuf bytes, which are not rewritten).
func Snapshot(ctx context.Context, client *mongo.Client, account string, domains []string) (*Template, error) {
	dbs, err := client.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return nil, err
	}
	sort.Strings(dbs)
	var raw []rawColl
	for _, db := range dbs {
		if !strings.HasPrefix(db, "certflow_") {
			continue
		}
		colls, err := client.Database(db).ListCollectionNames(ctx, bson.D{})
		if err != nil {
			return nil, err
		}
		sort.Strings(colls)
		for _, c := range colls {
			cur, err := client.Database(db).Collection(c).Find(ctx, bson.D{{Key: "account", Value: account}})
			if err != nil {
				return nil, fmt.Errorf("read %s.%s: %w", db, c, err)
			}
			var docs []bson.D
			if err := cur.All(ctx, &docs); err != nil {
				return nil, fmt.Errorf("read %s.%s: %w", db, c, err)
			}
			for _, d := range docs {
				if ob, ok := lookup(d, "outbox").(bson.A); ok && len(ob) > 0 {
					return nil, fmt.Errorf("%w: %s.%s %v has events still in its outbox", ErrUnsettled, db, c, lookup(d, "_id"))
				}
				if doc, ok := lookup(d, "doc").(bson.D); ok && lookup(doc, "state") == "PENDING" {
					return nil, fmt.Errorf("%w: %s.%s %v is still PENDING", ErrUnsettled, db, c, lookup(d, "_id"))
				}
			}
			if len(docs) > 0 {
				raw = append(raw, rawColl{DB: db, Coll: c, Docs: docs})
			}
		}
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("no documents of account %q", account)
	}
	return compileTemplate(raw, account, domains)
}

// rawColl is one collection's documents of the lifecycle, as read.
type rawColl struct {
	DB, Coll string
	Docs     []bson.D
}

func compileTemplate(raw []rawColl, account string, domains []string) (*Template, error) {
	t := &Template{Account: account, Domains: domains, Spacing: time.Second, raw: raw}
	// The tokens: every string of a token form, DCV tokens, the domains.
	index := map[string]int{}
	add := func(s string, sh shape) {
		if _, ok := index[s]; !ok {
			index[s] = len(t.tokens)
			t.tokens = append(t.tokens, token{old: s, shape: sh})
		}
	}
	for _, d := range domains {
		add(d, shapeDomain)
	}
	for _, r := range raw {
		for _, d := range r.Docs {
			walkStrings(d, func(s string) {
				for _, f := range tokenForms {
					for _, m := range f.re.FindAllString(s, -1) {
						add(m, f.shape)
					}
				}
				if token43.MatchString(s) {
					add(s, shapeToken43)
				}
			})
		}
	}
	// Longest first, so that a token inside another (none today) loses.
	order := make([]int, len(t.tokens))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return len(t.tokens[order[a]].old) > len(t.tokens[order[b]].old) })
	for _, r := range raw {
		tc := templateColl{db: r.DB, coll: r.Coll}
		for _, d := range r.Docs {
			tc.docs = append(tc.docs, t.compile(d, account, order))
		}
		t.colls = append(t.colls, tc)
	}
	identity := func(i int) string { return t.tokens[i].old }
	for _, rule := range idRules {
		for _, tc := range t.colls {
			if tc.db != rule.db || tc.coll != rule.coll {
				continue
			}
			for _, d := range tc.docs {
				id := d.get("_id", identity, account)
				get := func(p string) string { return d.get(p, identity, account) }
				if got := rule.derive(get); got != id {
					return nil, fmt.Errorf("%s.%s: _id %s is no longer derived as the preloader's rule says (it gives %s); update idRules in loadtest/preload.go", tc.db, tc.coll, id, got)
				}
				t.rules = append(t.rules, boundRule{derive: rule.derive, doc: d, id: id})
			}
		}
	}
	return t, nil
}

// Documents is how many documents one copy holds.
func (t *Template) Documents() int {
	n := 0
	for _, c := range t.colls {
		n += len(c.docs)
	}
	return n
}

// Collections names the collections a copy writes to, with documents per copy.
func (t *Template) Collections() map[string]int {
	out := map[string]int{}
	for _, c := range t.colls {
		out[c.db+"."+c.coll] = len(c.docs)
	}
	return out
}

func (t *Template) compile(v any, account string, order []int) node {
	switch x := v.(type) {
	case bson.D:
		n := node{kind: nodeDoc}
		for _, e := range x {
			n.keys = append(n.keys, e.Key)
			n.kids = append(n.kids, t.compile(e.Value, account, order))
		}
		return n
	case bson.A:
		n := node{kind: nodeArray}
		for _, e := range x {
			n.kids = append(n.kids, t.compile(e, account, order))
		}
		return n
	case string:
		if x == account {
			return node{kind: nodeString, account: true}
		}
		return node{kind: nodeString, parts: t.split(x, order)}
	case bson.DateTime:
		tm := x.Time()
		if tm.Year() < 2000 {
			// Zero times ("not yet") stay zero.
			return node{kind: nodeOther, other: x}
		}
		return node{kind: nodeDate, date: tm}
	default:
		return node{kind: nodeOther, other: x}
	}
}

// split cuts s into literal text and tokens.
func (t *Template) split(s string, order []int) []part {
	type hit struct{ at, end, tok int }
	var hits []hit
	for _, i := range order {
		old := t.tokens[i].old
		for from := 0; ; {
			j := strings.Index(s[from:], old)
			if j < 0 {
				break
			}
			at := from + j
			overlaps := slices.ContainsFunc(hits, func(h hit) bool { return at < h.end && h.at < at+len(old) })
			if !overlaps {
				hits = append(hits, hit{at, at + len(old), i})
			}
			from = at + len(old)
		}
	}
	sort.Slice(hits, func(a, b int) bool { return hits[a].at < hits[b].at })
	var parts []part
	pos := 0
	for _, h := range hits {
		if h.at > pos {
			parts = append(parts, part{lit: s[pos:h.at], tok: -1})
		}
		parts = append(parts, part{tok: h.tok})
		pos = h.end
	}
	if pos < len(s) || len(parts) == 0 {
		parts = append(parts, part{lit: s[pos:], tok: -1})
	}
	return parts
}

func (n node) str(tok func(int) string, account string) string {
	if n.account {
		return account
	}
	if len(n.parts) == 1 {
		if p := n.parts[0]; p.tok < 0 {
			return p.lit
		} else {
			return tok(p.tok)
		}
	}
	var b strings.Builder
	for _, p := range n.parts {
		if p.tok < 0 {
			b.WriteString(p.lit)
		} else {
			b.WriteString(tok(p.tok))
		}
	}
	return b.String()
}

// get renders the value at a dotted path as a string ("" when absent).
func (n node) get(path string, tok func(int) string, account string) string {
	cur := n
	for _, k := range strings.Split(path, ".") {
		i := slices.Index(cur.keys, k)
		if cur.kind != nodeDoc || i < 0 {
			return ""
		}
		cur = cur.kids[i]
	}
	switch cur.kind {
	case nodeString:
		return cur.str(tok, account)
	case nodeOther:
		return fmt.Sprint(cur.other)
	}
	return ""
}

func (n node) build(tok func(int) string, account string, shift time.Duration) any {
	switch n.kind {
	case nodeDoc:
		d := make(bson.D, len(n.keys))
		for i, k := range n.keys {
			d[i] = bson.E{Key: k, Value: n.kids[i].build(tok, account, shift)}
		}
		return d
	case nodeArray:
		a := make(bson.A, len(n.kids))
		for i, k := range n.kids {
			a[i] = k.build(tok, account, shift)
		}
		return a
	case nodeString:
		return n.str(tok, account)
	case nodeDate:
		return bson.NewDateTimeFromTime(n.date.Add(-shift))
	}
	return n.other
}

// AccountOf is the account copy k belongs to, of accounts in all: copies
// 0, accounts, 2·accounts, … stay in the lifecycle's account (whose API
// key the benchmarks hold), the others go to preload-0001 and so on.
func (t *Template) AccountOf(k, accounts int) string {
	if a := k % max(accounts, 1); a != 0 {
		return fmt.Sprintf("preload-%04d", a)
	}
	return t.Account
}

// Domain is the name copy k has in place of the lifecycle's j-th domain.
func Domain(k, j int) string {
	if j == 0 {
		return fmt.Sprintf("c%d.preload.test", k)
	}
	return fmt.Sprintf("d%d.c%d.preload.test", j, k)
}

// Copy is one collection's documents of one copy.
type Copy struct {
	DB, Coll string
	Docs     []any
}

// Clone makes copy k (k ≥ 1): every token replaced by one of its own form
// drawn from k, the derived ids derived again, times moved k·Spacing back.
func (t *Template) Clone(k, accounts int) []Copy {
	account := t.AccountOf(k, accounts)
	seed := "preload/" + strconv.Itoa(k)
	fresh := make([]string, len(t.tokens))
	for i, tk := range t.tokens {
		fresh[i] = newToken(seed, tk, k, slices.Index(t.Domains, tk.old))
	}
	// Derived ids: from the copy's own fields, in the rule order (none
	// derives from another derived id).
	byOld := map[string]int{}
	for i, tk := range t.tokens {
		byOld[tk.old] = i
	}
	tok := func(i int) string { return fresh[i] }
	for _, r := range t.rules {
		get := func(p string) string { return r.doc.get(p, tok, account) }
		if i, ok := byOld[r.id]; ok {
			fresh[i] = r.derive(get)
		}
	}
	shift := time.Duration(k) * t.Spacing
	out := make([]Copy, len(t.colls))
	for i, c := range t.colls {
		out[i] = Copy{DB: c.db, Coll: c.coll, Docs: make([]any, len(c.docs))}
		for j, d := range c.docs {
			out[i].Docs[j] = d.build(tok, account, shift)
		}
	}
	return out
}

// newToken is a value of tk's form, the same for the same (seed, token).
func newToken(seed string, tk token, k, domain int) string {
	h := sha256.Sum256([]byte(seed + "\x00" + tk.old))
	switch tk.shape {
	case shapeID:
		return docstore.IDFor(seed, tk.old)
	case shapeHex32:
		return hex.EncodeToString(h[:16])
	case shapeHEX32:
		// A positive serial with the top bit clear, as the CA's are.
		h[0] &= 0x7f
		return strings.ToUpper(hex.EncodeToString(h[:16]))
	case shapeHex64:
		return hex.EncodeToString(h[:])
	case shapeToken43:
		return base64.RawURLEncoding.EncodeToString(h[:])
	case shapeDomain:
		return Domain(k, domain)
	}
	panic("unknown token shape")
}

// PreloadStats is what Preload wrote.
type PreloadStats struct {
	Copies, Documents int
	Elapsed           time.Duration
}

// Preload inserts copies 1..n of t into the databases at client, over
// accounts accounts, in batches, one writer per database (each is its own
// SQLite file on the embedded default). It prints a line to progress every
// few seconds: copies done, rate, time left.
func Preload(ctx context.Context, client *mongo.Client, t *Template, n, accounts int, progress io.Writer) (PreloadStats, error) {
	const batch = 500 // copies per InsertMany
	start := time.Now()
	type job struct {
		coll string
		docs []any
	}
	perDB := map[string]chan job{}
	var dbs []string
	for _, c := range t.colls {
		if _, ok := perDB[c.db]; !ok {
			perDB[c.db] = make(chan job, 4)
			dbs = append(dbs, c.db)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg      sync.WaitGroup
		errMu   sync.Mutex
		first   error
		written atomic.Int64
	)
	fail := func(err error) {
		errMu.Lock()
		if first == nil {
			first = err
		}
		errMu.Unlock()
		cancel()
	}
	for _, db := range dbs {
		wg.Add(1)
		go func(db string, jobs chan job) {
			defer wg.Done()
			for j := range jobs {
				if ctx.Err() != nil {
					continue
				}
				if _, err := client.Database(db).Collection(j.coll).InsertMany(ctx, j.docs, options.InsertMany().SetOrdered(false)); err != nil {
					fail(fmt.Errorf("insert into %s.%s: %w", db, j.coll, err))
					continue
				}
				written.Add(int64(len(j.docs)))
			}
		}(db, perDB[db])
	}
	perCopy := int64(t.Documents())
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(3 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				w := written.Load()
				copies := float64(w) / float64(perCopy)
				el := time.Since(start).Seconds()
				rate := copies / el
				eta := time.Duration(float64(n)-copies) * time.Second
				if rate > 0 {
					eta = time.Duration((float64(n) - copies) / rate * float64(time.Second))
				}
				fmt.Fprintf(progress, "  preload: %d/%d lifecycles (%d documents), %.0f/s, %v left\n", int(copies), n, w, rate, eta.Round(time.Second))
			}
		}
	}()
	buf := map[string][]any{}
	flush := func(key string) {
		if len(buf[key]) == 0 {
			return
		}
		db, coll, _ := strings.Cut(key, "\x00")
		select {
		case perDB[db] <- job{coll, buf[key]}:
		case <-ctx.Done():
		}
		buf[key] = nil
	}
	for k := 1; k <= n && ctx.Err() == nil; k++ {
		for _, c := range t.Clone(k, accounts) {
			key := c.DB + "\x00" + c.Coll
			buf[key] = append(buf[key], c.Docs...)
			if len(buf[key]) >= batch {
				flush(key)
			}
		}
	}
	for key := range buf {
		flush(key)
	}
	for _, ch := range perDB {
		close(ch)
	}
	wg.Wait()
	close(done)
	st := PreloadStats{Copies: n, Documents: int(written.Load()), Elapsed: time.Since(start)}
	if first != nil {
		return st, first
	}
	if err := ctx.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return st, err
	}
	return st, nil
}

func lookup(d bson.D, key string) any {
	for _, e := range d {
		if e.Key == key {
			return e.Value
		}
	}
	return nil
}

func walkStrings(v any, f func(string)) {
	switch x := v.(type) {
	case bson.D:
		for _, e := range x {
			walkStrings(e.Value, f)
		}
	case bson.A:
		for _, e := range x {
			walkStrings(e, f)
		}
	case string:
		f(x)
	}
}

// Name is the resource name (<coll>/<id>) of copy k's first document in
// db.coll, e.g. its application.
func (t *Template) Name(k, accounts int, db, coll string) string {
	for _, c := range t.Clone(k, accounts) {
		if c.DB == db && c.Coll == coll {
			return coll + "/" + lookup(c.Docs[0].(bson.D), "_id").(string)
		}
	}
	return ""
}
