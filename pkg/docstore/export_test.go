package docstore

import "context"

// MemIndexReady reports whether the store lists through its memory index.
func (s *Store[T]) MemIndexReady() bool { return s.mem != nil && s.mem.covers(nil) }

// ListDB is List asked of the database, for comparing.
func (s *Store[T]) ListDB(ctx context.Context, account string, o ListOptions) ([]*Record[T], bool, error) {
	return s.listDB(ctx, account, o)
}
