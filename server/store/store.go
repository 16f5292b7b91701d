// Package store keeps the fleet's scans: for every image digest its
// inventory, its findings, when and with which vulnerability database it was
// scanned, where it was seen, and the findings that appeared and disappeared
// as new advisories were re-evaluated. One schema, versioned migrations
// (goose), on SQLite (embedded default, pure Go) or PostgreSQL.
//
// Every write is one transaction: an acknowledged write is durable, and a
// process killed mid-write leaves nothing half-written.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/bulkhead-sec/bulkhead/base"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/report"
)

// Errors a Store wraps (test with errors.Is): the API maps them to 404,
// 400, 413, 409 and 503.
var (
	// ErrNotFound is returned when the asked-for row does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalid is returned for bad input (nothing is written).
	ErrInvalid = errors.New("invalid")
	// ErrTooLarge is returned for input over a size limit (nothing is
	// written).
	ErrTooLarge = errors.New("too large")
	// ErrConflict is returned when a unique name or hash already exists.
	ErrConflict = errors.New("already exists")
	// ErrBusy is returned when the database cannot take the request now
	// but may soon: SQLite still locked after its busy timeout, a
	// PostgreSQL deadlock or serialization failure still failing after the
	// store's retries, or no connection to be had. Nothing was written;
	// the request may be sent again.
	ErrBusy = errors.New("database busy")
)

// Scan is one scan of one image digest.
type Scan struct {
	ID     int64  `json:"id"`
	Digest string `json:"digest"` // the image's manifest digest ("sha256:...")
	// Repository is the canonical repository the scan was asked for
	// ("index.docker.io/library/alpine"); empty for an inventory upload
	// that named none.
	Repository string    `json:"repository,omitempty"`
	ScannedAt  time.Time `json:"scannedAt"`
	// Source says how the scan reached the server: "registry" (the server
	// pulled it), "upload" (CI sent the inventory), "sbom" (a CycloneDX or
	// SPDX document was uploaded).
	Source    string               `json:"source"`
	DB        *report.DBInfo       `json:"vulnerabilityDB,omitempty"`
	Inventory *inventory.Inventory `json:"inventory,omitempty"`
	// Findings are the current findings of this scan: replaced by each
	// re-evaluation (the change is recorded as Changes).
	Findings []finding.Finding `json:"findings,omitempty"`
	// Provenance, when set, is stored with the scan (PutScan). Scan and
	// LatestScan do not read it back: ask Provenance.
	Provenance *Provenance `json:"provenance,omitempty"`
	// Encoded, when set on a scan to store, is the JSON of Inventory and
	// Findings the caller has already encoded (encoding/json's form): the
	// store keeps these bytes instead of encoding the values again.
	Encoded *EncodedJSON `json:"-"`
}

// EncodedJSON is a scan's inventory and findings as JSON (Scan.Encoded).
type EncodedJSON struct {
	Inventory, Findings []byte
}

// Provenance says where an image comes from and who vouches for it: its
// base image with the recommendation of a better one, and whether a trusted
// key signed and attested it. Either part may be missing (the server has
// no base catalog or no signature policy, the upload did not carry it).
type Provenance struct {
	Base      *BaseImage       `json:"base,omitempty"`
	Signature *SignatureStatus `json:"signature,omitempty"`
}

// BaseImage is the image's base as base.Detect decided it, and
// base.Recommend's ranking of the catalog's other bases.
type BaseImage struct {
	Detection base.Detection `json:"detection"`
	// Recommendation is nil when the base is not in the catalog (see
	// Detection.Reason) or could not be ranked (Note).
	Recommendation *base.Recommendation `json:"recommendation,omitempty"`
	// Note says why there is no recommendation when the detection does
	// not.
	Note string `json:"note,omitempty"`
}

// Signature statuses.
const (
	// SignatureVerified: every signature-policy rule that covers the
	// image's repository was met (a trusted key signed its digest, and
	// each required attestation verified).
	SignatureVerified = "verified"
	// SignatureFailed: a rule was not met; Reason says which and why.
	SignatureFailed = "failed"
	// SignatureNoPolicy: no rule of the policy covers the repository.
	SignatureNoPolicy = "no-policy"
	// SignatureNotChecked: the check could not run (no repository to
	// read signatures from, a registry error); Reason says why.
	SignatureNotChecked = "not-checked"
)

