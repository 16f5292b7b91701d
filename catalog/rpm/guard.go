package rpm

import (
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/anchore/go-rpmdb/pkg/bdb"

	"github.com/bulkhead-sec/bulkhead/catalog"
)

// The checks here walk a database file the way go-rpmdb v0.2.2 will, before
// it does, and reject what would make the library misbehave where its
// caller cannot intervene: its BerkeleyDB and NDB readers run in goroutines
// of their own, so an out-of-range slice there kills the process, a page
// chain that loops or leaves the overflow pages spins or grows forever, an
// NDB blob length is allocated unchecked (up to 4 GiB) and a bad NDB slot is
// printed to stdout. Everything the checks let through, the library handles
// with errors. The page and entry parsers used are the library's own, so the
// two walks read the same structures.

// checked is what the pre-read check learnt about a database.
type checked struct {
	format string
	// rows is the number of packages the SQLite table holds, -1 for the
	// other formats.
	rows int
}

const (
	sqliteMagic = "SQLite format 3\x00"
	ndbMagic    = 'R' | 'p'<<8 | 'm'<<16 | 'P'<<24
	// The smallest page of any of the formats.
	minDBSize = 512
)

// check detects the format as go-rpmdb's Open does (SQLite, then NDB, then
// BerkeleyDB) and validates the structures its reader will follow.
// A database holding more than maxPackages packages (catalog.MaxPackagesOr)
// fails with a *catalog.TooManyPackagesError before go-rpmdb reads any.
func check(path string, limit int64, maxPackages int) (checked, error) {
	f, err := os.Open(path)
	if err != nil {
		return checked{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return checked{}, err
	}
	size := st.Size()
	if size > limit {
		return checked{}, fmt.Errorf("database is over the %d-byte limit", limit)
	}
	if size < minDBSize {
		// Empty files included: rpm refuses them too ("cannot open
		// Packages database").
		return checked{}, fmt.Errorf("%w: only %d bytes", errNotRPMDB, size)
	}
	var head [32]byte
	if _, err := f.ReadAt(head[:], 0); err != nil {
		return checked{}, fmt.Errorf("read header: %w", err)
	}
	switch {
	case string(head[:16]) == sqliteMagic:
		n, err := checkSQLite(path)
		if err == nil {
			err = catalog.CheckPackageCount(n-1, maxPackages, "rpm database")
		}
		if err != nil {
			return checked{}, fmt.Errorf("SQLite: %w", err)
		}
		return checked{format: "SQLite", rows: n}, nil
	case binary.LittleEndian.Uint32(head[:4]) == ndbMagic:
		if err := checkNDB(f, size, head[:], maxPackages); err != nil {
			return checked{}, fmt.Errorf("NDB: %w", err)
		}
		return checked{format: "NDB", rows: -1}, nil
	default:
		if err := checkBDB(f, size, maxPackages); err != nil {
			return checked{}, fmt.Errorf("BerkeleyDB: %w", err)
		}
		return checked{format: "BerkeleyDB", rows: -1}, nil
	}
}

// errCorrupt wraps every structural failure the checks find.
var errCorrupt = errors.New("corrupt or truncated database (rpmdb --rebuilddb inside the image may repair it)")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errCorrupt, fmt.Sprintf(format, args...))
}

// overflowBudget bounds the package data the readers may assemble: in a
// sound database every byte of header data is stored once, so more than
// twice the file means pages are shared or chains loop.
func overflowBudget(size int64) int64 { return 2*size + 1<<20 }

// fits reports whether [start, start+n) lies within a page, computed as
// go-rpmdb slices it: in uint16 arithmetic, which wraps past 65535.
func fits(start, n, pageSize int) bool {
	end := start + n
	return end <= pageSize && end <= math.MaxUint16
}

