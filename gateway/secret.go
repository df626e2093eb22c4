package gateway

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// secretFile is the name of the session key inside the data directory.
const secretFile = "session.key"

// LoadOrCreateSecret returns the session key kept in dataDir/session.key.
// On first start it creates dataDir if needed and writes [MinSecretBytes]
// random bytes there, readable by the owner only. The file appears whole or
// not at all, and when two processes start together both end up with the
// one that was written first. A file shorter than [MinSecretBytes] is an
// error, not something to replace: tokens signed with it would stop working.
func LoadOrCreateSecret(dataDir string) ([]byte, error) {
	path := filepath.Join(dataDir, secretFile)
	secret, err := readSecret(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return secret, err
	}

	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	if err := createSecret(dataDir, path); err != nil {
		return nil, err
	}
	return readSecret(path)
}

func readSecret(path string) ([]byte, error) {
	secret, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read session key: %w", err)
	}
	if len(secret) < MinSecretBytes {
		return nil, fmt.Errorf("session key %s is %d bytes, want at least %d",
			path, len(secret), MinSecretBytes)
	}
	return secret, nil
}

// createSecret writes a new random key to a temporary file and links it to
// path, which fails without harm if another process created path first.
func createSecret(dir, path string) error {
	tmp, err := os.CreateTemp(dir, secretFile+".*.tmp")
	if err != nil {
		return fmt.Errorf("create session key: %w", err)
	}
	defer os.Remove(tmp.Name())

	secret := make([]byte, MinSecretBytes)
	_, _ = rand.Read(secret) // never fails: crypto/rand panics on failure instead
	_, err = tmp.Write(secret)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write session key: %w", err)
	}

	// CreateTemp already made the file 0600.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("install session key: %w", err)
	}
	return nil
}
