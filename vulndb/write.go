package vulndb

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ossf/osv-schema/bindings/go/osvschema"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

var bucketWithdrawn = []byte("withdrawn")

// batchSize is how many record writes share one bbolt transaction: large
// enough to amortise commits, small enough to bound the dirty pages (and the
// in-memory index edits) held at once.
const batchSize = 4000

var encoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))

// writer builds the next version of a database in a temporary file beside
// it. Nothing touches the live file until commit renames the new one over it.
type writer struct {
	path, tmp string
	unlock    func()
	db        *bolt.DB
	tx        *bolt.Tx
	n         int
	// index edits of the current batch: key -> set of ids, loaded on first
	// touch and written back at each batch commit.
	idx map[string]map[string]bool
	// ids written in this run, so a duplicate id from two sources resolves
	// the same way whatever the order they arrive in.
	seen map[string]seenRec
	// newest is the latest `modified` put per feed in this run.
	newest map[string]time.Time
	// discarded is set when an existing file could not be read and the
	// build started empty.
	discarded error
	// strictFeed files a record under its feed only when it names the
	// feed's ecosystem (a full import: other records in the same files are
	// not part of that ecosystem's export).
	strictFeed bool
}

// beginWrite takes the update lock and prepares the temporary file: a copy
// of the current database, or an empty one when fresh is set, the file is
// missing, or it is unreadable (then w.discarded says why).
func beginWrite(path string, fresh bool) (w *writer, err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create database directory: %w", err)
	}
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, err
	}
	removeStale(dir, filepath.Base(path))
	w = &writer{path: path, unlock: unlock, idx: map[string]map[string]bool{}, seen: map[string]seenRec{}, newest: map[string]time.Time{}}
	defer func() {
		if err != nil {
			w.abort()
		}
	}()
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("create temporary database file: %w", err)
	}
	w.tmp = f.Name()
	if !fresh {
		old, err := Open(path)
		switch {
		case err == nil:
			_, err = old.tx.WriteTo(f)
			old.Close()
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("copy current database: %w", err)
			}
		case errors.Is(err, ErrNotFound):
		default:
			w.discarded = err
		}
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	w.db, err = bolt.Open(w.tmp, 0o644, &bolt.Options{NoSync: true, NoFreelistSync: true, Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("open temporary database: %w", err)
	}
	// A database from before per-ecosystem freshness: keep what it can
	// prove about its age before anything is written.
	var legacy *freshTable
	err = w.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) != nil && tx.Bucket(bucketFreshness) == nil {
			t := legacyFreshness(tx)
			legacy = &t
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := w.begin(); err != nil {
		return nil, err
	}
	if legacy != nil {
		if err := w.writeTable(*legacy); err != nil {
			return nil, fmt.Errorf("carry over the database's freshness: %w", err)
		}
	}
	meta := w.tx.Bucket(bucketMeta)
	if meta.Get(keyBuilt) == nil {
		meta.Put(keyBuilt, []byte(time.Now().UTC().Format(time.RFC3339Nano)))
	}
	return w, nil
}

func (w *writer) begin() error {
	tx, err := w.db.Begin(true)
	if err != nil {
		return fmt.Errorf("begin database write: %w", err)
	}
	w.tx = tx
	for _, b := range [][]byte{bucketMeta, bucketRecords, bucketIndex, bucketEcosystems, bucketFeeds, bucketMembers, bucketWithdrawn, bucketFreshness} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketMeta).Put(keySchema, []byte(strconv.Itoa(SchemaVersion)))
}

// flush writes the batch's index edits and commits, starting a new batch.
func (w *writer) flush() error {
	ib := w.tx.Bucket(bucketIndex)
	keys := make([]string, 0, len(w.idx))
	for k := range w.idx {
		keys = append(keys, k)
	}
	sort.Strings(keys) // sequential puts fill bbolt pages better
	for _, k := range keys {
		ids := make([]string, 0, len(w.idx[k]))
		for id := range w.idx[k] {
			ids = append(ids, id)
		}
		var err error
		if len(ids) == 0 {
			err = ib.Delete([]byte(k))
		} else {
			sort.Strings(ids)
			err = ib.Put([]byte(k), []byte(strings.Join(ids, "\n")))
		}
		if err != nil {
			return fmt.Errorf("write index: %w", err)
		}
	}
	clear(w.idx)
	if err := w.tx.Commit(); err != nil {
		return fmt.Errorf("commit database batch: %w", err)
	}
	w.tx, w.n = nil, 0
	return w.begin()
}

func (w *writer) indexSet(k string) map[string]bool {
	s, ok := w.idx[k]
	if !ok {
		s = map[string]bool{}
		if v := w.tx.Bucket(bucketIndex).Get([]byte(k)); len(v) > 0 {
			for _, id := range strings.Split(string(v), "\n") {
				s[id] = true
			}
		}
		w.idx[k] = s
	}
	return s
}

// put stores a record, replacing an older one with the same id, and files it
// under feed (the OSV bucket ecosystem it came from; "" for local imports).
// It reports whether the stored bytes changed.
func (w *writer) put(v *osvschema.Vulnerability, pb []byte, feed string) (changed bool, err error) {
	id := v.GetId()
	if pb == nil {
		if pb, err = (proto.MarshalOptions{Deterministic: true}).Marshal(v); err != nil {
			return false, fmt.Errorf("encode record %s: %w", id, err)
		}
	}
	s := seenRec{mod: v.GetModified().AsTime().UnixNano(), sum: fnv64(pb)}
	if prev, ok := w.seen[id]; ok && !s.newer(prev) {
		return false, nil // the same id twice in one run: the newer record wins
	}
	w.seen[id] = s
	if feed != "" && w.strictFeed && !names(v, feed) {
		feed = ""
	}
	if t := modifiedOf(v); feed != "" && t.After(w.newest[feed]) {
		w.newest[feed] = t
	}
	val := make([]byte, 1, 1+len(pb)/3)
	val[0] = codecZstdProto
	val = encoder.EncodeAll(pb, val)

	rb := w.tx.Bucket(bucketRecords)
	key := []byte(id)
	if old := rb.Get(key); old != nil {
		if bytes.Equal(old, val) {
			return false, w.member(feed, id)
		}
		if ov, err := decodeRecord(old); err == nil {
			for _, k := range indexKeys(ov) {
				delete(w.indexSet(k), id)
			}
		}
	}
	if err := rb.Put(key, val); err != nil {
		return false, fmt.Errorf("store record %s: %w", id, err)
	}
	for _, k := range indexKeys(v) {
		w.indexSet(k)[id] = true
	}
	wb := w.tx.Bucket(bucketWithdrawn)
	if Withdrawn(v) {
		err = wb.Put(key, nil)
	} else {
		err = wb.Delete(key)
	}
	if err != nil {
		return false, err
	}
	if err := w.member(feed, id); err != nil {
		return false, err
	}
	if w.n++; w.n >= batchSize {
		return true, w.flush()
	}
	return true, nil
}

// seenRec remembers a record written in this run by its modified time and
// a hash of its encoding, not the record itself, to keep memory small.
type seenRec struct {
	mod int64
	sum uint64
}

// newer orders two versions of one record: later `modified` wins; on a tie
// the larger hash, so the result never depends on arrival order.
func (a seenRec) newer(b seenRec) bool {
	if a.mod != b.mod {
		return a.mod > b.mod
	}
	return a.sum > b.sum
}

func (w *writer) member(feed, id string) error {
	if feed == "" {
		return nil
	}
	b, err := w.tx.Bucket(bucketMembers).CreateBucketIfNotExists([]byte(feed))
	if err != nil {
		return err
	}
	return b.Put([]byte(id), nil)
}

// remove deletes a record id from feed; the record itself goes when no other
// feed holds it. Used when a feed's full all.zip no longer has it, or its
// single-record URL answers 404.
func (w *writer) remove(feed, id string) error {
	mb := w.tx.Bucket(bucketMembers)
	if b := mb.Bucket([]byte(feed)); b != nil {
		if err := b.Delete([]byte(id)); err != nil {
			return err
		}
	}
	held := false
	mb.ForEachBucket(func(k []byte) error {
		if !held && mb.Bucket(k).Get([]byte(id)) != nil {
			held = true
		}
		return nil
	})
	if held {
		return nil
	}
	rb := w.tx.Bucket(bucketRecords)
	if old := rb.Get([]byte(id)); old != nil {
		if ov, err := decodeRecord(old); err == nil {
			for _, k := range indexKeys(ov) {
				delete(w.indexSet(k), id)
			}
		}
	}
	if err := rb.Delete([]byte(id)); err != nil {
		return err
	}
	return w.tx.Bucket(bucketWithdrawn).Delete([]byte(id))
}

// feedMembers lists the ids a feed holds.
func (w *writer) feedMembers(feed string) []string {
	var ids []string
	if b := w.tx.Bucket(bucketMembers).Bucket([]byte(feed)); b != nil {
		b.ForEach(func(k, _ []byte) error {
			ids = append(ids, string(k))
			return nil
		})
	}
	return ids
}

func (w *writer) feed(name string) (feedMeta, bool) {
	var m feedMeta
	v := w.tx.Bucket(bucketFeeds).Get([]byte(name))
	if v == nil {
		return m, false
	}
	return m, json.Unmarshal(v, &m) == nil
}

func (w *writer) setFeed(name string, m feedMeta) error {
	if b := w.tx.Bucket(bucketMembers).Bucket([]byte(name)); b != nil {
		m.Records = b.Stats().KeyN
	}
	v, _ := json.Marshal(m)
	return w.tx.Bucket(bucketFeeds).Put([]byte(name), v)
}

// names reports whether a record has an affected package in the base
// ecosystem eco.
func names(v *osvschema.Vulnerability, eco string) bool {
	for _, a := range v.GetAffected() {
		if baseEcosystem(a.GetPackage().GetEcosystem()) == eco {
			return true
		}
	}
	return false
}