// Who checked a signature.
const (
	CheckedByServer = "server" // this server verified it when it scanned the image
	CheckedByUpload = "upload" // the uploader (CI) says so; the server did not verify it
)

// SignatureStatus is what a signature check of the image's digest found.
type SignatureStatus struct {
	Status    string    `json:"status"` // one of the Signature* constants
	Reason    string    `json:"reason,omitempty"`
	CheckedBy string    `json:"checkedBy"` // CheckedByServer or CheckedByUpload
	CheckedAt time.Time `json:"checkedAt"`
	// Rules are the policy rules that were met, with what met them.
	Rules []SignatureRule `json:"rules,omitempty"`
}

// SignatureRule is one signature-policy rule that was met.
type SignatureRule struct {
	Policy string `json:"policy"`
	Key    string `json:"key"`
	// TransparencyLog is the choice applied ("required" or "ignore").
	TransparencyLog string         `json:"transparencyLog,omitempty"`
	Signatures      []SignatureRef `json:"signatures,omitempty"`
	Attestations    []SignatureRef `json:"attestations,omitempty"`
}

// SignatureRef is one signature or attestation that verified: its layout
// ("legacy" .sig/.att tags or "bundle" referrers), where it was found
// and, for an attestation, its predicate type.
type SignatureRef struct {
	Layout        string `json:"layout"`
	Where         string `json:"where"`
	PredicateType string `json:"predicateType,omitempty"`
}

// Sighting says where an image was seen.
type Sighting struct {
	Digest    string    `json:"digest"`
	Reference string    `json:"reference,omitempty"` // as written by the user, canonicalised
	Kind      string    `json:"kind"`                // "registry", "ci", "cluster"
	Cluster   string    `json:"cluster,omitempty"`
	Namespace string    `json:"namespace,omitempty"`
	Workload  string    `json:"workload,omitempty"` // "Deployment/web"
	CIRun     string    `json:"ciRun,omitempty"`
	SeenAt    time.Time `json:"seenAt"`
}

// Change is one finding that appeared or disappeared in a re-evaluation.
type Change struct {
	ScanID    int64           `json:"scanID"`
	Digest    string          `json:"digest"`
	Kind      string          `json:"kind"` // "appeared" or "disappeared"
	Finding   finding.Finding `json:"finding"`
	At        time.Time       `json:"at"`
	DBVersion string          `json:"dbVersion,omitempty"`
}

// Reevaluation is one scan's re-evaluation, as ReevaluatedBatch records
// it: the new database information, the new findings (replacing the
// stored ones) and the findings that appeared and disappeared.
type Reevaluation struct {
	ScanID   int64
	DB       *report.DBInfo
	Findings []finding.Finding
	// SameFindings says the findings did not change: only DB is written
	// (Findings is ignored, and Changes must be empty).
	SameFindings bool
	Changes      []Change
}

// ImageFilter narrows Images. Images come in ascending ScanID of their
// latest scan. Package alone keeps the images whose inventory holds that
// package; with MinSeverity or Fixed, an image needs one unsuppressed
// finding meeting all of them (in that package when Package is set).
type ImageFilter struct {
	MinSeverity finding.Severity // zero: any
	Fixed       *bool            // only vulnerabilities with (true) or without (false) a fixed version
	Package     string           // only images holding this package name
	Repository  string
	// Worst keeps the images whose worst unsuppressed finding has this
	// severity (NoFindings: the images without one).
	Worst *finding.Severity
	// Query keeps the images whose repository or digest holds this text
	// (case-insensitive).
	Query string
	Limit int   // zero: the store's default page (100; at most 1,000)
	After int64 // the ScanID of the previous page's last summary
}

