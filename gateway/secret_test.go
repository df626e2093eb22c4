package gateway

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestLoadOrCreateSecret(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")

	first, err := LoadOrCreateSecret(dir)
	if err != nil {
		t.Fatalf("LoadOrCreateSecret on first start: %v", err)
	}
	if len(first) != MinSecretBytes || bytes.Equal(first, make([]byte, MinSecretBytes)) {
		t.Errorf("LoadOrCreateSecret = %x, want %d random bytes", first, MinSecretBytes)
	}
	info, err := os.Stat(filepath.Join(dir, "session.key"))
	if err != nil {
		t.Fatalf("stat session.key: %v", err)
	}
	if perm := info.Mode().Perm(); runtime.GOOS != "windows" && perm != 0o600 {
		t.Errorf("session.key has mode %v, want 0600", perm)
	}

	again, err := LoadOrCreateSecret(dir)
	if err != nil {
		t.Fatalf("LoadOrCreateSecret on second start: %v", err)
	}
	if !bytes.Equal(first, again) {
		t.Errorf("LoadOrCreateSecret on second start = %x, want the first key %x", again, first)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Errorf("data directory holds %v (%v), want only session.key", entries, err)
	}
}

func TestLoadOrCreateSecretRefusesShortKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "session.key"), []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadOrCreateSecret(dir); err == nil {
		t.Errorf("LoadOrCreateSecret with a 5-byte key = %x, want an error", got)
	}
}
