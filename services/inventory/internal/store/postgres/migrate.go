package postgres

import (
	"context"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Names that keep the inventory's migrations apart from those of other
// services, should they share a database.
const (
	migrationTable = "inventory_goose_db_version"
	// migrationLockID is the advisory lock held while migrating: "tinv".
	migrationLockID = 0x74696e76
)

// migrate applies the embedded migrations that the database lacks, under a
// session-level advisory lock so that replicas starting together apply each
// one once.
func migrate(ctx context.Context, cfg *pgx.ConnConfig, logger *slog.Logger) error {
	// goose needs database/sql; a connection of its own keeps the session
	// lock apart from the store's pool.
	db := stdlib.OpenDB(*cfg)
	defer db.Close()

	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	// Another replica may be migrating: try again every second for up to
	// five minutes, or until ctx ends.
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(migrationLockID),
		lock.WithLockTimeout(1, 300),
		lock.WithUnlockTimeout(1, 60))
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithTableName(migrationTable),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(logger.With("store", "postgres")))
	if err != nil {
		return err
	}
	_, err = p.Up(ctx)
	return err
}