// ImageSummary is one image in a listing: its latest scan and counts.
type ImageSummary struct {
	Digest     string         `json:"digest"`
	Repository string         `json:"repository,omitempty"`
	ScanID     int64          `json:"scanID"`
	ScannedAt  time.Time      `json:"scannedAt"`
	Packages   int            `json:"packages"`
	Counts     map[string]int `json:"counts"` // findings per severity name
	// Worst is the severity of the worst unsuppressed finding, NoFindings
	// when there is none.
	Worst finding.Severity `json:"worst"`
}

// NoFindings is the Worst of an image without unsuppressed findings.
const NoFindings finding.Severity = -1

// Affected is one image (and where it runs) that a vulnerability hits.
type Affected struct {
	Digest     string     `json:"digest"`
	Repository string     `json:"repository,omitempty"`
	ScanID     int64      `json:"scanID"`
	Package    string     `json:"package"`
	Version    string     `json:"version"`
	Fixed      string     `json:"fixed,omitempty"`
	Sightings  []Sighting `json:"sightings,omitempty"`
}

// Event is an ingested runtime alert or gate/admission decision, linked to
// an image digest when the event carries one.
type Event struct {
	ID       int64  `json:"id"`
	Kind     string `json:"kind"` // "runtime", "gate", "admission"
	Digest   string `json:"digest,omitempty"`
	Priority string `json:"priority,omitempty"`
	Rule     string `json:"rule,omitempty"`
	Output   string `json:"output,omitempty"`
	// Container and Namespace say where a runtime alert fired (Falco's
	// container.name and k8s.ns.name), for filtering.
	Container string    `json:"container,omitempty"`
	Namespace string    `json:"namespace,omitempty"`
	Body      []byte    `json:"body"` // the event as received (JSON)
	At        time.Time `json:"at"`
}

// EventFilter narrows EventsPage. Events come newest first; Before is the
// ID of the previous page's last event.
type EventFilter struct {
	Kinds     []string // any of these kinds; empty: every kind
	Digest    string
	Rule      string
	Priority  string
	Container string
	Namespace string
	Before    int64 // zero: from the newest
	Limit     int   // zero: the store's default page (100; at most 1,000)
}

// Fleet sums up the latest scan of every image.
type Fleet struct {
	Images int `json:"images"`
	// ByWorst counts the images by the severity name of their worst
	// unsuppressed finding ("NONE": none).
	ByWorst map[string]int `json:"byWorst"`
	// Findings counts the unsuppressed findings per severity name.
	Findings  map[string]int `json:"findings"`
	Workloads int            `json:"workloads"` // distinct cluster workloads seen
}

// VulnCount is one vulnerability across the fleet's latest scans.
type VulnCount struct {
	ID        string           `json:"id"`
	Severity  finding.Severity `json:"severity"` // the highest it is rated in any image
	Images    int              `json:"images"`
	Workloads int              `json:"workloads"` // distinct cluster workloads running an affected image
	Fixable   bool             `json:"fixable"`   // a fixed version exists in at least one image
}

// TrendDay is one UTC day of activity.
type TrendDay struct {
	Day         time.Time `json:"day"`
	Scans       int       `json:"scans"`       // scans stored
	Appeared    int       `json:"appeared"`    // findings that appeared in re-evaluations
	Disappeared int       `json:"disappeared"` // and that disappeared
}

// FleetPoint is the fleet's open (unsuppressed) findings by severity
// name at the end of one UTC day: the last snapshot taken that day
// (SnapshotFleet).
type FleetPoint struct {
	Day      time.Time      `json:"day"`
	At       time.Time      `json:"at"` // when the snapshot was taken
	Images   int            `json:"images"`
	Findings map[string]int `json:"findings"`
}

// PackageHit is a package name and how many images hold it.
type PackageHit struct {
	Name   string `json:"name"`
	Images int    `json:"images"`
}

// SearchResult is what Search found.
type SearchResult struct {
	Images          []ImageSummary `json:"images"`
	Packages        []PackageHit   `json:"packages"`
	Vulnerabilities []VulnCount    `json:"vulnerabilities"`
}

// Token is an API token; only its hash is stored.
type Token struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Role      string    `json:"role"` // "read", "scan", "admin"
	Hash      []byte    `json:"-"`
	CreatedAt time.Time `json:"createdAt"`
}

