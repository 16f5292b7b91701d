package vulndb

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/gzip"
)

// An export file is a gzip-compressed tar with two entries, in this order:
//
//	manifest.json  ExportManifest: format, schema version, the database's
//	               size and sha256, and its status when exported
//	osv.db         the database file
//
// The manifest comes first so a reader knows the expected size and digest
// before the database streams past; ImportExport installs the database only
// when both match.
const (
	exportFormat      = "bulkhead-vulndb-export"
	exportVersion     = 1
	exportManifest    = "manifest.json"
	exportDBName      = "osv.db"
	maxManifestSize   = 1 << 20
	defaultMaxDBBytes = 16 << 30
)

// ExportManifest describes an export file.
type ExportManifest struct {
	Format        string    `json:"format"`
	FormatVersion int       `json:"format_version"`
	SchemaVersion int       `json:"schema_version"`
	Created       time.Time `json:"created"`
	DB            struct {
		Name   string `json:"name"`
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
	} `json:"db"`
	Status Status `json:"status"`
}

// Export writes the database at dbPath to file as one self-checking file to
// carry into an air-gapped network; `bulkhead db import-export FILE` (or
// `db import FILE`) installs it there.
func Export(dbPath, file string) (*ExportManifest, error) {
	db, err := Open(dbPath)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	st, err := db.Status()
	if err != nil {
		return nil, err
	}
	st.Path = ""
	// A consistent copy through the read transaction, hashed on the way.
	tmp, err := os.CreateTemp(filepath.Dir(file), ".export-*.db")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	size, err := db.tx.WriteTo(io.MultiWriter(tmp, h))
	if err != nil {
		return nil, fmt.Errorf("export: copy database: %w", err)
	}
	m := &ExportManifest{Format: exportFormat, FormatVersion: exportVersion, SchemaVersion: SchemaVersion, Created: time.Now().UTC(), Status: st}
	m.DB.Name, m.DB.Size, m.DB.SHA256 = exportDBName, size, hex.EncodeToString(h.Sum(nil))
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}

	out, err := os.CreateTemp(filepath.Dir(file), ".export-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	defer os.Remove(out.Name())
	defer out.Close()
	bw := bufio.NewWriterSize(out, 1<<20)
	zw, _ := gzip.NewWriterLevel(bw, gzip.BestSpeed) // records are zstd already
	tw := tar.NewWriter(zw)
	hdr := func(name string, n int64) *tar.Header {
		return &tar.Header{Name: name, Mode: 0o644, Size: n, ModTime: m.Created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	}
	if err := tw.WriteHeader(hdr(exportManifest, int64(len(mj)))); err != nil {
		return nil, err
	}
	if _, err := tw.Write(mj); err != nil {
		return nil, err
	}
	if err := tw.WriteHeader(hdr(exportDBName, size)); err != nil {
		return nil, err
	}
	if _, err := io.Copy(tw, tmp); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	for _, c := range []io.Closer{tw, zw} {
		if err := c.Close(); err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := out.Close(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := installFile(out.Name(), file); err != nil {
		return nil, err
	}
	return m, nil
}

// ErrBadExport marks an export file that is damaged, tampered with or not an
// export at all.
var ErrBadExport = errors.New("not a valid bulkhead vulnerability database export")

// readExport reads an export stream: it returns the manifest and copies the
// database to dst, failing unless its size and sha256 match the manifest and
// the gzip stream's own checksum holds. maxDB bounds the database size.
func readExport(r io.Reader, dst io.Writer, maxDB int64) (*ExportManifest, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadExport, err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	h, err := tr.Next()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadExport, err)
	}
	if h.Name != exportManifest || h.Typeflag != tar.TypeReg || h.Size > maxManifestSize || h.Size < 0 {
		return nil, fmt.Errorf("%w: first entry is %q, want %s", ErrBadExport, h.Name, exportManifest)
	}
	mj, err := io.ReadAll(io.LimitReader(tr, maxManifestSize))
	if err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", ErrBadExport, err)
	}
	m := &ExportManifest{}
	if err := json.Unmarshal(mj, m); err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", ErrBadExport, err)
	}
	if m.Format != exportFormat {
		return nil, fmt.Errorf("%w: manifest format %q", ErrBadExport, m.Format)
	}
	if m.FormatVersion != exportVersion || m.SchemaVersion != SchemaVersion {
		return nil, fmt.Errorf("export format %d / database schema %d; this bulkhead reads format %d / schema %d: export it again with a matching bulkhead",
			m.FormatVersion, m.SchemaVersion, exportVersion, SchemaVersion)
	}
	want, err := hex.DecodeString(m.DB.SHA256)
	if err != nil || len(want) != sha256.Size {
		return nil, fmt.Errorf("%w: manifest sha256 %q", ErrBadExport, m.DB.SHA256)
	}
	if m.DB.Size <= 0 || m.DB.Size > maxDB {
		return nil, fmt.Errorf("%w: manifest database size %d", ErrBadExport, m.DB.Size)
	}
	h, err = tr.Next()
	if err != nil {
		return nil, fmt.Errorf("%w: database entry: %v", ErrBadExport, err)
	}
	if h.Name != m.DB.Name || h.Typeflag != tar.TypeReg || h.Size != m.DB.Size {
		return nil, fmt.Errorf("%w: second entry %q (%d bytes), manifest says %q (%d bytes)", ErrBadExport, h.Name, h.Size, m.DB.Name, m.DB.Size)
	}
	sum := sha256.New()
	if _, err := io.Copy(io.MultiWriter(dst, sum), tr); err != nil {
		return nil, fmt.Errorf("%w: database entry: %v", ErrBadExport, err)
	}
	if got := sum.Sum(nil); !bytes.Equal(got, want) {
		return nil, fmt.Errorf("%w: database sha256 is %x, manifest says %s: the file was altered or damaged in transit", ErrBadExport, got, m.DB.SHA256)
	}
	if _, err := tr.Next(); err != io.EOF {
		return nil, fmt.Errorf("%w: unexpected content after the database (%v)", ErrBadExport, err)
	}
	// Reading to the end makes gzip check its own CRC and length.
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadExport, err)
	}
	return m, nil
}

// ImportExport installs the database in an export file at dbPath, after
// checking it against the manifest's sha256 and opening it. The current
// database is replaced only when everything checks out.
func ImportExport(file, dbPath string) (*ExportManifest, error) {
	in, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("import export: %w", err)
	}
	defer in.Close()
	dir := filepath.Dir(dbPath)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create database directory: %w", err)
	}
	unlock, err := lockFile(dbPath + ".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	removeStale(dir, filepath.Base(dbPath))
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dbPath)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("import export: %w", err)
	}
	installed := false
	defer func() {
		tmp.Close()
		if !installed {
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	m, err := readExport(bufio.NewReaderSize(in, 1<<20), bw, defaultMaxDBBytes)
	if err != nil {
		return nil, fmt.Errorf("import export %s: %w", file, err)
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	db, err := Open(tmp.Name())
	if err != nil {
		return nil, fmt.Errorf("import export %s: the database inside does not open: %w", file, err)
	}
	db.Close()
	if err := installFile(tmp.Name(), dbPath); err != nil {
		return nil, err
	}
	installed = true
	return m, nil
}

// IsExportFile reports whether path starts like an export file (gzip, then
// a tar entry named manifest.json), so `db import` can take one directly.
func IsExportFile(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return false
	}
	h, err := tar.NewReader(zr).Next()
	return err == nil && h.Name == exportManifest
}
