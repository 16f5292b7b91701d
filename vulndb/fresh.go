package vulndb

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"github.com/ossf/osv-schema/bindings/go/osvschema"
	bolt "go.etcd.io/bbolt"
)

// Freshness is tracked per OSV ecosystem (the base name, "Debian" for
// "Debian:12": OSV exports and refreshes whole ecosystems) in the freshness
// bucket, plus one database-wide baseline (meta "baseline") for the
// ecosystems without an entry of their own. Only a refresh that replaces an
// ecosystem's data dates it:
//
//   - the bundled snapshot sets the baseline to the snapshot's date (the
//     newest `modified` of its records; the corpus was collected at least
//     that late), for every ecosystem;
//   - Update sets each ecosystem it refreshed (full or incremental) to the
//     all.zip or modified_id.csv Last-Modified time (when the bucket
//     exported it; the download time when the server does not say), and the
//     baseline too when it refreshed every ecosystem the bucket lists;
//   - an import declared a complete export of one ecosystem
//     (Options.FullEcosystem) sets that ecosystem to the newest `modified`
//     among its records. An OSV zip does not carry the time it was
//     exported, so that is a lower bound: the data is at least that
//     current. The import's wall-clock time never counts;
//   - any other import dates nothing: it adds records, it does not show that
//     the rest is current.
//
// A database written before this tracking existed (no freshness bucket) is
// dated from what it can prove: the bundled snapshot's date when the
// snapshot was its last writer, and Update's per-feed fetch times; anything
// else is of unknown age, which counts as stale.
var (
	bucketFreshness = []byte("freshness")
	keyBaseline     = []byte("baseline")
	keyWritten      = []byte("written")
	keyWriter       = []byte("writer")
)

// Freshness kinds: what dated an ecosystem's data.
const (
	KindBundled    = "bundled snapshot"
	KindUpdate     = "OSV update"
	KindFullImport = "full import"
	KindUnknown    = "unknown"
)

// MaxEcosystemLen bounds an ecosystem string and MaxNameLen a package name
// in a record: both become bbolt keys (at most 32 KiB). The longest real
// ones are far shorter ("Red Hat:enterprise_linux:9::appstream", Maven
// group:artifact ids, Go module paths).
const (
	MaxEcosystemLen = 256
	MaxNameLen      = 4096
)

// unknownAge is the age of data that cannot be dated: older than any limit.
const unknownAge = time.Duration(math.MaxInt64)

// Freshness says how current one ecosystem's data is.
type Freshness struct {
	// Ecosystem is the OSV ecosystem without release ("Debian", "PyPI");
	// "" for the database-wide baseline.
	Ecosystem string `json:"ecosystem"`
	// AsOf: the data is at least this current. Zero when unknown.
	AsOf time.Time `json:"as_of,omitzero"`
	// Kind is what dated it: KindBundled, KindUpdate, KindFullImport or
	// KindUnknown.
	Kind string `json:"kind"`
	// Source is where that data came from (snapshot, URL, imported files).
	Source string `json:"source,omitempty"`
	// Refreshed is when the refresh ran (wall clock), for information only.
	Refreshed time.Time `json:"refreshed,omitzero"`
}

// Known reports whether the data has a date.
func (f Freshness) Known() bool { return !f.AsOf.IsZero() }

// Age is the time since AsOf, or an age past any limit when unknown.
func (f Freshness) Age() time.Duration {
	if !f.Known() {
		return unknownAge
	}
	return time.Since(f.AsOf)
}

func (f Freshness) older(g Freshness) bool {
	if f.Known() != g.Known() {
		return !f.Known()
	}
	return f.AsOf.Before(g.AsOf)
}

// DataAge is how old the data behind a scan (or the whole database) is: the
// oldest of the ecosystems it used.
type DataAge struct {
	Oldest     Freshness   `json:"oldest"`
	Ecosystems []Freshness `json:"ecosystems,omitempty"`
}

// Known reports whether every ecosystem used has a date.
func (a DataAge) Known() bool { return a.Oldest.Known() }

