-- The index tables get cheaper to write (issue 14); see the SQLite file
-- of the same version. PostgreSQL keeps its heaps; it gets the same
-- columns (scan_packages.ord) and loses the same constraints: the foreign
-- keys of the index tables (each a trigger and a lookup per row) and
-- scan_packages' scan_id index (no query reads it).

-- +goose Up
ALTER TABLE finding_ids DROP CONSTRAINT IF EXISTS finding_ids_scan_id_ord_fkey;
ALTER TABLE scan_findings DROP CONSTRAINT IF EXISTS scan_findings_scan_id_fkey;
ALTER TABLE scan_packages DROP CONSTRAINT IF EXISTS scan_packages_scan_id_fkey;
ALTER TABLE scan_packages ADD COLUMN ord BIGINT NOT NULL DEFAULT 0;
DROP INDEX IF EXISTS scan_packages_scan;

-- +goose Down
CREATE INDEX scan_packages_scan ON scan_packages (scan_id);
ALTER TABLE scan_packages DROP COLUMN ord;
ALTER TABLE scan_packages ADD CONSTRAINT scan_packages_scan_id_fkey FOREIGN KEY (scan_id) REFERENCES scans (id);
ALTER TABLE scan_findings ADD CONSTRAINT scan_findings_scan_id_fkey FOREIGN KEY (scan_id) REFERENCES scans (id);
ALTER TABLE finding_ids ADD CONSTRAINT finding_ids_scan_id_ord_fkey FOREIGN KEY (scan_id, ord) REFERENCES scan_findings (scan_id, ord) ON DELETE CASCADE;
