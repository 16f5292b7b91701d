// Package vulndb holds bulkhead's vulnerability database: OSV records
// (https://ossf.github.io/osv-schema/), parsed into the osv-schema Go
// bindings (osvschema.Vulnerability, the one vulnerability model from import
// to report), stored in one local file and indexed by (ecosystem, package
// name).
//
// Writers: Import (zip files, directories and single files of OSV JSON),
// Update (the OSV bucket layout over HTTP: <base>/ecosystems.txt,
// <base>/<Ecosystem>/all.zip, incremental refresh through
// <base>/<Ecosystem>/modified_id.csv and <base>/<Ecosystem>/<ID>.json),
// ImportExport (a file made by Export, checked against its sha256) and
// EnsureBundled (the snapshot embedded in the binary, so a first scan works
// offline). Every writer builds a new file next to the database, fsyncs it
// and renames it into place under a lock file: a killed process or a failed
// download leaves the previous database intact and usable.
//
// Store: bbolt (go.etcd.io/bbolt). It is embedded and pure Go (no cgo, so the
// binary stays static and cross-compiles), keeps everything in one file (easy
// to export, replace atomically with rename, and carry into an air-gapped
// network), allows any number of concurrent read-only opens, and its
// transactions are ACID with checksummed meta pages. The workload is
// write-rarely, read-by-key: a B+tree with memory-mapped reads is the right
// shape. SQLite would need cgo or a large pure-Go port (modernc.org/sqlite)
// for no query we need; BadgerDB or Pebble are LSM trees built for write
// throughput, spread over many files and need compaction.
//
// Layout (schema version in the meta bucket):
//
//	meta        schema, built, updated, source (the oldest data: read by older
//	            bulkheads), written, writer (the last write), baseline
//	            (JSON Freshness for ecosystems without their own), records,
//	            withdrawn
//	records     id -> 1-byte codec + zstd(protobuf wire form of the record)
//	withdrawn   id -> "" for each withdrawn record (stored, never returned)
//	index       ecosystem "\x00" normalized name -> sorted ids, "\n"-separated
//	ecosystems  ecosystem -> JSON {records}
//	feeds       OSV bucket ecosystem -> JSON {watermark, updated, records, source}
//	members     feed -> {id -> ""}: which records a feed's all.zip held
//	freshness   base ecosystem -> JSON Freshness: how current its data is
//	            (see fresh.go: only a full refresh dates an ecosystem)
//
// Records are parsed with protojson (DiscardUnknown, so a record with a field
// newer than the bindings still loads) and stored in protobuf wire form
// rather than JSON because decoding it is about seven times faster than
// protojson, which keeps Lookup cheap; what is kept is exactly what the
// bindings model. A DB handle also caches decoded records, so a record shared
// by many packages is decoded once per scan.
//
// Names: Lookup takes the ecosystem string exactly as OSV writes it in
// affected[].package.ecosystem ("Debian:12", "AlmaLinux:9", "PyPI") and the
// package name as OSV writes it; only PyPI names are normalised (PEP 503),
// as osv.dev does. Release fallbacks ("Alpine:v3.21" -> nearest release) are
// the matcher's job, with Ecosystems listing what the data has.
package vulndb