// Age is the age of the oldest data used (past any limit when unknown).
func (a DataAge) Age() time.Duration { return a.Oldest.Age() }

// CheckAge returns a *StaleError when the oldest data used is older than
// maxAge or cannot be dated (a maxAge of 0 or less disables the check).
func (a DataAge) CheckAge(maxAge time.Duration) error {
	if maxAge <= 0 {
		return nil
	}
	if age := a.Age(); age > maxAge {
		return &StaleError{Age: age, MaxAge: maxAge, Updated: a.Oldest.AsOf, Source: a.Oldest.Source, Ecosystem: a.Oldest.Ecosystem, Unknown: !a.Known()}
	}
	return nil
}

// freshTable is the freshness bucket read into memory.
type freshTable struct {
	baseline Freshness
	eco      map[string]Freshness
	legacy   bool
}

func (t freshTable) of(base string) Freshness {
	f, ok := t.eco[base]
	if !ok {
		f = t.baseline
	}
	f.Ecosystem = base
	return f
}

// age is the DataAge of the given base ecosystems; with none, that of the
// baseline.
func (t freshTable) age(bases []string) DataAge {
	var a DataAge
	if len(bases) == 0 {
		a.Oldest = t.baseline
		return a
	}
	sort.Strings(bases)
	for i, b := range bases {
		f := t.of(b)
		a.Ecosystems = append(a.Ecosystems, f)
		if i == 0 || f.older(a.Oldest) {
			a.Oldest = f
		}
	}
	return a
}

func unknownBaseline(source string) Freshness {
	return Freshness{Kind: KindUnknown, Source: source}
}

// readFreshness reads the table, or derives it for a database written
// before freshness was tracked.
func readFreshness(tx *bolt.Tx) (freshTable, error) {
	b := tx.Bucket(bucketFreshness)
	meta := tx.Bucket(bucketMeta)
	if b == nil || meta == nil {
		return legacyFreshness(tx), nil
	}
	t := freshTable{eco: map[string]Freshness{}, baseline: unknownBaseline("no complete refresh recorded (only partial imports)")}
	if v := meta.Get(keyBaseline); v != nil {
		if err := json.Unmarshal(v, &t.baseline); err != nil {
			return t, fmt.Errorf("baseline freshness: %w", err)
		}
	}
	err := b.ForEach(func(k, v []byte) error {
		var f Freshness
		if err := json.Unmarshal(v, &f); err != nil {
			return fmt.Errorf("freshness of %q: %w", k, err)
		}
		t.eco[string(k)] = f
		return nil
	})
	return t, err
}

// legacyFreshness dates an old database from what it can prove: the meta
// "updated" time only when the bundled snapshot was the last writer (any
// other writer, an import above all, may have reset it), and Update's
// per-feed fetch times.
func legacyFreshness(tx *bolt.Tx) freshTable {
	t := freshTable{eco: map[string]Freshness{}, legacy: true}
	meta := tx.Bucket(bucketMeta)
	var source string
	if meta != nil {
		source = string(meta.Get(keySource))
	}
	if source == SourceBundled {
		t.baseline = Freshness{AsOf: parseTime(meta.Get(keyUpdated)), Kind: KindBundled, Source: SourceBundled}
	} else {
		t.baseline = unknownBaseline(fmt.Sprintf("written by an older bulkhead (last source: %s) that did not record per-ecosystem freshness", source))
	}
	if b := tx.Bucket(bucketFeeds); b != nil {
		b.ForEach(func(k, v []byte) error {
			var m feedMeta
			if json.Unmarshal(v, &m) == nil && !m.Updated.IsZero() {
				t.eco[string(k)] = Freshness{AsOf: m.Updated, Kind: KindUpdate, Source: m.Source, Refreshed: m.Updated}
			}
			return nil
		})
	}
	return t
}

