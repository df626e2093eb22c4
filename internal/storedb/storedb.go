// Package storedb opens the databases behind tienda's stores, the same way
// for every service: the connection settings that make writes safe, and the
// service's embedded, versioned migrations applied with goose before any
// other use.
//
// It knows nothing of a service's tables; each store passes its own
// migrations and keeps its own queries.
package storedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"runtime"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// SQLite is an SQLite database file opened for a store: one connection for
// writes, so that this process's writers queue in Go where waiting honours
// contexts, and a pool of read-only connections that WAL mode lets run
// beside the writer.
type SQLite struct {
	Writer *sql.DB
	Reader *sql.DB
}

// OpenSQLite opens the database file at path, creating it if needed, and
// applies the migrations in fsys that it lacks. Write transactions take the
// write lock when they begin (so read-modify-write cannot race), commits
// are synced to disk, and every connection waits up to ten seconds for a
// lock held by another process. Migrations are logged to logger.
func OpenSQLite(ctx context.Context, path string, fsys fs.FS, logger *slog.Logger) (*SQLite, error) {
	if path == "" || strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("open sqlite: invalid database path %q", path)
	}
	writer, err := sql.Open("sqlite", sqliteDSN(path, false))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	if err := migrate(ctx, goose.DialectSQLite3, writer, fsys, logger.With("store", "sqlite")); err != nil {
		writer.Close()
		return nil, fmt.Errorf("migrate sqlite %s: %w", path, err)
	}

	// The readers open once the file is in WAL mode, which the writer's
	// first connection set.
	reader, err := sql.Open("sqlite", sqliteDSN(path, true))
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	reader.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)))
	reader.SetMaxIdleConns(max(4, runtime.GOMAXPROCS(0)))
	if err := reader.PingContext(ctx); err != nil {
		writer.Close()
		reader.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return &SQLite{Writer: writer, Reader: reader}, nil
}

// Busy reports whether err means that SQLite gave up waiting for a lock
// that another process held: nothing was written, and the call may be
// tried again.
func Busy(err error) bool {
	var serr *sqlite.Error
	return errors.As(err, &serr) && serr.Code()&0xff == sqlite3.SQLITE_BUSY
}

// Close closes both pools.
func (db *SQLite) Close() error {
	return errors.Join(db.Reader.Close(), db.Writer.Close())
}

func sqliteDSN(path string, readOnly bool) string {
	v := url.Values{}
	v.Add("_pragma", "busy_timeout(10000)")
	v.Add("_pragma", "foreign_keys(1)")
	if readOnly {
		v.Add("_pragma", "query_only(1)")
	} else {
		v.Add("_pragma", "journal_mode(WAL)")
		v.Add("_pragma", "synchronous(FULL)")
		v.Set("_txlock", "immediate")
	}
	return path + "?" + v.Encode()
}

// Postgres names what keeps one service's migrations apart from another's,
// should they share a database.
type Postgres struct {
	// Table is goose's version table, such as "cart_goose_db_version".
	Table string
	// LockID is the advisory lock held while migrating.
	LockID int64
	// Application names the connections in pg_stat_activity, unless the
	// DSN names them already.
	Application string
}

// OpenPostgres connects to the database that dsn names and applies the
// migrations in fsys that it lacks, under a session advisory lock, so that
// replicas starting together apply each migration once; a replica waits for
// another's migration for up to five minutes or until ctx ends. Errors never
// quote the DSN, which may hold a password.
func OpenPostgres(
	ctx context.Context, dsn string, fsys fs.FS, p Postgres, logger *slog.Logger,
) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("open postgres: invalid dsn")
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = p.Application
	}

	// goose needs database/sql. A connection of its own keeps the session
	// lock apart from the pool, and closing it ends the lock even if
	// unlocking failed.
	db := stdlib.OpenDB(*cfg.ConnConfig)
	defer db.Close()
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(p.LockID),
		lock.WithLockTimeout(1 /* second */, 300 /* attempts */),
		lock.WithUnlockTimeout(1, 60))
	if err != nil {
		return nil, fmt.Errorf("migrate postgres: %w", err)
	}
	err = migrate(ctx, goose.DialectPostgres, db, fsys, logger.With("store", "postgres"),
		goose.WithTableName(p.Table), goose.WithSessionLocker(locker))
	if err != nil {
		return nil, fmt.Errorf("migrate postgres: %w", err)
	}

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	return pool, nil
}

func migrate(
	ctx context.Context, dialect goose.Dialect, db *sql.DB, fsys fs.FS, logger *slog.Logger,
	opts ...goose.ProviderOption,
) error {
	opts = append(opts, goose.WithDisableGlobalRegistry(true), goose.WithSlog(logger))
	p, err := goose.NewProvider(dialect, db, fsys, opts...)
	if err != nil {
		return err
	}
	_, err = p.Up(ctx)
	return err
}
