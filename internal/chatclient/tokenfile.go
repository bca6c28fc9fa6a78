package chatclient

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Saved is the login `watchroom chat --token-file PATH` keeps between
// runs: the token and the server it was issued by, so that it is never
// sent to another one.
type Saved struct {
	Server string `json:"server"` // API.Base of the server that issued it
	Login
}

// tokenFileMax bounds what LoadToken reads: a token file is a few hundred
// bytes.
const tokenFileMax = 64 << 10

// LoadToken reads a token file written by SaveToken. A missing file is an
// error matching fs.ErrNotExist. A file that anyone but its owner may read
// or write is refused without being read: the token in it is as good as
// a password until it expires.
func LoadToken(path string) (Saved, error) {
	f, err := os.Open(path)
	if err != nil {
		return Saved{}, err
	}
	defer f.Close()
	// The mode of the file opened, not of the path: it cannot change
	// between the check and the read.
	fi, err := f.Stat()
	if err != nil {
		return Saved{}, err
	}
	if !fi.Mode().IsRegular() {
		return Saved{}, fmt.Errorf("token file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return Saved{}, fmt.Errorf("token file %s has permissions %04o, so others may have read the token in it: "+
			"it must be readable by its owner only (0600). Delete it and log in again (a new one is written with 0600), "+
			"or `chmod 600 %s` if nobody else can have read it", path, perm, path)
	}
	var s Saved
	if err := json.NewDecoder(io.LimitReader(f, tokenFileMax)).Decode(&s); err != nil {
		return Saved{}, fmt.Errorf("token file %s: %w", path, err)
	}
	if s.Token == "" || s.Server == "" {
		return Saved{}, fmt.Errorf("token file %s holds no token", path)
	}
	return s, nil
}

// SaveToken writes s to path with permissions 0600, replacing what was
// there at once: the file is written aside (created 0600 from the start,
// so the token is never readable by others, whatever the umask) and
// renamed over path.
func SaveToken(path string, s Saved) (err error) {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("save token: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// CreateTemp makes the file 0600; say so rather than rely on it.
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("save token: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("save token: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("save token: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save token: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save token: %w", err)
	}
	return nil
}
