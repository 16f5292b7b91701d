package distro

import (
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/walk"
)

// MaxFileSize is the largest release file read. Real ones are a few hundred
// bytes; a larger file is ignored.
const MaxFileSize = 64 << 10

// source is one file the detector reads and how to read it.
type source struct {
	path  string
	parse func([]byte) (*inventory.OS, error)
}

// sources in order of precedence: os-release first, as syft and trivy read
// it, then the older release files. lsb-release comes before debian_version
// because Ubuntu ships both and its debian_version names the Debian
// release it branched from; the specific Red Hat family files come before
// redhat-release and system-release, which derivatives also ship.
var sources = []source{
	{"etc/os-release", ParseOSRelease},
	{"usr/lib/os-release", ParseOSRelease},
	{"etc/lsb-release", ParseLSBRelease},
	{"etc/alpine-release", ParseAlpineRelease},
	{"etc/centos-release", ParseRedHatRelease},
	{"etc/rocky-release", ParseRedHatRelease},
	{"etc/almalinux-release", ParseRedHatRelease},
	{"etc/fedora-release", ParseRedHatRelease},
	{"etc/redhat-release", ParseRedHatRelease},
	{"etc/system-release", ParseRedHatRelease},
	{"etc/SuSE-release", ParseSuSERelease},
	{"etc/debian_version", ParseDebianVersion},
}

// osReleaseDir holds the files Fedora links usr/lib/os-release to
// (os.release.d/os-release-container and the like).
const osReleaseDir = "usr/lib/os.release.d/"

// dpkg databases: a distroless image has per-package files in status.d and
// no status file.
const (
	dpkgStatus  = "var/lib/dpkg/status"
	dpkgStatusD = "var/lib/dpkg/status.d/"
)

var wanted = func() map[string]bool {
	m := make(map[string]bool, len(sources))
	for _, s := range sources {
		m[s.path] = true
	}
	return m
}()

// instance is one layer's copy of one release file.
type instance struct {
	layer int
	data  []byte
	err   error
}

type ref struct {
	path  string
	layer int
}

// Detector finds the OS of a walked image. It is a walk.Visitor and a
// walk.Finisher: it keeps every layer's copy of the release files during
// the walk and, once the final view is known, reads the copies that view
// shows, following symlinks within the image.
type Detector struct {
	mu      sync.Mutex
	files   map[string][]instance // path -> copies, any layer order
	statusD []ref                 // files seen under var/lib/dpkg/status.d

	os *inventory.OS
}

// NewDetector returns a detector to pass to walk.Walk.
func NewDetector() *Detector {
	return &Detector{files: map[string][]instance{}}
}

var (
	_ walk.Visitor  = (*Detector)(nil)
	_ walk.Finisher = (*Detector)(nil)
)

// Wants implements walk.Visitor: regular files (and hard links) at the
// release-file paths. Symlinks are not read: the Tree resolves them after
// the walk. Files under dpkg's status.d are only noted, never read.
func (d *Detector) Wants(e *walk.Entry) bool {
	if e.Kind != walk.KindFile && e.Kind != walk.KindHardlink {
		return false
	}
	if wanted[e.Path] {
		return true
	}
	if rest, ok := strings.CutPrefix(e.Path, osReleaseDir); ok && rest != "" && !strings.Contains(rest, "/") {
		return true
	}
	if rest, ok := strings.CutPrefix(e.Path, dpkgStatusD); ok && rest != "" && !strings.Contains(rest, "/") {
		d.mu.Lock()
		d.statusD = append(d.statusD, ref{e.Path, e.Layer})
		d.mu.Unlock()
	}
	return false
}

// Visit implements walk.Visitor. It is called concurrently for different
// layers.
func (d *Detector) Visit(e *walk.Entry, c *walk.Content) error {
	in := instance{layer: e.Layer}
	if c.Size() > MaxFileSize {
		in.err = fmt.Errorf("%d bytes is over the %d-byte limit for release files", c.Size(), MaxFileSize)
	} else {
		in.data, in.err = io.ReadAll(io.LimitReader(c, MaxFileSize))
	}
	d.mu.Lock()
	d.files[e.Path] = append(d.files[e.Path], in)
	d.mu.Unlock()
	return nil
}

// Finish implements walk.Finisher.
func (d *Detector) Finish(t *walk.Tree) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.os = nil
	for _, s := range sources {
		data, real, ok := d.visible(t, s.path)
		if !ok {
			continue
		}
		os, err := s.parse(data)
		if err != nil || os == nil || os.ID == "" {
			continue
		}
		os.Source = "/" + real
		d.os = os
		break
	}
	if d.distrolessDpkg(t) {
		if d.os == nil {
			// No release file at all, but status.d is written only by
			// builders of Debian-based distroless images.
			d.os = &inventory.OS{ID: "debian", Source: "/" + strings.TrimSuffix(dpkgStatusD, "/")}
		}
		d.os.Distroless = true
	}
	return nil
}

// OS returns the detected OS after the walk, or nil when it is unknown.
func (d *Detector) OS() *inventory.OS {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.os
}

// visible returns the content the final view shows at p, after following
// symlinks in p within the image, and the path it was read from.
func (d *Detector) visible(t *walk.Tree, p string) ([]byte, string, bool) {
	real, ok, err := t.Resolve(p)
	if err != nil || !ok {
		return nil, "", false
	}
	e, ok := t.Lookup(real)
	if !ok || (e.Kind != walk.KindFile && e.Kind != walk.KindHardlink) {
		return nil, "", false
	}
	insts := d.files[real]
	// The last copy the visible layer wrote (a layer tar may name a path
	// twice; the later entry is the one extracted).
	for i := len(insts) - 1; i >= 0; i-- {
		in := insts[i]
		if in.layer != e.Layer || t.State(real, in.layer) != walk.Visible {
			continue
		}
		if in.err != nil {
			return nil, "", false
		}
		return in.data, real, true
	}
	return nil, "", false
}

// distrolessDpkg reports whether the final view has dpkg's per-package
// status.d files and no status file: the layout of distroless images.
func (d *Detector) distrolessDpkg(t *walk.Tree) bool {
	if _, ok := t.Lookup(dpkgStatus); ok {
		return false
	}
	for _, r := range d.statusD {
		if t.State(r.path, r.layer) != walk.Visible {
			continue
		}
		if e, ok := t.Lookup(r.path); ok && e.Layer == r.layer {
			return true
		}
	}
	return false
}
