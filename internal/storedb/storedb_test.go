package storedb_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/tienda/tienda/internal/storedb"
)

var migrations = fstest.MapFS{
	"00001_things.sql": {Data: []byte(`-- +goose Up
CREATE TABLE things (id INTEGER PRIMARY KEY);
-- +goose Down
DROP TABLE things;
`)},
}

// TestBusyWhenAnotherProcessHoldsTheLock holds SQLite's write lock from a
// second connection, as another process would, and checks that the
// store's write fails in a way Busy recognizes.
func TestBusyWhenAnotherProcessHoldsTheLock(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "test.db")
	db, err := storedb.OpenSQLite(t.Context(), path, migrations, slogDiscard())
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	defer db.Close()

	other, err := sql.Open("sqlite", path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatalf("take the write lock: %v", err)
	}
	defer tx.Rollback()

	// Give up at once rather than after the store's ten-second wait.
	conn, err := db.Writer.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "PRAGMA busy_timeout = 0"); err != nil {
		t.Fatal(err)
	}
	_, err = conn.ExecContext(context.Background(), "INSERT INTO things (id) VALUES (1)")
	if !storedb.Busy(err) {
		t.Fatalf("write under another's lock: %v, want an error Busy recognizes", err)
	}
	if storedb.Busy(errors.New("database is locked")) || storedb.Busy(nil) {
		t.Error("Busy recognizes errors that are not SQLite's")
	}
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }
