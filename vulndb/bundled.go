package vulndb

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ossf/osv-schema/bindings/go/osvschema"
	"google.golang.org/protobuf/proto"
)

// The bundled snapshot: every OSV record of the corpus the project tests
// against, sorted by id, each as its deterministic protobuf encoding
// (osvschema.Vulnerability: the whole record as the bindings model it)
// prefixed by its length as a uvarint, all in one zstd stream
// (tools/snapshot builds it; scripts/build-snapshot.sh runs that).
// Compression does the work (about 13x: the records of one source share
// most of their text). Protobuf rather than JSON lines, at the same size,
// because it decodes about ten times faster than protojson: building the
// database from it takes about a second instead of several.
var (
	//go:embed snapshot/osv-snapshot.pb.zst
	snapshotData []byte
	//go:embed snapshot/manifest.json
	snapshotManifest []byte
)

// SourceBundled is Status.Source for a database built from the snapshot;
// Status.Updated is then the snapshot's date.
const SourceBundled = "bundled snapshot"

// SnapshotWindow is the zstd window the snapshot is written with; it bounds
// the decoder's memory.
const SnapshotWindow = 8 << 20

// SnapshotManifest describes the bundled snapshot.
type SnapshotManifest struct {
	// Date is the newest `modified` time among the records: the data is
	// as current as that, no more.
	Date       time.Time        `json:"date"`
	Records    int              `json:"records"`
	Ecosystems map[string]int   `json:"ecosystems"` // records per corpus folder
	Sources    []SnapshotSource `json:"sources"`
	File       string           `json:"file"`
	Size       int64            `json:"size"`
	SHA256     string           `json:"sha256"`
}

// SnapshotSource is where one folder of the corpus came from.
type SnapshotSource struct {
	Dir     string `json:"dir"`
	Repo    string `json:"repo"`
	Path    string `json:"path"`
	Commit  string `json:"commit"`
	License string `json:"license"`
}

// Bundled returns the manifest of the snapshot built into this binary.
func Bundled() (SnapshotManifest, error) {
	var m SnapshotManifest
	if err := json.Unmarshal(snapshotManifest, &m); err != nil {
		return m, fmt.Errorf("bundled snapshot manifest: %w", err)
	}
	return m, nil
}

// EncodeSnapshot writes records (sorted by the caller) the way the bundled
// snapshot is stored: length-delimited deterministic protobuf, one zstd
// stream at the best ratio, single-threaded so the output is the same on
// every run.
func EncodeSnapshot(records []*osvschema.Vulnerability) ([]byte, error) {
	var raw []byte
	for _, v := range records {
		pb, err := proto.MarshalOptions{Deterministic: true}.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", v.GetId(), err)
		}
		raw = binary.AppendUvarint(raw, uint64(len(pb)))
		raw = append(raw, pb...)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression),
		zstd.WithWindowSize(SnapshotWindow), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(true))
	if err != nil {
		return nil, err
	}
	return enc.EncodeAll(raw, nil), nil
}

// OpenForScan opens the database a scan uses: path, or DefaultPath when
// empty, first built from the bundled snapshot when no file is there. It
// reports whether it built one.
func OpenForScan(path string) (db *DB, built bool, err error) {
	if path == "" {
		path = DefaultPath()
	}
	if built, err = EnsureBundled(path); err != nil {
		return nil, false, err
	}
	db, err = Open(path)
	return db, built, err
}

// EnsureBundled builds the database at path from the embedded snapshot when
// no file exists there, so a first scan works offline with no `db` step. It
// leaves an existing file alone (even a damaged one: Open reports that, with
// its hint) and reports whether it built one.
func EnsureBundled(path string) (built bool, err error) {
	if _, err := os.Stat(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	m, err := Bundled()
	if err != nil {
		return false, err
	}
	var w *writer
	// Two scans started at once on a fresh machine: the second waits for
	// the first's build instead of failing on the lock.
	for deadline := time.Now().Add(60 * time.Second); ; {
		w, err = beginWrite(path, true)
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "is locked") || time.Now().After(deadline) {
			return false, fmt.Errorf("build database from the bundled snapshot: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
		if _, err := os.Stat(path); err == nil {
			return false, nil
		}
	}
	defer w.abort()
	if _, err := os.Stat(path); err == nil {
		return false, nil // built by another process while we waited
	}
	if err := buildSnapshot(w, snapshotData, m); err != nil {
		return false, fmt.Errorf("build database from the bundled snapshot: %w", err)
	}
	return true, nil
}

// BuildSnapshot builds a new database at path from a snapshot stream (as
// EncodeSnapshot writes it) that m describes (its sha256, record count and
// date), replacing any database there. Its data is dated m.Date for every
// ecosystem.
func BuildSnapshot(path string, data []byte, m SnapshotManifest) error {
	w, err := beginWrite(path, true)
	if err != nil {
		return err
	}
	defer w.abort()
	return buildSnapshot(w, data, m)
}

func buildSnapshot(w *writer, data []byte, m SnapshotManifest) error {
	res := &Result{}
	opts := &Options{}
	if err := loadWith(context.Background(), w, snapshotProducer(data, m), parseSnapshotRecord, "", opts, res); err != nil {
		return err
	}
	if res.Skipped > 0 || res.Records != m.Records {
		return fmt.Errorf("snapshot: read %d records, manifest says %d (%d invalid: %v)", res.Records, m.Records, res.Skipped, res.Problems)
	}
	// The snapshot's date is its newest record's `modified`: every
	// ecosystem's data is at least that current, no more.
	if err := w.setBaseline(Freshness{AsOf: m.Date, Kind: KindBundled, Source: SourceBundled, Refreshed: time.Now().UTC()}); err != nil {
		return err
	}
	return w.commit(SourceBundled)
}

// snapshotProducer checks the snapshot against its manifest and emits its
// lines.
func snapshotProducer(data []byte, m SnapshotManifest) func(emitFunc) error {
	return func(emit emitFunc) error {
		sum := sha256.Sum256(data)
		if hex.EncodeToString(sum[:]) != m.SHA256 {
			return fmt.Errorf("bundled snapshot sha256 %x does not match its manifest (%s): rebuild with scripts/build-snapshot.sh", sum, m.SHA256)
		}
		return readSnapshot(bytes.NewReader(data), emit)
	}
}

// readSnapshot emits each length-delimited record of a snapshot stream.
func readSnapshot(r io.Reader, emit emitFunc) error {
	zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(SnapshotWindow), zstd.WithDecoderMaxMemory(1<<30))
	if err != nil {
		return err
	}
	defer zr.Close()
	br := bufio.NewReaderSize(zr, 1<<20)
	for n := 1; ; n++ {
		size, err := binary.ReadUvarint(br)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read snapshot record %d: %w", n, err)
		}
		if size > MaxRecordSize {
			return fmt.Errorf("read snapshot record %d: %d bytes, over the limit", n, size)
		}
		// Each record gets its own slice: the parsers run on other
		// goroutines after the next read.
		pb := make([]byte, size)
		if _, err := io.ReadFull(br, pb); err != nil {
			return fmt.Errorf("read snapshot record %d: %w", n, err)
		}
		if err := emit(fmt.Sprintf("snapshot record %d", n), pb); err != nil {
			return err
		}
	}
}

func parseSnapshotRecord(name string, pb []byte) []parsedRecord {
	v := &osvschema.Vulnerability{}
	err := proto.Unmarshal(pb, v)
	if err == nil {
		err = checkRecord(v)
	}
	if err != nil {
		return []parsedRecord{{name: name, err: err}}
	}
	return []parsedRecord{{name: name, v: v, pb: pb}}
}
