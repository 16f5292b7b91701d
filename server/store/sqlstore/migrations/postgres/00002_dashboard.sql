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

-- Runtime alerts are filtered by container and namespace.
ALTER TABLE events ADD COLUMN container TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN namespace TEXT NOT NULL DEFAULT '';
CREATE INDEX events_kind ON events (kind, id);

-- +goose Down
DROP INDEX events_kind;
ALTER TABLE events DROP COLUMN namespace;
ALTER TABLE events DROP COLUMN container;
DROP INDEX scan_findings_vuln;
DROP INDEX scans_scanned_at;
ALTER TABLE scans DROP COLUMN worst;