// pruneFeed removes the records a feed held before (ids) but no longer
// holds after a full load of it.
func (w *writer) pruneFeed(feed string, before []string) (deleted int, err error) {
	now := map[string]bool{}
	for _, id := range w.feedMembers(feed) {
		now[id] = true
	}
	for _, id := range before {
		if !now[id] {
			if err := w.remove(feed, id); err != nil {
				return deleted, err
			}
			deleted++
		}
	}
	return deleted, nil
}

// commit recomputes the per-ecosystem counts, stamps the metadata, makes the
// file durable and renames it over the live database. writer says what
// wrote it; the age of the data is what the freshness records say, never
// the time of this write.
func (w *writer) commit(writer string) error {
	if err := w.flush(); err != nil {
		return err
	}
	if err := w.stamp(writer); err != nil {
		return err
	}
	if err := w.tx.Commit(); err != nil {
		return fmt.Errorf("commit database: %w", err)
	}
	w.tx = nil
	if err := w.db.Sync(); err != nil {
		return fmt.Errorf("sync database: %w", err)
	}
	if err := w.db.Close(); err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	w.db = nil
	if err := w.compact(); err != nil {
		return err
	}
	if err := installFile(w.tmp, w.path); err != nil {
		return err
	}
	w.tmp = ""
	w.abort() // only releases the lock now
	return nil
}

// compact rewrites the finished file with full pages and no free space:
// batched commits and copy-on-write leave both behind (a fresh build is
// about a third smaller compacted), and the file is what an export carries.
func (w *writer) compact() error {
	src, err := bolt.Open(w.tmp, 0, &bolt.Options{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("reopen new database: %w", err)
	}
	defer src.Close()
	f, err := os.CreateTemp(filepath.Dir(w.path), "."+filepath.Base(w.path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("create compacted database: %w", err)
	}
	f.Close()
	dst, err := bolt.Open(f.Name(), 0o644, &bolt.Options{NoSync: true})
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("open compacted database: %w", err)
	}
	err = bolt.Compact(dst, src, 64<<20)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("compact database: %w", err)
	}
	src.Close()
	os.Remove(w.tmp)
	w.tmp = f.Name()
	return nil
}

func (w *writer) stamp(writer string) error {
	// Count, per ecosystem, the distinct records the index names.
	sets := map[string]map[string]bool{}
	err := w.tx.Bucket(bucketIndex).ForEach(func(k, v []byte) error {
		eco, _ := splitIndexKey(k)
		s := sets[eco]
		if s == nil {
			s = map[string]bool{}
			sets[eco] = s
		}
		for _, id := range bytes.Split(v, []byte("\n")) {
			s[string(id)] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := w.tx.DeleteBucket(bucketEcosystems); err != nil {
		return err
	}
	eb, err := w.tx.CreateBucket(bucketEcosystems)
	if err != nil {
		return err
	}
	for eco, s := range sets {
		v, _ := json.Marshal(EcosystemStatus{Records: len(s)})
		if err := eb.Put([]byte(eco), v); err != nil {
			return err
		}
	}
	fresh, err := readFreshness(w.tx)
	if err != nil {
		return err
	}
	oldest := fresh.age(heldEcosystems(w.tx, fresh)).Oldest
	// "updated" and "source" are what older bulkheads read as the data's
	// age: the oldest data, and for undated data the Unix epoch, so that
	// they warn rather than take it for fresh.
	updated := oldest.AsOf
	if !oldest.Known() {
		updated = time.Unix(0, 0)
	}
	meta := w.tx.Bucket(bucketMeta)
	records := w.tx.Bucket(bucketRecords).Stats().KeyN
	withdrawn := w.tx.Bucket(bucketWithdrawn).Stats().KeyN
	for k, v := range map[string]string{
		string(keyUpdated): updated.UTC().Format(time.RFC3339Nano),
		string(keySource):  oldest.Source,
		string(keyWritten): time.Now().UTC().Format(time.RFC3339Nano),
		string(keyWriter):  writer,
		"records":          strconv.Itoa(records),
		"withdrawn":        strconv.Itoa(withdrawn),
	} {
		if err := meta.Put([]byte(k), []byte(v)); err != nil {
			return err
		}
	}
	return nil
}

// abort drops the temporary file and releases the lock; after commit it
// only releases the lock. Safe to call more than once.
func (w *writer) abort() {
	if w.tx != nil {
		w.tx.Rollback()
		w.tx = nil
	}
	if w.db != nil {
		w.db.Close()
		w.db = nil
	}
	if w.tmp != "" {
		os.Remove(w.tmp)
		w.tmp = ""
	}
	if w.unlock != nil {
		w.unlock()
		w.unlock = nil
	}
}

// installFile makes tmp durable and renames it to path, then syncs the
// directory so the rename itself survives a crash.
func installFile(tmp, path string) error {
	f, err := os.OpenFile(tmp, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("reopen new database: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync new database: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("install new database: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func fnv64(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}

// removeStale deletes temporary files that a killed writer left beside the
// database. Only called with the lock held, so none is in use.
func removeStale(dir, base string) {
	for _, pat := range []string{"." + base + ".*.tmp", ".download-*.zip"} {
		matches, _ := filepath.Glob(filepath.Join(dir, pat))
		for _, m := range matches {
			os.Remove(m)
		}
	}
}
