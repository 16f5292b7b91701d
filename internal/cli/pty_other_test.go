//go:build !linux

package cli

import (
	"os"
	"testing"
)

// openPTY: no pseudo-terminal here; the progress display is not drawn.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Log("no pseudo-terminal on this system")
	return nil, nil
}
