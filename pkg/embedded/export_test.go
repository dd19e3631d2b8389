package embedded

import (
	"context"
	"path/filepath"
)

// QueryStrings runs q on a second connection to the file of database db
// and returns each row's first column as text (tests read FerretDB's
// metadata and pragmas with it).
func QueryStrings(ctx context.Context, m *Mongo, db, q string, args ...any) ([]string, error) {
	conn, err := openSQLite(filepath.Join(m.dir, db+".sqlite"))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	rows, err := conn.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