// Store is the server's storage. Implementations: SQL (SQLite, PostgreSQL).
type Store interface {
	// PutScan stores a scan (inventory and findings) and its sighting in
	// one transaction and returns its ID.
	PutScan(ctx context.Context, s *Scan, seen *Sighting) (int64, error)
	// Scan returns one scan with its inventory and findings.
	Scan(ctx context.Context, id int64) (*Scan, error)
	// LatestScan returns the newest scan of a digest.
	LatestScan(ctx context.Context, digest string) (*Scan, error)
	// ScansOf lists the scans of a repository, newest first (no inventory).
	ScansOf(ctx context.Context, repository string, limit int) ([]Scan, error)
	// AddSighting records where a digest was seen.
	AddSighting(ctx context.Context, seen *Sighting) error
	Images(ctx context.Context, f ImageFilter) ([]ImageSummary, error)
	// Affected answers "which images and workloads have this vulnerability"
	// (an ID or any of its aliases).
	Affected(ctx context.Context, vulnID string) ([]Affected, error)
	// Changes lists findings that appeared or disappeared after since.
	Changes(ctx context.Context, since time.Time, limit int) ([]Change, error)

	// EachLatest calls fn with the latest scan of every digest, with its
	// inventory and findings, one at a time (re-evaluation).
	EachLatest(ctx context.Context, fn func(*Scan) error) error
	// Reevaluated replaces a scan's findings and records the changes, in
	// one transaction (ReevaluatedBatch of one).
	Reevaluated(ctx context.Context, scanID int64, db *report.DBInfo, findings []finding.Finding, changes []Change) error
	// ReevaluatedBatch records several re-evaluations in ONE transaction:
	// all of them are written, or (on any error) none is. A caller that
	// needs per-image results retries the images of a failed batch one by
	// one.
	ReevaluatedBatch(ctx context.Context, rs []Reevaluation) error

	PutEvent(ctx context.Context, e *Event) (int64, error)
	Events(ctx context.Context, digest string, since time.Time, limit int) ([]Event, error)
	// EventsPage lists events newest first, filtered.
	EventsPage(ctx context.Context, f EventFilter) ([]Event, error)

	// Sightings lists where a digest was seen, most recent first.
	Sightings(ctx context.Context, digest string) ([]Sighting, error)
	// Fleet sums up the latest scans.
	Fleet(ctx context.Context) (*Fleet, error)
	// TopVulnerabilities lists the vulnerabilities of the latest scans,
	// highest severity first, then the most images.
	TopVulnerabilities(ctx context.Context, limit int) ([]VulnCount, error)
	// Trend counts scans and re-evaluation changes per UTC day since.
	Trend(ctx context.Context, since time.Time) ([]TrendDay, error)
	// SnapshotFleet records the fleet's open findings by severity (Fleet)
	// as the point of at's UTC day, replacing that day's earlier snapshot.
	SnapshotFleet(ctx context.Context, at time.Time) error
	// FleetTrend lists the daily snapshots since (a UTC day), oldest
	// first; a day without a snapshot has no point.
	FleetTrend(ctx context.Context, since time.Time) ([]FleetPoint, error)
	// Provenance is the provenance stored with a scan; ErrNotFound when
	// the scan has none (or does not exist).
	Provenance(ctx context.Context, scanID int64) (*Provenance, error)
	// ChangeCounts counts the findings that appeared and disappeared
	// after since.
	ChangeCounts(ctx context.Context, since time.Time) (appeared, disappeared int, err error)
	// Search finds images (repository or digest text), a package (exact
	// name) and a vulnerability (exact ID or alias).
	Search(ctx context.Context, q string, limit int) (*SearchResult, error)

	PutToken(ctx context.Context, t *Token) (int64, error)
	TokenByHash(ctx context.Context, hash []byte) (*Token, error)
	DeleteToken(ctx context.Context, name string) error

	// Ping says whether the database answers (readiness).
	Ping(ctx context.Context) error
	Close() error
}
