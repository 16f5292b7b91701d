//go:build !unix

package vulndb

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// lockFile creates path exclusively. Without flock a crashed update leaves
// the file behind, so the error names it for removal.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("another bulkhead is updating the vulnerability database (%s exists): wait for it, or remove the file if no update is running", path)
	}
	if err != nil {
		return nil, fmt.Errorf("create lock file: %w", err)
	}
	f.Close()
	return func() { os.Remove(path) }, nil
}