// heldEcosystems lists the base ecosystems that have records (from the
// ecosystems bucket) or a freshness entry.
func heldEcosystems(tx *bolt.Tx, t freshTable) []string {
	set := map[string]bool{}
	if b := tx.Bucket(bucketEcosystems); b != nil {
		b.ForEach(func(k, _ []byte) error {
			set[baseEcosystem(string(k))] = true
			return nil
		})
	}
	for k := range t.eco {
		set[k] = true
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	return out
}

// DataAge is how old the data of the given ecosystems is (exact OSV
// strings such as "Debian:12" or base names): the oldest of them. With no
// ecosystem named it is that of the whole database.
func (db *DB) DataAge(ecosystems []string) (a DataAge, err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer db.guard("freshness", &err)
	if db.tx == nil {
		return a, errors.New("vulnerability database is closed")
	}
	t, err := readFreshness(db.tx)
	if err != nil {
		return a, corruptf(db.path, "%v", err)
	}
	if len(ecosystems) == 0 {
		return t.age(heldEcosystems(db.tx, t)), nil
	}
	set := map[string]bool{}
	for _, e := range ecosystems {
		set[baseEcosystem(e)] = true
	}
	bases := make([]string, 0, len(set))
	for b := range set {
		bases = append(bases, b)
	}
	return t.age(bases), nil
}

// Tracked is a DB seen by one scan: it notes the ecosystems looked up, so
// that DataAge reports the age of the data the scan actually used rather
// than the database's newest part. It implements match.Source. Safe for
// concurrent use.
type Tracked struct {
	db   *DB
	mu   sync.Mutex
	used map[string]bool
}

// Track starts tracking the ecosystems a scan looks up.
func (db *DB) Track() *Tracked { return &Tracked{db: db, used: map[string]bool{}} }

// Lookup is DB.Lookup, noting the ecosystem.
func (t *Tracked) Lookup(ecosystem, name string) ([]*osvschema.Vulnerability, error) {
	t.mu.Lock()
	t.used[baseEcosystem(ecosystem)] = true
	t.mu.Unlock()
	return t.db.Lookup(ecosystem, name)
}

// Touch notes an ecosystem used without a lookup (a match answered from
// a match.HitCache).
func (t *Tracked) Touch(ecosystem string) {
	t.mu.Lock()
	t.used[baseEcosystem(ecosystem)] = true
	t.mu.Unlock()
}

// Ecosystems is DB.Ecosystems.
func (t *Tracked) Ecosystems() ([]string, error) { return t.db.Ecosystems() }

// Used lists the base ecosystems looked up so far, sorted.
func (t *Tracked) Used() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.used))
	for e := range t.used {
		out = append(out, e)
	}
	sort.Strings(out)
	return out
}

// DataAge is the age of the oldest data the lookups so far used; when none
// was looked up (no package has an OSV ecosystem), that of the whole
// database, so an unused database is never taken for a fresh one.
func (t *Tracked) DataAge() (DataAge, error) { return t.db.DataAge(t.Used()) }

// setFresh records a refresh of one ecosystem.
func (w *writer) setFresh(f Freshness) error {
	if err := checkEcosystemName(f.Ecosystem); err != nil {
		return err
	}
	v, _ := json.Marshal(f)
	return w.tx.Bucket(bucketFreshness).Put([]byte(f.Ecosystem), v)
}

// setBaseline records a refresh of every ecosystem.
func (w *writer) setBaseline(f Freshness) error {
	f.Ecosystem = ""
	v, _ := json.Marshal(f)
	return w.tx.Bucket(bucketMeta).Put(keyBaseline, v)
}

// writeTable stores a table derived from an old database, so it survives
// the first write by this version.
func (w *writer) writeTable(t freshTable) error {
	// An unknown baseline is stored too: it keeps the reason.
	if err := w.setBaseline(t.baseline); err != nil {
		return err
	}
	for k, f := range t.eco {
		f.Ecosystem = k
		if err := w.setFresh(f); err != nil {
			return err
		}
	}
	return nil
}

// checkEcosystemName bounds an ecosystem string used as a key.
func checkEcosystemName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty ecosystem name")
	case len(s) > MaxEcosystemLen:
		return fmt.Errorf("ecosystem name of %d bytes, over the %d-byte limit", len(s), MaxEcosystemLen)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("ecosystem name %q has a control character", s)
		}
	}
	return nil
}
