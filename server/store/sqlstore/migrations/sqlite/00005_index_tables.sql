-- The index tables (scan_packages, scan_findings, finding_ids) get cheaper
-- to write (issue 14: under 50 uploading clients, their rows were half of
-- the server's CPU). The PostgreSQL file of the same version makes the
-- same change to its columns and constraints.
--   - No rowid: each table is one B-tree on its primary key, instead of a
--     rowid B-tree plus a second B-tree for the key. scan_packages is kept
--     in the order its one query reads ("images with package N": name,
--     then scan) and loses its scan_id index; ord (the package's place in
--     the inventory) tells apart two packages of one scan with the same
--     name.
--   - No foreign keys: the rows are derived from their scan's blobs and
--     written and deleted only with them, in the same transactions;
--     Store.Verify checks that none is orphaned (a foreign key cost a
--     lookup per row).
-- finding_ids goes first: dropping scan_findings while finding_ids still
-- referenced it would delete finding_ids' rows (ON DELETE CASCADE).

-- +goose Up
CREATE TABLE finding_ids_v5 (
    scan_id INTEGER NOT NULL,
    ord     INTEGER NOT NULL,
    id      TEXT    NOT NULL,
    PRIMARY KEY (scan_id, ord, id)
) WITHOUT ROWID;
INSERT INTO finding_ids_v5 (scan_id, ord, id) SELECT scan_id, ord, id FROM finding_ids;
DROP TABLE finding_ids;
ALTER TABLE finding_ids_v5 RENAME TO finding_ids;
CREATE INDEX finding_ids_id ON finding_ids (id, scan_id);

CREATE TABLE scan_findings_v5 (
    scan_id    INTEGER NOT NULL,
    ord        INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    vuln_id    TEXT    NOT NULL,
    package    TEXT    NOT NULL,
    version    TEXT    NOT NULL,
    fixed      TEXT    NOT NULL,
    severity   INTEGER NOT NULL,
    suppressed INTEGER NOT NULL,
    PRIMARY KEY (scan_id, ord)
) WITHOUT ROWID;
INSERT INTO scan_findings_v5 (scan_id, ord, kind, vuln_id, package, version, fixed, severity, suppressed)
    SELECT scan_id, ord, kind, vuln_id, package, version, fixed, severity, suppressed FROM scan_findings;
DROP TABLE scan_findings;
ALTER TABLE scan_findings_v5 RENAME TO scan_findings;
CREATE INDEX scan_findings_vuln ON scan_findings (vuln_id, scan_id, severity, fixed) WHERE kind = 'vulnerability' AND suppressed = 0;

CREATE TABLE scan_packages_v5 (
    name    TEXT    NOT NULL,
    scan_id INTEGER NOT NULL,
    ord     INTEGER NOT NULL,
    version TEXT    NOT NULL,
    type    TEXT    NOT NULL,
    PRIMARY KEY (name, scan_id, ord)
) WITHOUT ROWID;
INSERT INTO scan_packages_v5 (name, scan_id, ord, version, type) SELECT name, scan_id, rowid, version, type FROM scan_packages;
DROP TABLE scan_packages;
ALTER TABLE scan_packages_v5 RENAME TO scan_packages;

-- +goose Down
CREATE TABLE scan_packages_v4 (
    scan_id INTEGER NOT NULL REFERENCES scans (id),
    name    TEXT    NOT NULL,
    version TEXT    NOT NULL,
    type    TEXT    NOT NULL
);
INSERT INTO scan_packages_v4 (scan_id, name, version, type) SELECT scan_id, name, version, type FROM scan_packages ORDER BY scan_id, ord;
DROP TABLE scan_packages;
ALTER TABLE scan_packages_v4 RENAME TO scan_packages;
CREATE INDEX scan_packages_scan ON scan_packages (scan_id);
CREATE INDEX scan_packages_name ON scan_packages (name, scan_id);

CREATE TABLE scan_findings_v4 (
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
INSERT INTO scan_findings_v4 SELECT scan_id, ord, kind, vuln_id, package, version, fixed, severity, suppressed FROM scan_findings;
DROP TABLE scan_findings;
ALTER TABLE scan_findings_v4 RENAME TO scan_findings;
CREATE INDEX scan_findings_vuln ON scan_findings (vuln_id, scan_id, severity, fixed) WHERE kind = 'vulnerability' AND suppressed = 0;

CREATE TABLE finding_ids_v4 (
    scan_id INTEGER NOT NULL,
    ord     INTEGER NOT NULL,
    id      TEXT    NOT NULL,
    PRIMARY KEY (scan_id, ord, id),
    FOREIGN KEY (scan_id, ord) REFERENCES scan_findings (scan_id, ord) ON DELETE CASCADE
);
INSERT INTO finding_ids_v4 SELECT scan_id, ord, id FROM finding_ids;
DROP TABLE finding_ids;
ALTER TABLE finding_ids_v4 RENAME TO finding_ids;
CREATE INDEX finding_ids_id ON finding_ids (id, scan_id);
