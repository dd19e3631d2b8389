package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	// The same SQLite FerretDB links: two copies of SQLite in one process
	// would not share their POSIX locks on a file (a corruption risk).
	_ "modernc.org/sqlite"
)

// FerretDB v1.24's SQLite backend keeps database d in <dir>/d.sqlite
// (WAL journal, busy_timeout 10 s); each collection is a table with one
// JSON column, listed in _ferretdb_collections. It pushes down a filter
// that is exactly {_id: <string or ObjectId>}, as
//
//	SELECT _ferretdb_sjson FROM "t" WHERE _ferretdb_sjson->'$._id' = ?
//
// (finds, and the read before every update and delete), and writes with
//
//	UPDATE "t" SET _ferretdb_sjson = ? WHERE _ferretdb_sjson->'$._id' = ?
//	DELETE FROM "t" WHERE _ferretdb_sjson->'$._id' IN (?)
//
// but the unique index it makes for _id is on _ferretdb_sjson->"_id": the
// same value, an expression SQLite does not match to the queries', so each
// of them scans the table. The index below is on the queries' expression.
// It is invisible to MongoDB clients (FerretDB lists the indexes of its
// metadata) and goes with the table when the collection is dropped.
const (
	ferretMetadataTable = "_ferretdb_collections"
	ferretIDExpr        = `_ferretdb_sjson->'$._id'`
	// idIndexSuffix names the index <table>__certflow_id; FerretDB names
	// its own <table>_<MongoDB index name>.
	idIndexSuffix = "__certflow_id"
)

// IndexIDs gives every collection of every database an SQLite index that
// FerretDB's finds, updates and deletes by _id use. It is idempotent; the
// server also runs it at start and every IDIndexInterval, so collections
// created later get it too; call it to have one now.
func (m *Mongo) IndexIDs(ctx context.Context) error {
	files, err := filepath.Glob(filepath.Join(m.dir, "*.sqlite"))
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range files {
		if _, err := indexIDsInFile(ctx, f); err != nil {
			errs = append(errs, fmt.Errorf("index _id in %s: %w", filepath.Base(f), err))
		}
	}
	return errors.Join(errs...)
}

// ExplainSQL returns SQLite's plan (the detail column of EXPLAIN QUERY
// PLAN) for statement q with args on the file of database db, through a
// second connection. Tests use it on the statements FerretDB logs.
func (m *Mongo) ExplainSQL(ctx context.Context, db, q string, args ...any) ([]string, error) {
	conn, err := openSQLite(filepath.Join(m.dir, db+".sqlite"))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	rows, err := conn.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			return nil, err
		}
		plan = append(plan, detail)
	}
	return plan, rows.Err()
}

func openSQLite(path string) (*sql.DB, error) {
	// mode=rw: never create a file FerretDB has just removed. The journal
	// mode (WAL) is kept in the file; busy_timeout matches FerretDB's, so a
	// writer waits for the other instead of failing.
	u := "file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=rw&_pragma=busy_timeout(10000)"
	db, err := sql.Open("sqlite", u)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// indexIDsInFile creates the missing _id indexes in one database file and
// returns how many it created.
func indexIDsInFile(ctx context.Context, path string) (int, error) {
	db, err := openSQLite(path)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, fmt.Sprintf(
		`SELECT c.table_name FROM %q c
		 JOIN sqlite_master t ON t.type = 'table' AND t.name = c.table_name
		 WHERE NOT EXISTS (SELECT 1 FROM sqlite_master i WHERE i.type = 'index' AND i.name = c.table_name || ?)`,
		ferretMetadataTable), idIndexSuffix)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return 0, nil // a database FerretDB is creating or removing
		}
		return 0, err
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return 0, err
		}
		tables = append(tables, t)
	}
	if err := rows.Close(); err != nil {
		return 0, err
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, t := range tables {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (%s)`, t+idIndexSuffix, t, ferretIDExpr)
		if _, err := db.ExecContext(ctx, q); err != nil {
			if strings.Contains(err.Error(), "no such table") {
				continue // dropped since
			}
			return n, err
		}
		n++
	}
	return n, nil
}