// checkBDB mirrors bdb.(*BerkeleyDB).Read: every page up to LastPageNo that
// is a hash page lists key/value offsets; each HOFFPAGE value points to a
// chain of overflow pages holding one package header.
func checkBDB(f *os.File, size int64, maxPackages int) error {
	meta := make([]byte, 512)
	if _, err := f.ReadAt(meta, 0); err != nil {
		return fmt.Errorf("read metadata page: %w", err)
	}
	hm, err := bdb.ParseHashMetadataPage(meta)
	if err != nil {
		return fmt.Errorf("%w: %v", errNotRPMDB, err)
	}
	pageSize := int(hm.PageSize)
	switch pageSize {
	case 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536:
	default:
		return corrupt("page size %d is not one BerkeleyDB uses", pageSize)
	}
	swapped := hm.Swapped
	pages := size / int64(pageSize)
	budget := overflowBudget(size)
	pkgs := 0
	page := make([]byte, pageSize)
	hdr := make([]byte, bdb.PageHeaderSize)
	for pageNo := int64(0); pageNo <= int64(hm.LastPageNo); pageNo++ {
		if pageNo >= pages {
			// go-rpmdb stops here with a short-read error; so do we.
			return corrupt("metadata says the last page is %d but the file holds %d pages of %d bytes", hm.LastPageNo, pages, pageSize)
		}
		if _, err := f.ReadAt(page, pageNo*int64(pageSize)); err != nil {
			return fmt.Errorf("read page %d: %w", pageNo, err)
		}
		hp, err := bdb.ParseHashPage(page, swapped)
		if err != nil {
			return corrupt("page %d: %v", pageNo, err)
		}
		if hp.PageType != bdb.HashUnsortedPageType && hp.PageType != bdb.HashPageType {
			continue
		}
		if hp.NumEntries%2 != 0 {
			return corrupt("hash page %d has an odd number (%d) of key/value entries", pageNo, hp.NumEntries)
		}
		if !fits(bdb.PageHeaderSize, int(hp.NumEntries)*bdb.HashIndexEntrySize, pageSize) {
			return corrupt("hash page %d: %d entries do not fit in a %d-byte page", pageNo, hp.NumEntries, pageSize)
		}
		idxs, err := bdb.HashPageValueIndexes(page, hp.NumEntries, swapped)
		if err != nil {
			return corrupt("hash page %d: %v", pageNo, err)
		}
		for _, idx := range idxs {
			if int(idx) >= pageSize {
				return corrupt("hash page %d: value offset %d is outside the page", pageNo, idx)
			}
			if page[idx] != bdb.HashOffIndexPageType {
				continue
			}
			// go-rpmdb reads one package per off-page value.
			if err := catalog.CheckPackageCount(pkgs, maxPackages, "rpm database"); err != nil {
				return err
			}
			pkgs++
			if !fits(int(idx), bdb.HashOffPageSize, pageSize) {
				return corrupt("hash page %d: off-page entry at %d runs past the page", pageNo, idx)
			}
			entry, err := bdb.ParseHashOffPageEntry(page[idx:int(idx)+bdb.HashOffPageSize], swapped)
			if err != nil {
				return corrupt("hash page %d: %v", pageNo, err)
			}
			for next := entry.PageNo; next != 0; {
				// go-rpmdb computes the offset in uint32 and wraps; follow it.
				off := int64(hm.PageSize * next)
				if off+int64(pageSize) > size {
					return corrupt("overflow page %d (from hash page %d) is past the end of the file", next, pageNo)
				}
				if _, err := f.ReadAt(hdr, off); err != nil {
					return fmt.Errorf("read overflow page %d: %w", next, err)
				}
				op, err := bdb.ParseHashPage(hdr, swapped)
				if err != nil {
					return corrupt("overflow page %d: %v", next, err)
				}
				if op.PageType != bdb.OverflowPageType {
					// go-rpmdb would retry this page forever.
					return corrupt("page %d in an overflow chain from hash page %d is not an overflow page (type %d)", next, pageNo, op.PageType)
				}
				if op.NextPageNo == 0 {
					if !fits(bdb.PageHeaderSize, int(op.FreeAreaOffset), pageSize) {
						return corrupt("last overflow page %d claims %d bytes in a %d-byte page", next, op.FreeAreaOffset, pageSize)
					}
					budget -= int64(op.FreeAreaOffset)
				} else {
					budget -= int64(pageSize - bdb.PageHeaderSize)
				}
				if budget < 0 {
					return corrupt("overflow chains add up to more than twice the file size (a chain loops or pages are shared)")
				}
				next = op.NextPageNo
			}
		}
	}
	return nil
}

