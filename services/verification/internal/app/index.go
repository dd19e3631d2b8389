package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/domainname"
	"github.com/certflow/certflow/services/verification/internal/domain"
)

// An application's challenges are found through its ChallengeIndex, one
// record read by _id, never by a query on the challenge collection: the
// embedded database (FerretDB v1 on SQLite) pushes down to SQLite only a
// filter that is exactly {_id: …} and answers any other by reading and
// decoding every challenge ever stored.
//
// The index is written before the challenges it lists (two documents, no
// transaction). A crash between the two leaves the index naming ids that
// have no record yet; every reader skips those (a challenge that was never
// written is not evidence and has nothing to cancel), and the retried
// CreateChallenges, whose ids are derived from the request, writes them. The
// other order could leave a challenge that no index finds: one that is never
// cancelled, or not seen when the CA asks to sign.

// ChallengeIndexes keeps each account's index of each application's
// challenges, read and written by _id only.
type ChallengeIndexes interface {
	Get(ctx context.Context, account, id string) (*docstore.Record[domain.ChallengeIndex], error)
	Upsert(ctx context.Context, id, account string, doc domain.ChallengeIndex, merge func(cur *domain.ChallengeIndex) bool) (*docstore.Record[domain.ChallengeIndex], error)
}

// ChallengeIndexID is the id of the account's index of an application's
// challenges. The account is part of the id and the record, so one
// account never reads another's.
func ChallengeIndexID(account, application string) string {
	return docstore.IDFor(account, application+"/challenges")
}

// indexChallenges records the challenges a CreateRequest is about to write.
// A name that does not normalize is left out: NewChallenge refuses it and
// nothing is written for it.
func (a *App) indexChallenges(ctx context.Context, account string, req CreateRequest) error {
	var refs []domain.ChallengeRef
	for _, n := range req.Names {
		d, err := domainname.Normalize(n)
		if err != nil {
			continue
		}
		refs = append(refs, domain.ChallengeRef{Attempt: req.Attempt, Domain: d, ID: ChallengeID(account, req.Application, req.Attempt, n)})
	}
	if len(refs) == 0 {
		return nil
	}
	doc := domain.ChallengeIndex{Application: req.Application, Challenges: refs}
	_, err := a.indexes.Upsert(ctx, ChallengeIndexID(account, req.Application), account, doc, func(cur *domain.ChallengeIndex) bool {
		return cur.Add(refs...)
	})
	return err
}

// indexed returns the account's challenges of an application that the
// index lists and that exist, in the index's order, keeping those keep
// accepts (nil: all). No index is no challenge.
func (a *App) indexed(ctx context.Context, account, application string, keep func(domain.ChallengeRef) bool) ([]*docstore.Record[domain.Challenge], error) {
	x, err := a.indexes.Get(ctx, account, ChallengeIndexID(account, application))
	if errors.Is(err, apierr.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*docstore.Record[domain.Challenge]
	for _, ref := range x.Doc.Challenges {
		if keep != nil && !keep(ref) {
			continue
		}
		r, err := a.store.Get(ctx, account, ref.ID)
		if errors.Is(err, apierr.ErrNotFound) {
			continue // indexed before it was written, and not written (above)
		}
		if err != nil {
			return nil, err
		}
		// The id is derived from the application, so this holds; checked
		// anyway, as the evidence a signature rests on.
		if r.Doc.Application != application {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// listIndexed is a page of an application's challenges, newest first, after
// the position (nil: from the first), of the given state ("" any), from
// the index: it costs the application's own challenges, not the
// collection's.
func (a *App) listIndexed(ctx context.Context, account, application string, state domain.State, after *docstore.Position, limit int64) ([]*docstore.Record[domain.Challenge], bool, error) {
	recs, err := a.indexed(ctx, account, application, nil)
	if err != nil {
		return nil, false, err
	}
	recs = slices.DeleteFunc(recs, func(r *docstore.Record[domain.Challenge]) bool {
		return (state != "" && r.Doc.State != state) || (after != nil && !follows(docstore.PositionOf(r), *after))
	})
	slices.SortFunc(recs, func(x, y *docstore.Record[domain.Challenge]) int {
		return comparePositions(docstore.PositionOf(y), docstore.PositionOf(x))
	})
	if int64(len(recs)) > limit {
		return recs[:limit], true, nil
	}
	return recs, false, nil
}

// comparePositions orders positions oldest first, as docstore lists them in
// reverse: by creation time, then _id.
func comparePositions(x, y docstore.Position) int {
	if c := x.Created.Compare(y.Created); c != 0 {
		return c
	}
	return cmp.Compare(x.ID, y.ID)
}

// follows reports whether p comes after cursor in the newest-first order.
func follows(p, cursor docstore.Position) bool { return comparePositions(p, cursor) < 0 }

// IndexFinder reads the whole challenge collection, for BuildChallengeIndexes.
type IndexFinder interface {
	Find(ctx context.Context, filter bson.D, limit int64) ([]*docstore.Record[domain.Challenge], error)
}

// indexesBuilt marks, in the index collection, that every challenge written
// before indexes existed has been indexed.
const indexesBuilt = "migrations/challenge-indexes-v1"

// BuildChallengeIndexes indexes the challenges of a database written before
// challenge indexes existed: one read of the whole collection, once, at
// start, before anything is served. The mark is written last, so a crash
// midway builds again (an index merge is idempotent).
func BuildChallengeIndexes(ctx context.Context, store IndexFinder, indexes ChallengeIndexes) (int, error) {
	if _, err := indexes.Get(ctx, "", indexesBuilt); err == nil {
		return 0, nil
	} else if !errors.Is(err, apierr.ErrNotFound) {
		return 0, err
	}
	recs, err := store.Find(ctx, bson.D{}, 0)
	if err != nil {
		return 0, fmt.Errorf("read challenges to index: %w", err)
	}
	type key struct{ account, application string }
	by := map[key][]domain.ChallengeRef{}
	var order []key
	for _, r := range recs {
		k := key{r.Account, r.Doc.Application}
		if _, ok := by[k]; !ok {
			order = append(order, k)
		}
		by[k] = append(by[k], domain.ChallengeRef{Attempt: r.Doc.Attempt, Domain: r.Doc.Domain, ID: r.ID})
	}
	for _, k := range order {
		refs := by[k]
		doc := domain.ChallengeIndex{Application: k.application, Challenges: refs}
		if _, err := indexes.Upsert(ctx, ChallengeIndexID(k.account, k.application), k.account, doc, func(cur *domain.ChallengeIndex) bool {
			return cur.Add(refs...)
		}); err != nil {
			return 0, fmt.Errorf("index challenges of %s: %w", k.application, err)
		}
	}
	if _, err := indexes.Upsert(ctx, indexesBuilt, "", domain.ChallengeIndex{}, func(*domain.ChallengeIndex) bool { return false }); err != nil {
		return 0, err
	}
	return len(order), nil
}
