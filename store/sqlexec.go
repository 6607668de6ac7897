package store

import (
	"gorm.io/gorm"
)

// exec runs a write statement written out by hand in tx (plain SQL skips
// the ORM's reflection on the paths every question takes) and reports the
// rows it changed.
func (s *Store) exec(tx *gorm.DB, query string, args ...any) (int64, error) {
	res, err := tx.Statement.ConnPool.ExecContext(tx.Statement.Context, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// queryInts runs a statement in tx that returns one row of integers (an
// INSERT ... RETURNING) into dest, or sql.ErrNoRows.
func (s *Store) queryInts(tx *gorm.DB, query string, args []any, dest ...*int64) error {
	row := tx.Statement.ConnPool.QueryRowContext(tx.Statement.Context, query, args...)
	ptrs := make([]any, len(dest))
	for i, d := range dest {
		ptrs[i] = d
	}
	return row.Scan(ptrs...)
}
