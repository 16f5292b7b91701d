// Package base keeps a local catalog of candidate base images — what each
// holds, how vulnerable it is, how big, how hardened — and uses it to tell
// which base an image was built from and which other base would serve it
// better.
package base

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/bulkhead-sec/bulkhead/inventory"
)

// SchemaVersion of the catalog file; a file of another version is refused
// rather than misread.
const SchemaVersion = 1

// maxCatalog bounds the catalog file read into memory.
const maxCatalog = 256 << 20

// Entry is one indexed base image.
type Entry struct {
	// Ref is the reference the image was indexed from ("alpine:3.20",
	// "oci-archive:base.tar"); it names the entry.
	Ref         string    `json:"ref"`
	Source      string    `json:"source,omitempty"`
	Digest      string    `json:"digest,omitempty"` // manifest digest
	ImageID     string    `json:"imageID,omitempty"`
	RepoTags    []string  `json:"repoTags,omitempty"`
	RepoDigests []string  `json:"repoDigests,omitempty"`
	IndexedAt   time.Time `json:"indexedAt"`

	OS   *inventory.OS `json:"os,omitempty"`
	Arch string        `json:"architecture,omitempty"`
	// Size is the sum of the layers' stored (compressed) sizes.
	Size int64 `json:"size"`
	// DiffIDs are the uncompressed layer digests, in order: an image built
	// FROM this one starts with the same list.
	DiffIDs []string `json:"diffIDs"`

	User            string   `json:"user,omitempty"`
	NonRoot         bool     `json:"nonRoot"`
	Shells          []string `json:"shells,omitempty"`          // paths of shells present
	PackageManagers []string `json:"packageManagers,omitempty"` // apk, apt, dnf, microdnf, yum, rpm, pip, npm
	Runtimes        []string `json:"runtimes,omitempty"`        // python, node, java, ruby, php, dotnet
	Libc            string   `json:"libc"`                      // musl, glibc or none

	// Packages are the inventory without layer attributions, kept so that
	// a recommendation re-matches them against the database in use.
	Packages     []inventory.Package `json:"packages"`
	PackageTypes map[string]int      `json:"packageTypes,omitempty"`

	// Vulns are the counts of the scan at index time, with the database
	// that made them; recommendations recount with the current database.
	Vulns *VulnCounts `json:"vulnerabilities,omitempty"`
}

// VulnCounts are vulnerability counts by severity and the database they
// came from.
type VulnCounts struct {
	DBSource  string         `json:"dbSource,omitempty"`
	DBUpdated time.Time      `json:"dbUpdated,omitempty"`
	BySev     map[string]int `json:"bySeverity"`
	Total     int            `json:"total"`
}

// Catalog is the set of indexed bases, stored as one JSON file.
type Catalog struct {
	path    string
	Entries []Entry
}

type catalogFile struct {
	SchemaVersion int     `json:"schemaVersion"`
	Entries       []Entry `json:"entries"`
}

// DefaultPath is where the catalog lives unless told otherwise, next to the
// vulnerability database: $BULKHEAD_CACHE_DIR/base/catalog.json, else
// <user cache dir>/bulkhead/base/catalog.json.
func DefaultPath() string {
	if d := os.Getenv("BULKHEAD_CACHE_DIR"); d != "" {
		return filepath.Join(d, "base", "catalog.json")
	}
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "bulkhead", "base", "catalog.json")
}

// Load reads the catalog at path; a missing file is an empty catalog.
func Load(path string) (*Catalog, error) {
	if path == "" {
		path = DefaultPath()
	}
	c := &Catalog{path: path}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open base catalog: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCatalog+1))
	if err != nil {
		return nil, fmt.Errorf("read base catalog %s: %w", path, err)
	}
	if len(data) > maxCatalog {
		return nil, fmt.Errorf("base catalog %s is over %d MiB; remove it and index the bases again", path, maxCatalog>>20)
	}
	if err := c.decode(data); err != nil {
		return nil, fmt.Errorf("base catalog %s: %w (remove the file and index the bases again)", path, err)
	}
	return c, nil
}

func (c *Catalog) decode(data []byte) error {
	var cf catalogFile
	if err := json.Unmarshal(data, &cf); err != nil {
		return fmt.Errorf("not a base catalog: %w", err)
	}
	if cf.SchemaVersion != SchemaVersion {
		return fmt.Errorf("schema version %d, this bulkhead reads %d", cf.SchemaVersion, SchemaVersion)
	}
	for i, e := range cf.Entries {
		if e.Ref == "" {
			return fmt.Errorf("entry %d has no ref", i)
		}
	}
	c.Entries = cf.Entries
	return nil
}

// Path is the file the catalog is read from and saved to.
func (c *Catalog) Path() string { return c.path }

// Get returns the entry indexed from ref.
func (c *Catalog) Get(ref string) (*Entry, bool) {
	for i := range c.Entries {
		if c.Entries[i].Ref == ref {
			return &c.Entries[i], true
		}
	}
	return nil, false
}

// Put adds an entry, replacing one indexed from the same ref.
func (c *Catalog) Put(e Entry) {
	for i := range c.Entries {
		if c.Entries[i].Ref == e.Ref {
			c.Entries[i] = e
			return
		}
	}
	c.Entries = append(c.Entries, e)
	sort.SliceStable(c.Entries, func(i, j int) bool { return c.Entries[i].Ref < c.Entries[j].Ref })
}

// Remove drops the entry indexed from ref and reports whether there was one.
func (c *Catalog) Remove(ref string) bool {
	for i := range c.Entries {
		if c.Entries[i].Ref == ref {
			c.Entries = append(c.Entries[:i], c.Entries[i+1:]...)
			return true
		}
	}
	return false
}

// Save writes the catalog atomically (a temp file renamed into place), so a
// reader never sees half a file.
func (c *Catalog) Save() error {
	if err := os.MkdirAll(filepath.Dir(c.path), 0o755); err != nil {
		return fmt.Errorf("save base catalog: %w", err)
	}
	entries := c.Entries
	if entries == nil {
		entries = []Entry{}
	}
	data, err := json.MarshalIndent(catalogFile{SchemaVersion: SchemaVersion, Entries: entries}, "", " ")
	if err != nil {
		return fmt.Errorf("save base catalog: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.path), ".catalog-*.json")
	if err != nil {
		return fmt.Errorf("save base catalog: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("save base catalog: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save base catalog: %w", err)
	}
	if err := os.Rename(tmp.Name(), c.path); err != nil {
		return fmt.Errorf("save base catalog: %w", err)
	}
	return nil
}

// OSName is the OS in words ("alpine 3.20.3"), "none" for an image without one.
func (e *Entry) OSName() string {
	if e.OS == nil || e.OS.ID == "" {
		return "none"
	}
	return strings.TrimSpace(e.OS.ID + " " + e.OS.VersionID)
}
