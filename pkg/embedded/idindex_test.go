package embedded_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/certflow/certflow/pkg/embedded"
)

func startMongo(t *testing.T, dir string, opts ...embedded.MongoOption) (*embedded.Mongo, *mongo.Client) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a database")
	}
	srv, err := embedded.StartMongo("127.0.0.1:0", dir, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.Disconnect(context.Background())
		srv.Close()
	})
	return srv, client
}

func findByIDPlan(t *testing.T, srv *embedded.Mongo, db, coll string) string {
	t.Helper()
	table := tableOf(t, srv, db, coll)
	// The statement FerretDB runs for a find by _id (plan_test.go captures
	// it from FerretDB's log; this is its text).
	plan, err := srv.ExplainSQL(context.Background(), db, fmt.Sprintf(`SELECT _ferretdb_sjson FROM %q WHERE _ferretdb_sjson->'$._id' = ?`, table), `"x"`)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "; ")
}

// What IndexIDs is for: FerretDB's own _id index does not serve its own
// query by _id. If an upgrade of FerretDB makes this fail, its index may
// do, and IndexIDs may go.
func TestFerretDBOwnIDIndexIsNotUsed(t *testing.T) {
	srv, client := startMongo(t, t.TempDir(), embedded.WithoutIDIndexes())
	ctx := context.Background()
	if _, err := client.Database("d").Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: "x"}}); err != nil {
		t.Fatal(err)
	}
	table := tableOf(t, srv, "d", "c")
	own, _ := embedded.QueryStrings(ctx, srv, "d", `SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?`, table)
	if plan := findByIDPlan(t, srv, "d", "c"); !strings.HasPrefix(plan, "SCAN ") {
		t.Errorf("without IndexIDs, find by _id plan = %q; want SCAN (FerretDB's indexes: %q)", plan, own)
	} else {
		t.Logf("FerretDB's indexes %q; find by _id: %s", own, plan)
	}
	if err := srv.IndexIDs(ctx); err != nil {
		t.Fatal(err)
	}
	if plan := findByIDPlan(t, srv, "d", "c"); !strings.HasPrefix(plan, "SEARCH ") {
		t.Errorf("after IndexIDs, find by _id plan = %q; want SEARCH", plan)
	}
}

// A collection created while the server runs gets the index within
// IDIndexInterval; IndexIDs running while FerretDB writes loses nothing
// and fails nothing; a restart keeps the index and FerretDB keeps working.
func TestIndexIDsLaterCollectionsConcurrentWritesRestart(t *testing.T) {
	dir := t.TempDir()
	srv, client := startMongo(t, dir)
	ctx := context.Background()
	coll := client.Database("d").Collection("later")
	const writers, each = 4, 100
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("%d-%d", w, i)
				if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "n", Value: i}}); err != nil {
					errs <- err
					return
				}
				if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: -i}}}}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			if err := srv.IndexIDs(ctx); err != nil {
				errs <- err
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n, err := coll.CountDocuments(ctx, bson.D{{Key: "n", Value: bson.D{{Key: "$lte", Value: 0}}}}); err != nil || n != writers*each {
		t.Fatalf("updated documents = %d, %v; want %d", n, err, writers*each)
	}
	if plan := findByIDPlan(t, srv, "d", "later"); !strings.HasPrefix(plan, "SEARCH ") {
		t.Fatalf("find by _id plan = %q; want SEARCH", plan)
	}

	// Created after start, no IndexIDs call: the server's own pass.
	if _, err := client.Database("d2").Collection("fresh").InsertOne(ctx, bson.D{{Key: "_id", Value: "x"}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * embedded.IDIndexInterval)
	for !strings.HasPrefix(findByIDPlan(t, srv, "d2", "fresh"), "SEARCH ") {
		if time.Now().After(deadline) {
			t.Fatalf("a collection created after start is not indexed after %v", 5*embedded.IDIndexInterval)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// MongoDB clients do not see the index; FerretDB's own are intact.
	cur, err := coll.Indexes().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var idx []bson.M
	if err := cur.All(ctx, &idx); err != nil || len(idx) != 1 || idx[0]["name"] != "_id_" {
		t.Fatalf("listIndexes = %v, %v; want only _id_", idx, err)
	}

	_ = client.Disconnect(ctx)
	srv.Close()
	srv2, client2 := startMongo(t, dir)
	var got bson.M
	if err := client2.Database("d").Collection("later").FindOne(ctx, bson.D{{Key: "_id", Value: "3-99"}}).Decode(&got); err != nil || got["n"] != int32(-99) {
		t.Fatalf("after restart FindOne = %v, %v", got, err)
	}
	if _, err := client2.Database("d").Collection("later").DeleteOne(ctx, bson.D{{Key: "_id", Value: "3-99"}}); err != nil {
		t.Fatal(err)
	}
	if plan := findByIDPlan(t, srv2, "d", "later"); !strings.HasPrefix(plan, "SEARCH ") {
		t.Fatalf("after restart find by _id plan = %q; want SEARCH", plan)
	}
	// Dropping a collection drops the index with the table.
	if err := client2.Database("d").Collection("later").Drop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := srv2.IndexIDs(ctx); err != nil {
		t.Fatal(err)
	}
	if err := client2.Database("d").Drop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := srv2.IndexIDs(ctx); err != nil {
		t.Fatalf("IndexIDs after a database drop = %v", err)
	}
}

// BenchmarkIndexIDs is the server's pass every IDIndexInterval when there
// is nothing to do: 6 databases of 4 collections, as the suite has.
//
//	go test -run '^$' -bench IndexIDs ./pkg/embedded
func BenchmarkIndexIDs(b *testing.B) {
	srv, err := embedded.StartMongo("127.0.0.1:0", b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		b.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	ctx := context.Background()
	for d := range 6 {
		for c := range 4 {
			if _, err := client.Database(fmt.Sprintf("db%d", d)).Collection(fmt.Sprintf("c%d", c)).InsertOne(ctx, bson.D{{Key: "_id", Value: "x"}}); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := srv.IndexIDs(ctx); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := srv.IndexIDs(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
