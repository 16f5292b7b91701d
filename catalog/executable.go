package catalog

import (
	"io/fs"
	"path"
	"strings"
)

// Bounds on the files offered to the binary catalogers (Go build info,
// cargo-auditable).
const (
	// MinBinarySize: smaller files are scripts and links, not binaries
	// with embedded dependency information.
	MinBinarySize = 1 << 10
	// MaxBinarySize: larger files are skipped unread. The largest binaries
	// seen in images are a few hundred megabytes.
	MaxBinarySize = 512 << 20
)

// binDirs hold executables even when an image lost their mode bits.
var binDirs = []string{"bin/", "sbin/", "usr/bin/", "usr/sbin/", "usr/local/bin/", "usr/local/sbin/"}

// IsExecutable is the selection the binary catalogers share: regular files
// of plausible size with an execute bit, in a bin directory, or named .exe.
func IsExecutable(p string, mode fs.FileMode, size int64) bool {
	if size < MinBinarySize || size > MaxBinarySize || !mode.IsRegular() {
		return false
	}
	return mode&0o111 != 0 || InBinDir(p) || strings.HasSuffix(strings.ToLower(p), ".exe")
}

// InBinDir reports whether p (relative, no leading slash) is a file directly
// in one of the usual bin directories.
func InBinDir(p string) bool {
	dir := path.Dir(p) + "/"
	for _, d := range binDirs {
		if dir == d {
			return true
		}
	}
	return false
}
