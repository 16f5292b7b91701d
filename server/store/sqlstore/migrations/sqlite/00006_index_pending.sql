-- The scans whose index rows (scan_packages, scan_findings, finding_ids,
-- fleet_vulns) are not written yet (issue 14). On SQLite an upload commits
-- its scan and a row here; the group writer writes the index rows of many
-- uploads in one later transaction, and deletes their rows here in it. A
-- server killed in between finds them here and indexes them from the
-- scans' blobs. PostgreSQL indexes in the upload's transaction and leaves
-- the table empty (its file of the same version creates it too: one
-- schema).

-- +goose Up
CREATE TABLE index_pending (
    scan_id INTEGER PRIMARY KEY
);

-- +goose Down
DROP TABLE index_pending;
