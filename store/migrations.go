package store

import (
	"context"
	"fmt"

	"github.com/go-gormigrate/gormigrate/v2"
)

// migrations are applied in order and recorded, by ID, in the migrations
// table. Each one is a snapshot: it creates or changes tables through
// structs frozen inside it (copies of the models as they were when it was
// released, each with a TableName), never through the live models, so
// changing a model never changes what an old migration does. A released
// migration is never edited; a change is a new entry.
//
// To change the schema:
//
//  1. change the model in models.go (a new model also goes into models()
//     in migrations_internal_test.go);
//  2. add a file migrate_<ID>.go with a function returning the migration:
//     its ID (date and a word, later than the last one, e.g.
//     "2026120101_outbound"), and Migrate/Rollback over structs declared
//     in that file with the fields, tags and TableName the change needs
//     (tx.AutoMigrate(&outbound2026120101{}) for a new table,
//     tx.Migrator().AddColumn / CreateIndex for a change to one);
//  3. append that function's result to the list below.
//
// TestMigrationsBuildTheModelsSchema then builds a database from the first
// migration on, on SQLite and MariaDB, and fails if its tables, columns or
// indexes differ from what the models describe.
func migrations() []*gormigrate.Migration {
	return []*gormigrate.Migration{
		migrate2026112201(),
		migrate2026112801(),
		migrate2026112901(),
		migrate2026113001(),
		migrate2026120101(),
		migrate2026120102(),
		migrate2026120103(),
		migrate2026120104(),
		migrate2026120105(),
		migrate2026120221(),
		migrate2026120231(),
		migrate2026120241(),
		migrate2026120242(),
		migrate2026120243(),
		migrate2026120251(),
		migrate2026120201(),
		migrate2026120261(),
		migrate2026120211(),
	}
}

// Migrate applies every pending migration.
func (s *Store) Migrate(ctx context.Context) error {
	m := gormigrate.New(s.db.WithContext(ctx), gormigrate.DefaultOptions, migrations())
	if err := m.Migrate(); err != nil {
		return fmt.Errorf("migrate %s database: %w", s.driver, err)
	}
	return nil
}

// MigrationStatus lists each known migration and whether it is applied.
func (s *Store) MigrationStatus(ctx context.Context) (map[string]bool, error) {
	out := map[string]bool{}
	var applied []string
	db := s.db.WithContext(ctx)
	if db.Migrator().HasTable(gormigrate.DefaultOptions.TableName) {
		if err := db.Table(gormigrate.DefaultOptions.TableName).Pluck(gormigrate.DefaultOptions.IDColumnName, &applied).Error; err != nil {
			return nil, fmt.Errorf("read migrations: %w", err)
		}
	}
	for _, m := range migrations() {
		out[m.ID] = false
	}
	for _, id := range applied {
		out[id] = true
	}
	return out, nil
}