// NDB layout (rpm lib/backend/ndb/rpmpkg.c; go-rpmdb pkg/ndb): a 32-byte
// header, slot pages of 16-byte slots (the header takes the first two), and
// blobs addressed in 16-byte blocks, each with a 16-byte blob header.
const (
	ndbSlotPageSize  = 4096
	ndbSlotSize      = 16
	ndbBlockSize     = 16
	ndbMaxSlotPages  = 2048 // go-rpmdb's own sanity limit
	ndbSlotMagic     = 'S' | 'l'<<8 | 'o'<<16 | 't'<<24
	ndbBlobMagic     = 'B' | 'l'<<8 | 'b'<<16 | 'S'<<24
	ndbHeaderSize    = 32
	ndbBlobHeaderLen = 16
)

// checkNDB mirrors ndb.Open and ndb.(*RpmNDB).Read.
func checkNDB(f *os.File, size int64, head []byte, maxPackages int) error {
	version := binary.LittleEndian.Uint32(head[4:8])
	slotPages := binary.LittleEndian.Uint32(head[12:16])
	if version != 0 {
		return corrupt("unsupported NDB version %d", version)
	}
	if slotPages == 0 || slotPages > ndbMaxSlotPages {
		return corrupt("slot page count %d out of range 1..%d", slotPages, ndbMaxSlotPages)
	}
	slotArea := int64(slotPages) * ndbSlotPageSize
	if slotArea > size {
		return corrupt("%d slot pages do not fit in %d bytes", slotPages, size)
	}
	slots := make([]byte, slotArea-ndbHeaderSize)
	if _, err := f.ReadAt(slots, ndbHeaderSize); err != nil {
		return fmt.Errorf("read slot pages: %w", err)
	}
	budget := overflowBudget(size)
	pkgs := 0
	var bh [ndbBlobHeaderLen]byte
	for i := 0; i+ndbSlotSize <= len(slots); i += ndbSlotSize {
		s := slots[i : i+ndbSlotSize]
		if binary.LittleEndian.Uint32(s[0:4]) != ndbSlotMagic {
			return corrupt("slot %d has a bad magic number", i/ndbSlotSize)
		}
		pkgIndex := binary.LittleEndian.Uint32(s[4:8])
		if pkgIndex == 0 {
			continue // free slot
		}
		if err := catalog.CheckPackageCount(pkgs, maxPackages, "rpm database"); err != nil {
			return err
		}
		pkgs++
		off := int64(binary.LittleEndian.Uint32(s[8:12])) * ndbBlockSize
		if off+ndbBlobHeaderLen > size {
			return corrupt("package %d: blob offset %d is past the end of the file", pkgIndex, off)
		}
		if _, err := f.ReadAt(bh[:], off); err != nil {
			return fmt.Errorf("read blob header of package %d: %w", pkgIndex, err)
		}
		if binary.LittleEndian.Uint32(bh[0:4]) != ndbBlobMagic {
			return corrupt("package %d: bad blob magic at offset %d", pkgIndex, off)
		}
		if got := binary.LittleEndian.Uint32(bh[4:8]); got != pkgIndex {
			return corrupt("slot for package %d points to the blob of package %d", pkgIndex, got)
		}
		n := int64(binary.LittleEndian.Uint32(bh[12:16]))
		if off+ndbBlobHeaderLen+n > size {
			return corrupt("package %d: %d-byte blob at offset %d runs past the end of the file", pkgIndex, n, off)
		}
		if budget -= n; budget < 0 {
			return corrupt("blobs add up to more than twice the file size (slots share blobs)")
		}
	}
	return nil
}

// checkSQLite opens the database as go-rpmdb will and counts the rows of
// its Packages table, so that Parse can tell a complete read from one that
// stopped at a corrupt page.
func checkSQLite(path string) (int, error) {
	// The same read-only, no-journal DSN go-rpmdb uses.
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&immutable=1")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM Packages").Scan(&n); err != nil {
		return 0, fmt.Errorf("%w: count packages: %v", errCorrupt, err)
	}
	return n, nil
}
