package docstore

import (
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The start's read and this process's writes overlap: what the read saw
// never undoes a write or a removal made while it ran.
func TestMemIndexFillDoesNotUndoWrites(t *testing.T) {
	at := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	rec := func(id, state string) bson.Raw {
		raw, err := bson.Marshal(bson.D{{Key: "_id", Value: id}, {Key: "account", Value: "a"}, {Key: "created", Value: at},
			{Key: "doc", Value: bson.D{{Key: "state", Value: state}}}})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	x := newMemIndex([]string{"doc.state"})
	x.remove("removed")            // removed while the read ran...
	x.found(rec("removed", "NEW")) // ...after the read had seen it
	x.set(rec("changed", "DONE"))  // written while the read ran...
	x.found(rec("changed", "NEW")) // ...after the read had seen it as it was
	x.found(rec("kept", "NEW"))
	x.setReady()
	for _, c := range []struct {
		filter bson.D
		want   []string
	}{
		{nil, []string{"kept", "changed"}},
		{bson.D{{Key: "doc.state", Value: "NEW"}}, []string{"kept"}},
		{bson.D{{Key: "doc.state", Value: "DONE"}}, []string{"changed"}},
	} {
		cands, err := x.page("a", nil, c.filter, 10, false)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, cd := range cands {
			got = append(got, cd.pos.ID)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("page(%v) = %v, want %v", c.filter, got, c.want)
		}
	}
}
