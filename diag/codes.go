package diag

// The codes bulkhead's producers emit. They are stable: a program may act
// on them. The README's "Diagnostics" section lists them for users.
const (
	// Unclassified is a warning string from code that makes no
	// diagnostics (an SBOM's recorded warnings, say).
	Unclassified Code = "warning"

	// The walk over image layers (walk).
	WalkLongName         Code = "walk.long-name"         // entry name longer than a path can be: skipped
	WalkNULName          Code = "walk.nul-name"          // entry name with a NUL byte: skipped
	WalkClimbingName     Code = "walk.climbing-name"     // entry name with "..": read inside the image
	WalkAbsoluteName     Code = "walk.absolute-name"     // absolute entry name: read inside the image
	WalkOrphanWhiteout   Code = "walk.orphan-whiteout"   // whiteout naming nothing: ignored
	WalkLongLink         Code = "walk.long-link"         // link target longer than a path can be: skipped
	WalkSymlinkEscape    Code = "walk.symlink-escape"    // symlink pointing outside the image: resolved inside
	WalkHardLinkRenamed  Code = "walk.hardlink-renamed"  // hard link name read inside the image
	WalkUnknownType      Code = "walk.unknown-type"      // tar entry of an unknown type: skipped
	WalkHardLinkLimit    Code = "walk.hardlink-limit"    // too many pending hard links in a layer: not read
	WalkHardLinkDangling Code = "walk.hardlink-dangling" // hard link to no earlier regular file
	WalkFileUnread       Code = "walk.file-unread"       // a file's content could not be read or handed on
	WalkTruncated        Code = "walk.truncated"         // more warnings in a layer than are kept

	// Package catalogers (catalog).
	CatalogUnreadable Code = "catalog.unreadable" // a package database could not be parsed
	CatalogPartial    Code = "catalog.partial"    // parts of a package database skipped (malformed records)
	CatalogLimit      Code = "catalog.limit"      // a package database over a limit for hostile input: packages left out
	CatalogInternal   Code = "catalog.internal"   // internal error: packages not reported

	// Secrets (secret, config).
	SecretUnreadable Code = "secret.unreadable" // a file could not be read for secrets

	// The vulnerability database and matching (vulndb, match, pipeline).
	VulnDBBundled        Code = "vulndb.bundled"         // no database: built from the bundled snapshot
	VulnDBStale          Code = "vulndb.stale"           // the data used is older than --db-max-age, or undated
	MatchUnsupported     Code = "match.unsupported"      // packages of a type not checked for vulnerabilities
	MatchVersionUnknown  Code = "match.version-unparsed" // a version that could not be compared
	MatchLookupFailed    Code = "match.lookup-failed"    // a package's records could not be read
	IgnoreExpired        Code = "ignore.expired"         // an ignore-file entry expired: no longer suppresses
	VulnDBFeedSkipped    Code = "vulndb.feed-skipped"    // db update: a feed could not be fetched; the others were
	VulnDBRebuilt        Code = "vulndb.rebuilt"         // db update/import: the previous database was unreadable, rebuilt
	VulnDBRecordsSkipped Code = "vulndb.records-skipped" // db import: files that are not valid OSV records, skipped

	// SBOMs read back (sbom/cyclonedx, sbom/spdx).
	SBOMBadPURL          Code = "sbom.bad-purl"          // a package's purl is not valid: kept without it
	SBOMPartialComponent Code = "sbom.partial-component" // a component read for its identity only
	SBOMMetadataUnread   Code = "sbom.metadata-unread"   // the document's metadata could not be read
	SBOMTooDeep          Code = "sbom.too-deep"          // components nested too deep: not read

	// Configuration files (config).
	ConfigUnreadable Code = "config.unreadable"    // a file could not be read or checked in full
	ConfigUnknown    Code = "config.unknown-kind"  // not a Dockerfile or manifest: secrets only
	ConfigNothing    Code = "config.nothing-found" // no Dockerfile or manifest in the paths given

	// Policy decisions (policy, gate, webhook) and CEL checks.
	PolicyWarnRule         Code = "policy.warn-rule"         // a warn-mode rule failed: admitted with a warning
	PolicyUnchecked        Code = "policy.unchecked"         // a rule could not be checked: admitted under fail-open (or a warn rule)
	PolicyExempt           Code = "policy.exempt"            // an exemption turned a failure into an allow
	PolicyExemptNamespace  Code = "policy.exempt-namespace"  // the namespace is in admission.exemptNamespaces: not judged
	PolicyExemptionExpired Code = "policy.exemption-expired" // an expired exemption: no longer exempting
	PolicyTlogIgnored      Code = "policy.tlog-ignored"      // a rule accepts signatures without a transparency-log check
	PolicyTagIgnored       Code = "policy.tag-ignored"       // a tag next to a digest is ignored
	PolicyCheckSkipped     Code = "policy.check-skipped"     // a CEL check that does not apply to this command

	// The command line (internal/cli).
	GateNoWorkload    Code = "gate.no-workload"    // a manifest given to the gate holds no workload
	CLIDeprecatedFlag Code = "cli.deprecated-flag" // a deprecated flag spelling was used
)
