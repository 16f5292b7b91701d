-- bulkhead server schema, SQLite. The PostgreSQL file of the same version
-- has the same tables and columns; only the types differ. Times are Unix
-- microseconds (UTC) in both.

-- +goose Up
CREATE TABLE images (
    digest         TEXT    PRIMARY KEY,
    latest_scan_id INTEGER NOT NULL,
    first_seen_at  INTEGER NOT NULL
);
CREATE INDEX images_latest ON images (latest_scan_id);

CREATE TABLE scans (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    digest     TEXT    NOT NULL REFERENCES images (digest),
    repository TEXT    NOT NULL DEFAULT '',
    scanned_at INTEGER NOT NULL,
    source     TEXT    NOT NULL,
    db_info    TEXT    NOT NULL DEFAULT '',  -- JSON of report.DBInfo, '' when none
    packages   INTEGER NOT NULL,
    counts     TEXT    NOT NULL,             -- JSON: findings per severity name
    inventory  BLOB    NOT NULL,             -- zstd-compressed JSON
    findings   BLOB    NOT NULL,             -- zstd-compressed JSON
    n_findings INTEGER NOT NULL              -- rows in scan_findings
);
CREATE INDEX scans_digest ON scans (digest, id);
CREATE INDEX scans_repository ON scans (repository, id);

CREATE TABLE scan_packages (
    scan_id INTEGER NOT NULL REFERENCES scans (id),
    name    TEXT    NOT NULL,
    version TEXT    NOT NULL,
    type    TEXT    NOT NULL
);
CREATE INDEX scan_packages_scan ON scan_packages (scan_id);
CREATE INDEX scan_packages_name ON scan_packages (name, scan_id);

CREATE TABLE scan_findings (
    scan_id    INTEGER NOT NULL REFERENCES scans (id),
    ord        INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    vuln_id    TEXT    NOT NULL,
    package    TEXT    NOT NULL,
    version    TEXT    NOT NULL,
    fixed      TEXT    NOT NULL,
    severity   INTEGER NOT NULL,
    suppressed INTEGER NOT NULL,
    PRIMARY KEY (scan_id, ord)
);

-- Every ID and alias of a finding, upper-cased: "which images have X".
CREATE TABLE finding_ids (
    scan_id INTEGER NOT NULL,
    ord     INTEGER NOT NULL,
    id      TEXT    NOT NULL,
    PRIMARY KEY (scan_id, ord, id),
    FOREIGN KEY (scan_id, ord) REFERENCES scan_findings (scan_id, ord) ON DELETE CASCADE
);
CREATE INDEX finding_ids_id ON finding_ids (id, scan_id);

CREATE TABLE changes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    scan_id    INTEGER NOT NULL REFERENCES scans (id),
    digest     TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    finding    TEXT    NOT NULL,             -- JSON of finding.Finding
    at         INTEGER NOT NULL,
    db_version TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX changes_at ON changes (at, id);

CREATE TABLE sightings (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    digest        TEXT    NOT NULL,
    reference     TEXT    NOT NULL DEFAULT '',
    kind          TEXT    NOT NULL,
    cluster       TEXT    NOT NULL DEFAULT '',
    namespace     TEXT    NOT NULL DEFAULT '',
    workload      TEXT    NOT NULL DEFAULT '',
    ci_run        TEXT    NOT NULL DEFAULT '',
    first_seen_at INTEGER NOT NULL,
    seen_at       INTEGER NOT NULL,
    UNIQUE (digest, reference, kind, cluster, namespace, workload, ci_run)
);

CREATE TABLE events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    kind     TEXT    NOT NULL,
    digest   TEXT    NOT NULL DEFAULT '',
    priority TEXT    NOT NULL DEFAULT '',
    rule     TEXT    NOT NULL DEFAULT '',
    output   TEXT    NOT NULL DEFAULT '',
    body     BLOB    NOT NULL,
    at       INTEGER NOT NULL
);
CREATE INDEX events_at ON events (at, id);
CREATE INDEX events_digest ON events (digest, at, id);

CREATE TABLE tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    role       TEXT    NOT NULL,
    hash       BLOB    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE tokens;
DROP TABLE events;
DROP TABLE sightings;
DROP TABLE changes;
DROP TABLE finding_ids;
DROP TABLE scan_findings;
DROP TABLE scan_packages;
DROP TABLE scans;
DROP TABLE images;
