-- The dashboard's aggregates (issue 15). The SQLite file of the same
-- version makes the same changes.

-- +goose Up
-- The worst unsuppressed severity of a scan's findings, -1 when it has
-- none: images by worst severity without reading their findings.
ALTER TABLE scans ADD COLUMN worst BIGINT NOT NULL DEFAULT -1;
UPDATE scans SET worst = COALESCE((SELECT MAX(f.severity) FROM scan_findings f WHERE f.scan_id = scans.id AND f.suppressed = 0), -1);
CREATE INDEX scans_scanned_at ON scans (scanned_at);

-- scan_findings and finding_ids index the latest scan of each image only
-- (an older scan keeps its findings in its blob): fleet aggregates read
-- them without a join.
DELETE FROM finding_ids WHERE scan_id NOT IN (SELECT latest_scan_id FROM images);
DELETE FROM scan_findings WHERE scan_id NOT IN (SELECT latest_scan_id FROM images);
-- Top vulnerabilities: one pass over a covering index, in vuln_id order.
CREATE INDEX scan_findings_vuln ON scan_findings (vuln_id, scan_id, severity, fixed) WHERE kind = 'vulnerability' AND suppressed = 0;

-- The fleet's vulnerabilities: for each ID, the images (latest scans)
-- whose worst rating of it is UNKNOWN, LOW, MEDIUM, HIGH, CRITICAL (n0 to
-- n4), and those with a fixed version. Kept in step with scan_findings in
-- the same transactions (counts only go up and down, so both an insert
-- and a delete of a scan's rows are one statement each).
CREATE TABLE fleet_vulns (
    vuln_id TEXT    PRIMARY KEY,
    n0      BIGINT  NOT NULL,
    n1      BIGINT  NOT NULL,
    n2      BIGINT  NOT NULL,
    n3      BIGINT  NOT NULL,
    n4      BIGINT  NOT NULL,
    fixable BIGINT  NOT NULL
);
INSERT INTO fleet_vulns (vuln_id, n0, n1, n2, n3, n4, fixable)
SELECT vuln_id, SUM(CASE WHEN sev = 0 THEN 1 ELSE 0 END), SUM(CASE WHEN sev = 1 THEN 1 ELSE 0 END), SUM(CASE WHEN sev = 2 THEN 1 ELSE 0 END),
       SUM(CASE WHEN sev = 3 THEN 1 ELSE 0 END), SUM(CASE WHEN sev >= 4 THEN 1 ELSE 0 END), SUM(fx)
FROM (SELECT vuln_id, scan_id, MAX(severity) AS sev, MAX(CASE WHEN fixed <> '' THEN 1 ELSE 0 END) AS fx
      FROM scan_findings WHERE kind = 'vulnerability' AND suppressed = 0 GROUP BY vuln_id, scan_id) x
GROUP BY vuln_id;

-- Runtime alerts are filtered by container and namespace.
ALTER TABLE events ADD COLUMN container TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN namespace TEXT NOT NULL DEFAULT '';
CREATE INDEX events_kind ON events (kind, id);
CREATE INDEX events_rule ON events (rule, id);
CREATE INDEX events_container ON events (container, id);
CREATE INDEX events_namespace ON events (namespace, id);

-- +goose Down
DROP TABLE fleet_vulns;
DROP INDEX events_namespace;
DROP INDEX events_container;
DROP INDEX events_rule;
DROP INDEX events_kind;
ALTER TABLE events DROP COLUMN namespace;
ALTER TABLE events DROP COLUMN container;
DROP INDEX scan_findings_vuln;
DROP INDEX scans_scanned_at;
ALTER TABLE scans DROP COLUMN worst;
